#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# The fast loop for the orchestrator: sync the tree to a target, build
# strata incrementally (there, or here when the target has no toolchain),
# restart strata orchd, wait for it to answer (15 s), run the smoke tests
# over its API, show the packages and the last lines of the daemon's log;
# then wait for Enter to go again (Ctrl+C stops).
#
#   scripts/dev-container-test.sh [--once] [--target HOST] [--ssh-config FILE]
#                                 [--dir DIR] [--local vm|lab] [--vm-dir DIR]
#                                 [--vm-name NAME] [--vm-instance I] [--timeout S]
#
#   --target HOST       an ssh host (ssh and rsync over it; root there, as
#                       the daemon and podman need it). Without one the
#                       target is local (--local)
#   --ssh-config FILE   ssh -F FILE for ssh and rsync (keys, port, known
#                       hosts of the target)
#   --dir DIR           where the tree goes on the target [/var/tmp/strata-dev
#                       on a host or a vm instance; a temp dir bound into
#                       the lab machine]
#   --local vm|lab      the local target: vm, a started strata vm instance
#                       (its ssh_config: the vm dir's key, the image's host
#                       key checked strictly), left running at the end; lab,
#                       an ssh server in a strata lab machine on a loopback
#                       port (scripts/dev-target), stopped at the end with
#                       every process in it [vm when the instance runs,
#                       else lab]
#   --vm-dir DIR        the VM lab [$STRATA_VM_DIR, else build/vm-lab]
#   --vm-name NAME      the instance's image [strata-test]
#   --vm-instance I     the instance [default]
#   --once              one round, then stop everything; the exit status is
#                       the smoke tests' (0 all passed, 77 skipped)
#   --timeout S         the smoke tests' cap [theirs, 300 s]: more for a
#                       slow target (a TCG guest takes five to seven minutes)
#
# A target without meson, ninja and cc (a vm image has none) gets strata
# built here (build dir $STRATA_BUILD_ROOT, else build/) and copied with the
# shared libraries it needs that the target lacks (into DIR/build/.libs).
# The daemon runs with its own state dir, socket and podman store under
# DIR/.dev, never the target's own, with the smoke tests' short pull policy
# and a registries.conf trusting their registry on a free loopback port, so
# that all of them run (the crash test restarts it); the round's end (or
# Ctrl+C) stops it and removes what the tests made.
set -u
# ldconfig (which libraries the target has) and root's tools live there
PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin

SRC=$(cd "$(dirname "$0")/.." && pwd)
HOST_BUILD=${STRATA_BUILD_ROOT:-$SRC/build}
STRATA=${STRATA:-$HOST_BUILD/src/cli/strata}
ONCE=0
TARGET=""
SSH_CONFIG=""
DIR=""
LOCAL=""
VM_DIR=${STRATA_VM_DIR:-$SRC/build/vm-lab}
VM_NAME=strata-test
VM_INSTANCE=default
SMOKE_CAP=""
need_arg() { [ $# -ge 2 ] && [ -n "$2" ] || { echo "dev-container-test: $1 needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
    case "$1" in
    --once) ONCE=1 ;;
    --target) need_arg "$@"; TARGET=$2; shift ;;
    --ssh-config) need_arg "$@"; SSH_CONFIG=$2; shift ;;
    --dir) need_arg "$@"; DIR=$2; shift ;;
    --local) need_arg "$@"; LOCAL=$2; shift ;;
    --vm-dir) need_arg "$@"; VM_DIR=$2; shift ;;
    --vm-name) need_arg "$@"; VM_NAME=$2; shift ;;
    --vm-instance) need_arg "$@"; VM_INSTANCE=$2; shift ;;
    --timeout) need_arg "$@"; SMOKE_CAP=$2; shift ;;
    -h | --help) sed -n '3,43s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "dev-container-test: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done

