# SPDX-License-Identifier: LGPL-2.1-or-later
# s6 services for tests that run in a strata machine with a live
# `s6-svscan $SCANDIR` (the test image, `strata lab test`), shared by
# tests/image/lib.sh and tests/integration/lib.sh:
#
#   create_service NAME BODY     an s6 service dir in $SCANDIR, down
#   enable_service NAME [SECS]   starts it and waits until it is up
#   wait_file FILE TEXT [SECS]   until FILE contains TEXT
#   have_scanner                 whether an s6-svscan watches $SCANDIR
#
# SCANDIR defaults to /etc/s6, the machine's scandir.

SCANDIR=${SCANDIR:-/etc/s6}

# have_scanner: true when s6-svscan runs on $SCANDIR (its control fifo has
# a reader), so create_service and enable_service can work.
have_scanner() {
    command -v s6-svscanctl >/dev/null 2>&1 && [ -p "$SCANDIR/.s6-svscan/control" ] &&
        s6-svscanctl -a "$SCANDIR" 2>/dev/null
}

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
