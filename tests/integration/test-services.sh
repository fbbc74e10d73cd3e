#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# create_service and enable_service (tests/services.sh) in the machine the
# suite runs in: `strata lab test` for make check, the test image's
# container for make image-test. Both run s6-svscan on /etc/s6 with the
# test-runner service that runs this suite; so does the throwaway guest of
# `strata vm run` (make vm-test-integration), whose strata-run service
# runs the command QEMU passed in. A real service is created there, started
# through s6-svscan's rescan, restarted by s6 after a SIGKILL and stopped
# again. Outside such a machine (the suite run directly) it skips: it
# would touch the host's scandir.
. "$(dirname "$0")/lib.sh"

need_root
need_program s6-svscan s6
vm_run_guest() {
    [ -d "$SCANDIR/strata-run" ] && [ -r /sys/firmware/qemu_fw_cfg/by_name/opt/strata/command/raw ]
}
if ! have_scanner || ! { [ -d "$SCANDIR/test-runner" ] || vm_run_guest; }; then
    t_skip_all "not in a test machine: no s6-svscan with a test-runner on '$SCANDIR' (make check runs the suite in 'strata lab test', make image-test in the test image, make vm-test-integration in a vm run guest)"
fi
t_tmpdir
name="it-service-$$"
dir="$SCANDIR/$name"
out="$T_TMP/out"
svc_cleanup() {
    if [ -d "$dir" ]; then
        s6-svc -wD -T 5000 -d "$dir" >/dev/null 2>&1
        rm -rf "$dir"
        s6-svscanctl -a "$SCANDIR" 2>/dev/null
    fi
    t_cleanup
}
trap 'svc_cleanup' EXIT
trap 'svc_cleanup; exit 130' INT TERM

t_begin "create_service writes $dir, down"
if create_service "$name" "echo up-\$\$ >>$out
exec sleep 100000" && [ -f "$dir/down" ] && [ -x "$dir/run" ] && [ ! -s "$out" ]; then
    t_ok
else
    t_fail "no service dir '$dir'"
fi

t_begin "enable_service starts it under the machine's s6-svscan"
if enable_service "$name" 30 && wait_file "$out" up- 10; then
    t_ok
else
    t_fail "$(s6-svstat "$dir" 2>&1)"
fi

t_begin "s6 restarts it after a SIGKILL"
pid=$(s6-svstat -o pid "$dir")
kill -KILL "$pid"
i=0
now=$pid
while [ $i -lt 100 ]; do
    now=$(s6-svstat -o pid "$dir")
    [ "$now" != "$pid" ] && [ "$now" != -1 ] && break
    i=$((i + 1))
    sleep 0.1
done
[ "$now" != "$pid" ] && [ "$now" != -1 ] && [ "$(grep -c up- "$out")" -ge 2 ] && t_ok ||
    t_fail "pid $pid, then '$now'; $(cat "$out")"

t_begin "s6-svc -d stops it"
if s6-svc -wD -T 10000 -d "$dir" && [ "$(s6-svstat -o up "$dir")" = false ]; then
    t_ok
else
    t_fail "$(s6-svstat "$dir" 2>&1)"
fi

t_done