case "$SMOKE_CAP" in *[!0-9]*) echo "dev-container-test: --timeout takes seconds" >&2; exit 2 ;; esac
case "$DIR" in "" | /*) ;; *) echo "dev-container-test: --dir must be absolute" >&2; exit 2 ;; esac
case "$LOCAL" in "" | vm | lab) ;; *) echo "dev-container-test: --local takes vm or lab, not '$LOCAL'" >&2; exit 2 ;; esac
if [ -n "$TARGET" ] && [ -n "$LOCAL" ]; then
    echo "dev-container-test: --local is for the local target: not with --target" >&2
    exit 2
fi
if [ -n "$SSH_CONFIG" ] && [ ! -r "$SSH_CONFIG" ]; then
    echo "dev-container-test: cannot read the --ssh-config '$SSH_CONFIG'" >&2
    exit 2
fi

# vm_ssh_config: the running instance's ssh_config (strata vm writes it at
# start: the lab's key, the forwarded port, the image's known_hosts under
# its alias, StrictHostKeyChecking yes); fails when it does not run.
vm_ssh_config() {
    [ -x "$STRATA" ] && "$STRATA" vm --vm-dir "$VM_DIR" ssh-config "$VM_NAME" --instance "$VM_INSTANCE"
}

LOCAL_TMP=""
if [ -z "$TARGET" ] && [ -z "$LOCAL" ]; then
    if vm_ssh_config >/dev/null 2>&1; then LOCAL=vm; else LOCAL=lab; fi
fi
if [ "$LOCAL" = vm ]; then
    printf '\n== the local target: the strata vm instance %s/%s of %s\n' "$VM_NAME" "$VM_INSTANCE" "$VM_DIR"
    if ! SSH_CONFIG=$(vm_ssh_config); then
        echo "dev-container-test: no running instance '$VM_INSTANCE' of '$VM_NAME' in '$VM_DIR':" \
            "start it (make vm-start) or use --local lab" >&2
        exit 1
    fi
    TARGET=strata-vm-$VM_NAME-$VM_INSTANCE
    DIR=${DIR:-/var/tmp/strata-dev}
    echo "ssh -F $SSH_CONFIG $TARGET"
elif [ "$LOCAL" = lab ]; then
    # the local target: its dir (keys, and the tree when no --dir) is bound
    # (paths kept short: podman refuses a runroot over 50 characters)
    # into the lab machine
    LOCAL_TMP=$(mktemp -d "${TMPDIR:-/tmp}/strata-dev.XXXXXX")
    trap '"$SRC/scripts/dev-target" stop "$LOCAL_TMP/t"; rm -rf "$LOCAL_TMP"' EXIT
    printf '\n== start the local target (an ssh server in a strata lab machine)\n'
    SSH_CONFIG=$(STRATA=$STRATA "$SRC/scripts/dev-target" start \
        "$LOCAL_TMP/t") || { rc=$?; [ $rc -eq 77 ] || rc=1; exit $rc; }
    TARGET=strata-dev
    DIR=${DIR:-$LOCAL_TMP/t/tree}
    echo "ssh -F $SSH_CONFIG $TARGET"
else
    DIR=${DIR:-/var/tmp/strata-dev}
fi
SSH="ssh -o BatchMode=yes${SSH_CONFIG:+ -F $SSH_CONFIG}"

say() { printf '\n== %s\n' "$*"; }
# on_target CMD: runs the shell command CMD on the target, in DIR (with
# the sbin dirs, where ldconfig is, on the PATH).
on_target() {
    $SSH "$TARGET" "PATH=\$PATH:/usr/sbin:/sbin; cd '$DIR' && $1"
}

# The daemon's environment on the target: its own podman store (what
# lib-podman.sh sets up), paths under DIR/.dev, the libraries copied with
# a strata built here, and a registries.conf trusting the smoke tests'
# registry on the loopback port in DIR/.dev/registry-port.
ENV="{ [ ! -d build/.libs ] || export LD_LIBRARY_PATH='$DIR/build/.libs'; } &&
. tests/integration/lib-podman.sh && podman_private '$DIR/.dev/pm' &&
export CONTAINERS_REGISTRIES_CONF='$DIR/.dev/registries.conf'"
POLICY='{"pull": {"attempts": 3, "delays_seconds": [3, 6]}, "install": {"watch_seconds": 2}}'
ORCHD="build/src/cli/strata orchd --state-dir '$DIR/.dev/state' --socket '$DIR/.dev/orchd.sock' \
--listen 127.0.0.1:0 --interval 2"

# stop_daemon: SIGTERM to the daemon this loop started and to the one its
# PID file names (the smoke tests' crash test starts it anew), waiting
# up to 10 s for each.
stop_daemon() {
    on_target "for f in .dev/orchd.pid .dev/state/manager.pid; do [ -s \$f ] || continue;
        read -r p _ <\$f; kill -TERM \$p 2>/dev/null;
        i=0; while kill -0 \$p 2>/dev/null && [ \$i -lt 100 ]; do i=\$((i + 1)); sleep 0.1; done;
        done; rm -f .dev/orchd.pid" 2>/dev/null
}

# rpc METHOD WAIT: the body of the target's orchd's answer to METHOD on
# DIR/.dev/orchd.sock, retried for up to WAIT seconds until it has a
# "result" (else exit 1). python3 on the target, as a vm image has no curl.
rpc() {
    $SSH "$TARGET" "cd '$DIR' && python3 - .dev/orchd.sock '$1' '$2'" <<'EOF'
import socket, sys, time

path, method, wait = sys.argv[1], sys.argv[2], float(sys.argv[3])
body = ('{"jsonrpc":"2.0","method":"%s","id":1}' % method).encode()
req = (b"POST /rpc/v1 HTTP/1.0\r\nHost: orchd\r\nContent-Type: application/json\r\n"
       b"Content-Length: %d\r\n\r\n" % len(body)) + body
deadline = time.monotonic() + wait
answer = b""
while True:
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(2)
            s.connect(path)
            s.sendall(req)
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        answer = data.partition(b"\r\n\r\n")[2]
        if b'"result"' in answer:
            print(answer.decode())
            sys.exit(0)
    except OSError:
        pass
    if time.monotonic() >= deadline:
        if answer:
            print(answer.decode())
        sys.exit(1)
    time.sleep(0.1)
EOF
}

# The libraries strata opens at run time (dlopen), by soname: ldd does not
# list them. libmicrohttpd serves orchd's API; libarchive reads and writes
# the OCI layer tarballs (strata layer import, export, pull).
DLOPENED="libmicrohttpd.so.12 libarchive.so.13"

# build_here: strata built in HOST_BUILD and copied to the target's
# DIR/build, with the shared libraries it links or opens (DLOPENED, and
# what they link) that the target lacks (by its ldconfig -p), the C
# library's own never: those go to build/.libs, the daemon's
# LD_LIBRARY_PATH. Same Debian release on both sides: a vm guest's.
build_here() {
    { [ -f "$HOST_BUILD/build.ninja" ] || meson setup "$HOST_BUILD" >/dev/null; } &&
        ninja -C "$HOST_BUILD" src/cli/strata >"$STAGE/ninja.log" 2>&1 ||
        { tail -5 "$STAGE/ninja.log"; return 1; }
    tail -1 "$STAGE/ninja.log"
    opened=$(for n in $DLOPENED; do ldconfig -p | awk -v n="$n" '$1 == n { print $NF; exit }'; done)
    for f in "$HOST_BUILD/src/cli/strata" $opened; do
        [ "$f" = "$HOST_BUILD/src/cli/strata" ] || echo "$f"
        ldd "$f" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }'
    done | sort -u | grep -Ev '/(libc|libm|libdl|libpthread|librt|ld-linux[^/]*)\.so' >"$STAGE/libs"
    lacks=$(sed 's,.*/,,' "$STAGE/libs" |
        on_target "while read -r n; do ldconfig -p | grep -q \"/\$n\$\" || echo \"\$n\"; done") ||
        return 1
    rm -rf "$STAGE/b" && mkdir -p "$STAGE/b/src/cli" "$STAGE/b/.libs" &&
        cp "$HOST_BUILD/src/cli/strata" "$STAGE/b/src/cli/strata" || return 1
    # (times kept: the next round's rsync finds them unchanged)
    for n in $lacks; do cp -pL "$(grep "/$n\$" "$STAGE/libs")" "$STAGE/b/.libs/" || return 1; done
    echo "copy build/src/cli/strata to $TARGET, with what it lacks:" $lacks
    $SSH "$TARGET" "mkdir -p '$DIR/build/src/cli'" &&
        rsync -a --delete -e "$SSH" "$STAGE/b/.libs/" "$TARGET:$DIR/build/.libs/" &&
        rsync -a -e "$SSH" "$STAGE/b/src/cli/strata" "$TARGET:$DIR/build/src/cli/"
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
    [ "$LOCAL" = vm ] && echo "the instance keeps running (make vm-stop; strata vm stop $VM_NAME)"
    rm -rf "$STAGE"
}
STAGE=$(mktemp -d "${TMPDIR:-/tmp}/strata-dev-stage.XXXXXX") || exit 1
trap cleanup EXIT
trap 'echo; echo "dev-container-test: stopped"; exit 130' INT TERM

