#!/bin/sh
# Removes the pre-login network banner: the layer records a whiteout.
set -eu
rm -f /etc/issue.net
