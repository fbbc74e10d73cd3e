#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# The machine overlayfs-init assembled in the container: PID 1, the layered
# root over a tmpfs on /data/system, the /data layout, s6 supervising the
# test-runner, the strata binaries.
. /app/tests/lib.sh

# mount_fstype MOUNTPOINT: the fstype of the topmost mount on it.
mount_fstype() {
    awk -v m="$1" '$5 == m { for (i = 7; $i != "-"; i++); t = $(i + 1) } END { print t }' \
        /proc/self/mountinfo
}

t_begin "PID 1 is overlayfs-init"
comm=$(cat /proc/1/comm)
[ "$comm" = overlayfs-init ] && t_ok || t_fail "PID 1 is '$comm'"

t_begin "SYSTEM_DIR ($SYSTEM_DIR) is a tmpfs"
t=$(mount_fstype "$SYSTEM_DIR")
[ "$t" = tmpfs ] && t_ok || t_fail "'$SYSTEM_DIR' is '${t:-not a mount}'"

t_begin "the root is an overlay whose upper dir is in SYSTEM_DIR"
opts=$(awk '$5 == "/" && / - overlay / { print }' /proc/self/mountinfo | tail -n1)
case $opts in
*upperdir=*"$SYSTEM_DIR/upper,"*) t_ok ;;
*) t_fail "root mount: '${opts:-none}'" ;;
esac

t_begin "the data dir layout: $SYSTEM_DIR/{upper,work,layers,migrations}, STATE_DIR ($STATE_DIR)"
missing=""
for d in "$SYSTEM_DIR/upper" "$SYSTEM_DIR/work" "$SYSTEM_DIR/layers" "$SYSTEM_DIR/migrations" "$STATE_DIR"; do
    [ -d "$d" ] || missing="$missing $d"
done
[ -z "$missing" ] && t_ok || t_fail "missing:$missing"

t_begin "s6-svscan supervises the test-runner"
t_check s6-svstat "$SCANDIR/test-runner"

t_begin "the strata binaries run: strata, system-migrate, overlayfs-init, strata-nfsd"
bad=""
for b in strata system-migrate overlayfs-init strata-nfsd; do
    "$b" --help >/dev/null 2>&1 || bad="$bad $b($(command -v "$b" || echo missing))"
done
[ -z "$bad" ] && t_ok || t_fail "failed:$bad"

t_begin "the image has mount, util-linux, kmod, s6 and auditd"
missing=""
for p in mount util-linux kmod s6 auditd; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
        missing="$missing $p"
done
[ -z "$missing" ] && t_ok || t_fail "not installed:$missing"

t_done
