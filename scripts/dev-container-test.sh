#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# The fast loop for the orchestrator: sync the tree to a target, build
# strata there incrementally, restart strata orchd, wait for it to answer
# (15 s), run the smoke tests over its API, show the packages and the last
# lines of the daemon's log; then wait for Enter to go again (Ctrl+C stops).
#
#   scripts/dev-container-test.sh [--once] [--target HOST] [--ssh-config FILE]
#                                 [--dir DIR]
#
#   --target HOST       an ssh host (ssh and rsync over it; root there, as
#                       the daemon and podman need it). Without one the
#                       target is local: an ssh server in a strata lab
#                       machine on a loopback port (scripts/dev-target),
#                       reached over ssh like any other host, stopped at the
#                       end with every process in it
#   --ssh-config FILE   ssh -F FILE for ssh and rsync (keys, port, known
#                       hosts of the target)
#   --dir DIR           where the tree goes on the target [/var/tmp/strata-dev
#                       on a host; a temp dir bound into the local target]
#   --once              one round, then stop everything; the exit status is
#                       the smoke tests' (0 all passed)
#
# The daemon runs with its own state dir, socket and podman store under
# DIR/.dev, never the target's own; the round's end (or Ctrl+C) stops it
# and removes what the tests made.
set -u

SRC=$(cd "$(dirname "$0")/.." && pwd)
ONCE=0
TARGET=""
SSH_CONFIG=""
DIR=""
need_arg() { [ $# -ge 2 ] && [ -n "$2" ] || { echo "dev-container-test: $1 needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
    case "$1" in
    --once) ONCE=1 ;;
    --target) need_arg "$@"; TARGET=$2; shift ;;
    --ssh-config) need_arg "$@"; SSH_CONFIG=$2; shift ;;
    --dir) need_arg "$@"; DIR=$2; shift ;;
    -h | --help) sed -n '3,29s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "dev-container-test: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done

case "$DIR" in "" | /*) ;; *) echo "dev-container-test: --dir must be absolute" >&2; exit 2 ;; esac
if [ -n "$SSH_CONFIG" ] && [ ! -r "$SSH_CONFIG" ]; then
    echo "dev-container-test: cannot read the --ssh-config '$SSH_CONFIG'" >&2
    exit 2
fi

LOCAL_TMP=""
if [ -z "$TARGET" ]; then
    # the local target: its dir (keys, and the tree when no --dir) is bound
    # (paths kept short: podman refuses a runroot over 50 characters)
    # into the lab machine
    LOCAL_TMP=$(mktemp -d "${TMPDIR:-/tmp}/strata-dev.XXXXXX")
    trap '"$SRC/scripts/dev-target" stop "$LOCAL_TMP/t"; rm -rf "$LOCAL_TMP"' EXIT
    printf '\n== start the local target (an ssh server in a strata lab machine)\n'
    SSH_CONFIG=$(STRATA=${STRATA:-$SRC/build/src/cli/strata} "$SRC/scripts/dev-target" start \
        "$LOCAL_TMP/t") || { rc=$?; [ $rc -eq 77 ] || rc=1; exit $rc; }
    TARGET=strata-dev
    DIR=${DIR:-$LOCAL_TMP/t/tree}
    echo "ssh -F $SSH_CONFIG $TARGET"
else
    DIR=${DIR:-/var/tmp/strata-dev}
fi
SSH="ssh -o BatchMode=yes${SSH_CONFIG:+ -F $SSH_CONFIG}"

say() { printf '\n== %s\n' "$*"; }
# on_target CMD: runs the shell command CMD on the target, in DIR.
on_target() {
    $SSH "$TARGET" "cd '$DIR' && $1"
}

# The daemon's environment on the target: its own podman store (what
# lib-podman.sh sets up) and paths under DIR/.dev.
ENV=". tests/integration/lib-podman.sh && podman_private '$DIR/.dev/pm'"
ORCHD="build/src/cli/strata orchd --state-dir '$DIR/.dev/state' --socket '$DIR/.dev/orchd.sock' \
--listen 127.0.0.1:0 --interval 2"

stop_daemon() {
    on_target "if [ -s .dev/orchd.pid ]; then p=\$(cat .dev/orchd.pid); kill -TERM \$p 2>/dev/null;
        i=0; while kill -0 \$p 2>/dev/null && [ \$i -lt 100 ]; do i=\$((i + 1)); sleep 0.1; done;
        rm -f .dev/orchd.pid; fi" 2>/dev/null
}

cleanup() {
    trap '' INT TERM
    stop_daemon
    on_target "[ -d .dev/pm/root ] && { $ENV && podman_private_clean; }; rm -rf .dev" \
        >/dev/null 2>&1
    if [ -n "$LOCAL_TMP" ]; then
        "$SRC/scripts/dev-target" stop "$LOCAL_TMP/t"
        rm -rf "$LOCAL_TMP"
    fi
}
trap cleanup EXIT
trap 'echo; echo "dev-container-test: stopped"; exit 130' INT TERM

round() {
    say "sync: $SRC -> $TARGET:$DIR"
    $SSH "$TARGET" "mkdir -p '$DIR'" &&
        rsync -a --delete -e "$SSH" --exclude /build --exclude '/build-*' --exclude /.git \
            --exclude /.dev "$SRC/" "$TARGET:$DIR/" || { echo "sync failed"; return 1; }

    # only strata: what the loop restarts and tests
    say "build strata (incremental)"
    on_target "{ [ -f build/build.ninja ] || meson setup build >/dev/null; } && ninja -C build src/cli/strata" |
        tail -3
    on_target "[ -x build/src/cli/strata ]" || { echo "build failed"; return 1; }

    say "restart orchd"
    stop_daemon
    on_target "mkdir -p .dev && $ENV && { $ORCHD >/dev/null 2>>.dev/orchd.log </dev/null &
        echo \$! >.dev/orchd.pid; }" || { echo "cannot start orchd"; return 1; }

    say "wait for its health (15 s)"
    if ! on_target "i=0; until curl -s -m 1 --unix-socket .dev/orchd.sock -X POST \
        -d '{\"jsonrpc\":\"2.0\",\"method\":\"server.info\",\"id\":1}' http://orchd/rpc/v1 |
        grep -q '\"result\"'; do i=\$((i + 1)); [ \$i -lt 150 ] || exit 1; sleep 0.1; done"; then
        echo "orchd did not answer within 15 s:"
        on_target "tail -5 .dev/orchd.log"
        return 1
    fi
    echo "orchd answers on $DIR/.dev/orchd.sock"

    say "smoke tests"
    on_target "$ENV && STRATA=build/src/cli/strata scripts/run-container-tests.sh \
        --socket .dev/orchd.sock --log .dev/orchd.log --interval 2"
    rc=$?

    say "packages"
    on_target "curl -s --unix-socket .dev/orchd.sock -X POST \
        -d '{\"jsonrpc\":\"2.0\",\"method\":\"container.list\",\"id\":1}' http://orchd/rpc/v1"
    echo
    say "the daemon's last log lines"
    on_target "tail -8 .dev/orchd.log"
    return $rc
}

while :; do
    round
    rc=$?
    [ $ONCE -eq 1 ] && exit $rc
    printf '\nround done (exit %d): Enter to go again, Ctrl+C to stop ' "$rc"
    read -r _ || exit $rc
done
