#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# What the machine itself does to its layers: runtime edits in the scratch
# upper (<data>/system/upper) hide a later migration's version of the same
# paths, so `up` names them and `status` counts what the scratch upper
# holds; and overlayfs-init, as the machine's entrypoint (a plain process
# and PID 1 of a pid namespace), boots the layers only over the base they
# were built over (system/base.json). --base / and temp data dirs.
. "$(dirname "$0")/lib.sh"
need_root
need_program unshare util-linux
SM=${SYSTEM_MIGRATE:?SYSTEM_MIGRATE is not set}
: "${STRATA:?STRATA is not set}"
: "${OVERLAYFS_INIT:?OVERLAYFS_INIT is not set}"
t_tmpdir
M=$T_TMP/migrations
D=$T_TMP/data

sm() { "$SM" --data "$D" --dir "$M" --base / "$@"; }
mig() {
    mkdir -p "$M/$1"
    printf '%s\n' "$2" >"$M/$1/install_script.sh"
}
mig 20260401-001_a 'echo v1 > /etc/strata-sc; mkdir -p /opt/strata-sc; echo one > /opt/strata-sc/one'
mig 20260401-002_b 'echo v2 > /etc/strata-sc; echo two > /opt/strata-sc/two; echo untouched > /etc/strata-sc-new'

t_begin "status counts no scratch paths on a fresh data dir"
sm up --to 20260401-001_a >/dev/null 2>&1
out=$(sm status 2>&1)
json=$(sm status --json 2>&1)
if echo "$out" | grep -q "^scratch upper: 0 paths in $D/system/upper" &&
    echo "$json" | grep -q '"paths": 0'; then
    t_ok
else
    t_fail "$out / $json"
fi

t_begin "status counts the runtime edits a machine left in the scratch upper"
# A real machine of the data dir edits a file of the layer and removes a dir.
"$STRATA" lab run --data "$D" -- sh -c 'echo runtime > /etc/strata-sc; rm -rf /opt/strata-sc' >/dev/null 2>&1
out=$(sm status 2>&1)
n=$(find "$D/system/upper" -mindepth 1 | wc -l)
if [ "$n" -gt 0 ] && echo "$out" | grep -q "^scratch upper: $n paths in $D/system/upper" &&
    sm status --json | grep -q "\"paths\": $n"; then
    t_ok
else
    t_fail "find says $n: $out"
fi

t_begin "up warns, naming the paths of the new layer that the scratch upper overrides"
out=$(sm up 2>&1)
rc=$?
if [ $rc -eq 0 ] &&
    echo "$out" | grep -q "20260401-002_b: the machine's scratch upper '$D/system/upper' overrides 3 paths this layer changes" &&
    echo "$out" | grep -q "/etc/strata-sc, /opt/strata-sc, /opt/strata-sc/two" &&
    ! echo "$out" | grep -q "strata-sc-new"; then
    t_ok
else
    t_fail "exit $rc: $out"
fi

t_begin "the warning is true: the booted machine shows the runtime edit, not the layer's version"
out=$("$STRATA" lab run --data "$D" -- sh -c 'cat /etc/strata-sc /etc/strata-sc-new; ls /opt/strata-sc 2>&1' 2>&1)
if echo "$out" | grep -q "^runtime$" && echo "$out" | grep -q "^untouched$" &&
    echo "$out" | grep -q "No such file"; then
    t_ok
else
    t_fail "$out"
fi

t_begin "no warning when the scratch upper holds nothing the new layer changes"
mig 20260401-003_c 'echo three > /etc/strata-sc-three'
out=$(sm up 2>&1)
if [ $? -eq 0 ] && ! echo "$out" | grep -q "overrides"; then
    t_ok
else
    t_fail "$out"
fi

# ---------------------------------------------------------------------------
# overlayfs-init and the base identity
OB=$T_TMP/other-base
mkdir -p "$OB/etc"
printf 'ID=strataos\nVERSION_ID=9\nPRETTY_NAME="Strata OS 9"\n' >"$OB/etc/os-release"

t_begin "overlayfs-init refuses to boot the layers over another base, naming both"
out=$("$OVERLAYFS_INIT" --data "$D" --base "$OB" -- /bin/true 2>&1)
rc=$?
if [ $rc -eq 1 ] &&
    echo "$out" | grep -q "step 3: cannot boot '$D' over '$OB': the layers were built over the base 'debian-[^']*' (.*), but this base is 'strataos-9-[0-9a-f]*' (Strata OS 9)" &&
    [ -z "$(ls -A "$D/system/upper/etc" 2>/dev/null | grep -v strata-sc)" ]; then
    t_ok
else
    t_fail "exit $rc: $out"
fi

t_begin "overlayfs-init as PID 1 (of a pid namespace) refuses the other base too"
out=$(unshare --pid --fork --mount "$OVERLAYFS_INIT" --data "$D" --base "$OB" -- /bin/true 2>&1)
rc=$?
if [ $rc -eq 1 ] && echo "$out" | grep -q "step 3: cannot boot '$D' over '$OB': the layers were built over the base"; then
    t_ok
else
    t_fail "exit $rc: $out"
fi

t_begin "overlayfs-init --force goes past the check and says so; its own base boots"
out=$("$OVERLAYFS_INIT" --data "$D" --base "$OB" --dry-run --force 2>&1)
rc=$?
# As PID 1 the data dir is its own file system (docs/overlayfs-init.md):
# a copy on a tmpfs of the private mount namespace.
mkdir -p "$T_TMP/pid1-data"
out2=$(unshare --pid --fork --mount sh -c 'mount -t tmpfs tmpfs "$1" && cp -a "$2/." "$1" &&
    exec "$3" --data "$1" -- /bin/cat /etc/strata-sc-three' sh "$T_TMP/pid1-data" "$D" "$OVERLAYFS_INIT" 2>&1)
rc2=$?
if [ $rc -eq 0 ] && echo "$out" | grep -q -- "--force: booting anyway" &&
    [ $rc2 -eq 0 ] && [ "$out2" = three ]; then
    t_ok
else
    t_fail "exit $rc: $out / $rc2: $out2"
fi

t_begin "a data dir without a recorded base boots over any base (nothing to check yet)"
E=$T_TMP/empty-data
mkdir -p "$E"
if "$OVERLAYFS_INIT" --data "$E" --dry-run --base "$OB" >/dev/null 2>&1; then
    t_ok
else
    t_fail "$("$OVERLAYFS_INIT" --data "$E" --dry-run --base "$OB" 2>&1)"
fi

t_done
