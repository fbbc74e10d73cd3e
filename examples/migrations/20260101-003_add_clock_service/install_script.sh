#!/bin/sh
# Installs a tiny daemon that appends the time to its state every minute.
# Its program goes into the layer; /var/lib/strata-clock is state (see the
# `state` file): it moves to /data/state and survives every later layer.
set -eu
cat >/usr/local/bin/strata-clock <<'PROG'
#!/bin/sh
# Appends the date to /var/lib/strata-clock/ticks every minute.
while :; do
    date -u +%FT%TZ >>/var/lib/strata-clock/ticks
    sleep 60
done
PROG
chmod 0755 /usr/local/bin/strata-clock
mkdir -p /var/lib/strata-clock
echo "created by $STRATA_MIGRATION" >/var/lib/strata-clock/README
