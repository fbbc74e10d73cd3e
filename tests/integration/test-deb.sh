#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# `make deb` builds a lintian-clean package, and on a fresh Debian machine
# (a lab machine over the debootstrap'ed minbase root the migrate tests
# use, not the build tree) `apt-get install ./strata_*.deb` pulls what it
# needs; strata doctor, man strata, system-migrate --help and a small
# `system-migrate up` then work from the installed files alone.
. "$(dirname "$0")/lib.sh"
need_root
need_program dpkg-buildpackage dpkg-dev
SRC=${STRATA_SOURCE_ROOT:?}
need_debian_base
t_tmpdir

t_begin "scripts/deb builds a package lintian finds no error in"
if deb=$("$SRC/scripts/deb" "$T_TMP/deb" 2>"$T_TMP/deb.err"); then
    t_ok
else
    t_fail "$(tail -n 15 "$T_TMP/deb.err")"
fi

t_begin "the package's version is strata --version's"
v=$(dpkg-deb -f "$deb" Version 2>&1)
t_check test "$v" = "$("$SRC/scripts/version")"

# The fresh machine: minbase has none of strata's libraries, no s6, no man.
cat >"$T_TMP/deb/try.sh" <<'S'
set -eu
export DEBIAN_FRONTEND=noninteractive
step() { echo "== $*"; }
step "apt-get install"
apt-get update -q >/tmp/apt.log 2>&1 || { tail -n 5 /tmp/apt.log; exit 10; }
apt-get install -y -q /mnt/deb/strata_*.deb man-db >/tmp/apt.log 2>&1 || { tail -n 20 /tmp/apt.log; exit 11; }
grep -o 'Setting up [a-z0-9.+-]*' /tmp/apt.log | sed 's/Setting up /pulled: /'
step "strata doctor"
strata doctor || exit 12
step "man strata"
MANWIDTH=80 man -P cat strata | grep -q 'layered, reproducible Linux machines' || exit 13
MANWIDTH=80 man -P cat system-migrate | grep -q 'overlayfs' || exit 13
step "system-migrate --help"
system-migrate --help | grep -q 'Usage: system-migrate' || exit 14
step "system-migrate up"
mkdir -p /tmp/m/20260101-001_hello /tmp/d
printf 'echo hello >/etc/hello\n' >/tmp/m/20260101-001_hello/install_script.sh
system-migrate --data /tmp/d --dir /tmp/m up || exit 15
test "$(cat /tmp/d/system/layers/20260101-001_hello/fs/etc/hello)" = hello || exit 16
system-migrate --data /tmp/d --dir /tmp/m status | grep -q 20260101-001_hello || exit 17
S

t_begin "on a fresh Debian machine the package installs and its commands work"
if "$STRATA" lab run --base "$BASE" --ephemeral --net host --dev host \
    --bind "$T_TMP/deb:/mnt/deb:ro" --timeout 600 -- sh /mnt/deb/try.sh >"$T_TMP/try.log" 2>&1; then
    t_ok
else
    t_fail "exit $?: $(tail -n 25 "$T_TMP/try.log")"
fi

t_begin "apt-get pulled the libraries and s6 the package needs"
if grep -q 'pulled: libjansson4' "$T_TMP/try.log" && grep -q 'pulled: s6' "$T_TMP/try.log" &&
    grep -q 'pulled: strata' "$T_TMP/try.log"; then
    t_ok
else
    t_fail "$(grep pulled "$T_TMP/try.log")"
fi

t_done
