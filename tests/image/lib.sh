# SPDX-License-Identifier: LGPL-2.1-or-later
# Support for the tests that run inside the test image (Dockerfile.test):
# TAP output, skips with a reason, and the machine's own layout. The
# container is the sandbox: overlayfs-init put /data/system on a tmpfs and
# assembled the root over it, so a test mounts no tmpfs of its own and
# cleans nothing up; the container's end does.
#
#   . /app/tests/lib.sh
#   t_begin "what is checked"; ...; t_ok / t_fail "why" / t_check CMD...
#   create_service NAME BODY     an s6 service dir in $SCANDIR, down
#   enable_service NAME [SECS]   starts it and waits until it is up
#   t_done

set -u
SYSTEM_DIR=${SYSTEM_DIR:-/data/system}
STATE_DIR=${STATE_DIR:-/data/state}
SCANDIR=${SCANDIR:-/etc/s6}
# Which container run of `scripts/test-image run` this is: 1, then 2 with
# the same /data/state volume.
STRATA_IMAGE_RUN=${STRATA_IMAGE_RUN:-1}
# The TAP helpers (t_begin, t_ok, t_fail, t_check, t_done, t_skip_all),
# shared with the integration tests.
. /app/tests/tap.sh

# create_service NAME BODY: writes $SCANDIR/NAME/run (BODY after "#!/bin/sh")
# and a "down" file: the service exists, s6 does not start it yet.
create_service() {
    cs_dir="$SCANDIR/$1"
    mkdir -p "$cs_dir" || return 1
    : >"$cs_dir/down" || return 1
    printf '#!/bin/sh\n%s\n' "$2" >"$cs_dir/run.tmp" &&
        chmod 0755 "$cs_dir/run.tmp" && mv "$cs_dir/run.tmp" "$cs_dir/run"
}

# enable_service NAME [TIMEOUT]: removes "down", has s6-svscan rescan, starts
# the service and waits (TIMEOUT seconds, default 30) until s6-svstat says up.
enable_service() {
    es_dir="$SCANDIR/$1"
    es_n=$((${2:-30} * 10))
    [ -x "$es_dir/run" ] || { echo "enable_service: no service '$es_dir'" >&2; return 1; }
    rm -f "$es_dir/down"
    s6-svscanctl -a "$SCANDIR" || return 1
    es_i=0
    while [ $es_i -lt "$es_n" ]; do
        # s6-supervise creates supervise/ once svscan picked the dir up.
        if s6-svok "$es_dir" 2>/dev/null; then
            s6-svc -u "$es_dir" 2>/dev/null
            case $(s6-svstat -o up "$es_dir" 2>/dev/null) in
            true) return 0 ;;
            esac
        fi
        es_i=$((es_i + 1))
        sleep 0.1
    done
    echo "enable_service: '$es_dir' is not up after ${2:-30} s" >&2
    return 1
}

# wait_file FILE TEXT [TIMEOUT]: until FILE contains TEXT.
wait_file() {
    wf_i=0
    while [ $wf_i -lt $((${3:-30} * 10)) ]; do
        grep -qF -- "$2" "$1" 2>/dev/null && return 0
        wf_i=$((wf_i + 1))
        sleep 0.1
    done
    return 1
}