round() {
    say "sync: $SRC -> $TARGET:$DIR"
    $SSH "$TARGET" "mkdir -p '$DIR'" &&
        rsync -a --delete -e "$SSH" --exclude /build --exclude '/build-*' --exclude /.git \
            --exclude /.dev "$SRC/" "$TARGET:$DIR/" || { echo "sync failed"; return 1; }

    # only strata: what the loop restarts and tests
    if on_target "command -v meson && command -v ninja && command -v cc" >/dev/null 2>&1; then
        say "build strata (incremental)"
        on_target "rm -rf build/.libs &&
            { [ -f build/build.ninja ] || meson setup build >/dev/null; } && ninja -C build src/cli/strata" |
            tail -3
    else
        say "build strata here (incremental; the target has no meson, ninja or cc)"
        build_here || { echo "build failed"; return 1; }
    fi
    on_target "[ -x build/src/cli/strata ]" || { echo "build failed"; return 1; }

    say "restart orchd"
    stop_daemon
    # its policy: short pull delays and watch, as the smoke tests' own
    # daemon has (run-container-tests.sh --start), the second delay longer
    # (the test's registry starts in it, slowly on a TCG guest); a free
    # port for their registry, trusted
    on_target "mkdir -p .dev/state && echo '$POLICY' >.dev/state/config.json &&
        python3 -c 'import socket; s = socket.socket(); s.bind((\"127.0.0.1\", 0)); print(s.getsockname()[1])' \
            >.dev/registry-port &&
        printf '[[registry]]\\nlocation = \"127.0.0.1:%s\"\\ninsecure = true\\n' \$(cat .dev/registry-port) \
            >.dev/registries.conf &&
        $ENV && { $ORCHD >/dev/null 2>>.dev/orchd.log </dev/null &
        echo \$! >.dev/orchd.pid; }" || { echo "cannot start orchd"; return 1; }

    say "wait for its health (15 s)"
    if ! rpc server.info 15 >/dev/null; then
        echo "orchd did not answer within 15 s:"
        on_target "tail -5 .dev/orchd.log"
        return 1
    fi
    echo "orchd answers on $DIR/.dev/orchd.sock"

    say "smoke tests"
    on_target "$ENV && STRATA=build/src/cli/strata scripts/run-container-tests.sh \
        --socket .dev/orchd.sock --log .dev/orchd.log --interval 2 --registry-port \$(cat .dev/registry-port)${SMOKE_CAP:+ --timeout $SMOKE_CAP}"
    rc=$?

    say "packages"
    rpc container.list 0
    say "the daemon's last log lines"
    on_target "tail -8 .dev/orchd.log"
    return $rc
}

while :; do
    round
    rc=$?
    if [ $ONCE -eq 1 ]; then
        printf '\nround done (exit %d)\n' "$rc"
        exit $rc
    fi
    printf '\nround done (exit %d): Enter to go again, Ctrl+C to stop ' "$rc"
    read -r _ || exit $rc
done
