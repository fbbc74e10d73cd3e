#!/bin/sh
# Adds the application's config file and a line to the message of the day.
set -eu
mkdir -p /etc/example-app
cat >/etc/example-app/app.conf <<'CONF'
# written by migration 20260101-001_add_app_config
listen = 127.0.0.1:8080
workers = 4
CONF
chmod 0640 /etc/example-app/app.conf
echo "This machine is managed by system-migrate ($STRATA_MIGRATION)." >>/etc/motd
