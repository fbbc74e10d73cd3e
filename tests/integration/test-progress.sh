#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# The live progress line of long work (system-migrate up): on a terminal (a
# real pseudo-terminal, pty-run.py) one line "PROGRAM: applying [N/M] ID
# (ELAPSED s)" redrawn in place while a migration runs, wiped before other
# output; on a pipe, with --json, with -q or TERM=dumb no terminal control
# at all (a pipe gets one plain log line per step).
. "$(dirname "$0")/lib.sh"

need_root
need_program python3 python3
PTY="$(dirname "$0")/pty-run.py"
t_tmpdir

MD=$T_TMP/migrations
mkdir -p "$MD/20260101-001_a" "$MD/20260101-002_b"
printf 'echo hello from a\nsleep 1\n' >"$MD/20260101-001_a/install_script.sh"
echo 'sleep 0.6' >"$MD/20260101-002_b/install_script.sh"
n=0
up() { # up [OPTIONS...]: a fresh data dir each time
    n=$((n + 1))
    "$SYSTEM_MIGRATE" --data "$T_TMP/data$n" --dir "$MD" --base / "$@" up
}
# check FILE PYTHON-EXPR: the expression over the bytes b of FILE
check() {
    python3 -c 'import re, sys
b = open(sys.argv[1], "rb").read()
sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2"
}
show() { python3 -c 'import sys; print(repr(open(sys.argv[1], "rb").read()[-1500:]))' "$1"; }

t_begin "on a terminal: stage, count and id on one line, redrawn in place as the time runs"
TERM=xterm COLUMNS=120 python3 "$PTY" "$T_TMP/tty.out" sh -c "$(command -v "$SYSTEM_MIGRATE") \
    --data '$T_TMP/tty-data' --dir '$MD' --base / up"
rc=$?
if [ $rc -eq 0 ] &&
    check "$T_TMP/tty.out" 'b"\r\x1b[Ksystem-migrate: applying [1/2] 20260101-001_a (0.0 s)" in b' &&
    check "$T_TMP/tty.out" 'b"\r\x1b[Ksystem-migrate: applying [2/2] 20260101-002_b (" in b' &&
    check "$T_TMP/tty.out" 'len(set(re.findall(rb"applying \[1/2\] 20260101-001_a \(([0-9.]+) s\)", b))) >= 3' &&
    check "$T_TMP/tty.out" 'b"\r\x1b[Kapplied 20260101-001_a in " in b' &&
    check "$T_TMP/tty.out" 'b.endswith(b"R 0\r\n")'; then
    t_ok
else
    t_fail "rc $rc: $(show "$T_TMP/tty.out")"
fi

t_begin "on a terminal: a migration's own output lands on its own line, not after the progress"
if check "$T_TMP/tty.out" 'b"\x1b[Khello from a\r\n" in b' &&
    ! check "$T_TMP/tty.out" 're.search(rb"\(\d+\.\d s\)hello", b)'; then
    t_ok
else
    t_fail "$(show "$T_TMP/tty.out")"
fi

t_begin "on a pipe: no terminal control, one plain log line per step"
up >"$T_TMP/pipe.out" 2>"$T_TMP/pipe.err"
rc=$?
if [ $rc -eq 0 ] && ! check "$T_TMP/pipe.err" 'b"\x1b" in b or b"\r" in b' &&
    ! check "$T_TMP/pipe.out" 'b"\x1b" in b or b"\r" in b' &&
    grep -qx "system-migrate: applying 20260101-001_a" "$T_TMP/pipe.err" &&
    grep -qx "system-migrate: applying 20260101-002_b" "$T_TMP/pipe.err" &&
    grep -q "^applied 20260101-002_b in" "$T_TMP/pipe.out"; then
    t_ok
else
    t_fail "rc $rc: $(cat "$T_TMP/pipe.err" "$T_TMP/pipe.out")"
fi

for mode in --json -q TERM=dumb; do
    t_begin "on a terminal with $mode: no progress line"
    n=$((n + 1))
    case $mode in
    TERM=dumb) env=dumb opts="" ;;
    *) env=xterm opts=$mode ;;
    esac
    TERM=$env python3 "$PTY" "$T_TMP/m.out" sh -c "$(command -v "$SYSTEM_MIGRATE") \
        --data '$T_TMP/data$n' --dir '$MD' --base / $opts up"
    rc=$?
    ok=1
    check "$T_TMP/m.out" 'b"\x1b[K" in b' && ok=0
    case $mode in
    --json) check "$T_TMP/m.out" 'b"\"applied\"" in b and b"applying" not in b' || ok=0 ;;
    -q) check "$T_TMP/m.out" 'b"applying" not in b' || ok=0 ;;
    TERM=dumb) check "$T_TMP/m.out" 'b"system-migrate: applying 20260101-001_a\r\n" in b' || ok=0 ;;
    esac
    if [ $rc -eq 0 ] && [ $ok -eq 1 ]; then t_ok; else t_fail "rc $rc: $(show "$T_TMP/m.out")"; fi
done

t_done
