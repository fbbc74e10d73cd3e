#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# State persistence and system-layer isolation across two containers that
# share one /data/state volume (`scripts/test-image run` starts them with
# STRATA_IMAGE_RUN=1, then 2, and the same STRATA_IMAGE_TOKEN).
# Run 1: a service writes the token under STATE_DIR; the test changes the
# system (/etc, /usr) and sees the change in the scratch upper.
# Run 2: the token is there; the system changes are gone with run 1's upper.
. /app/tests/lib.sh

token=${STRATA_IMAGE_TOKEN:-}
[ -n "$token" ] || t_skip_all "STRATA_IMAGE_TOKEN is not set (scripts/test-image run sets it)"
log="$STATE_DIR/it/log"

if [ "$STRATA_IMAGE_RUN" = 1 ]; then
    t_begin "run 1: a service writes into STATE_DIR"
    mkdir -p "$STATE_DIR/it"
    if create_service it-state "echo run-1 $token >>$log
exec sleep 100000" && enable_service it-state 30 && wait_file "$log" "run-1 $token" 10; then
        t_ok
    else
        t_fail "'$log' has no 'run-1 $token': $(cat "$log" 2>&1)"
    fi

    t_begin "run 1: system changes land in the scratch upper ($SYSTEM_DIR/upper)"
    echo "$token" >/etc/it-system-change
    mkdir -p /usr/local/share/it && echo "$token" >/usr/local/share/it/file
    rm -f /etc/issue.net
    if grep -qx "$token" "$SYSTEM_DIR/upper/etc/it-system-change" &&
        grep -qx "$token" "$SYSTEM_DIR/upper/usr/local/share/it/file" &&
        [ -c "$SYSTEM_DIR/upper/etc/issue.net" ]; then
        t_ok
    else
        t_fail "upper: $(ls -la "$SYSTEM_DIR/upper/etc" 2>&1 | head -5)"
    fi
else
    t_begin "run 2: what run 1's service wrote is in STATE_DIR"
    if grep -qx "run-1 $token" "$log" 2>/dev/null; then
        t_ok
    else
        t_fail "'$log': $(cat "$log" 2>&1)"
    fi

    t_begin "run 2: run 1's system changes vanished with its container"
    left=""
    [ -e /etc/it-system-change ] && left="$left /etc/it-system-change"
    [ -e /usr/local/share/it ] && left="$left /usr/local/share/it"
    [ -e /etc/issue.net ] || left="$left (/etc/issue.net still removed)"
    [ -e "$SYSTEM_DIR/upper/etc/it-system-change" ] && left="$left upper/etc/it-system-change"
    [ -z "$left" ] && t_ok || t_fail "left over:$left"

    t_begin "run 2: the service created in run 1 is gone too (/etc/s6 is system)"
    [ ! -e "$SCANDIR/it-state" ] && t_ok || t_fail "'$SCANDIR/it-state' exists"
fi

t_done
