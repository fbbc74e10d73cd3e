#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Not a test of its own: test-vm-kill.sh runs it the way meson runs a vm
# test (a session of its own) and kills it while its guest boots. It sets
# itself up as test-vm.sh does (a temp dir under $TMPDIR, a vm dir over the
# cached image, vm_guard), starts one guest with `vm start` (QEMU
# daemonized: a session of its own, outside the process group that gets
# killed) and waits for it in the background, as the suite waits for its
# guests.
#
#   TMPDIR=DIR STRATA_VM_CACHE=CACHE guarded-guest.sh IMAGE
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/lib.sh"

t_tmpdir
VMDIR=$T_TMP/vm
vm_cleanup() {
    vm_kill_started "$T_TMP"
    t_cleanup
}
vm_guard "$T_TMP" vm_cleanup
vm_dir_over_cache "${STRATA_VM_CACHE:?}" "$VMDIR" || exit 1
"$STRATA" vm start --vm-dir "$VMDIR" "$1" --instance guarded --timeout 600 \
    >"$T_TMP/start.out" 2>&1 &
wait $!
echo "guarded-guest: vm start exited ($?) before the kill" >&2
sleep 600
