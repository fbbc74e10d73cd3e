#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# strata-nfsd with the libnfs-utils tools (nfs-cp, nfs-ls, nfs-cat), and the
# exports file: squashing, read-only, client networks, SIGHUP, refusals.
. "$(dirname "$0")/lib.sh"
need_root
need_program nfs-cp libnfs-utils
need_program nfs-ls libnfs-utils
need_program nfs-cat libnfs-utils
: "${STRATA_NFSD:?STRATA_NFSD is not set}"
t_tmpdir

SERVER_PID=""
PORT=""

# start_server ARGS...: starts strata-nfsd on a free loopback port.
start_server() {
    out="$T_TMP/server.out"
    : > "$out"
    "$STRATA_NFSD" --listen 127.0.0.1:0 --state-dir "$T_TMP/state" "$@" \
        > "$out" 2> "$T_TMP/server.err" &
    SERVER_PID=$!
    i=0
    while ! grep -q '^listening on' "$out"; do
        i=$((i + 1))
        if [ $i -gt 200 ] || ! kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "# server did not start: $(cat "$T_TMP/server.err")"
            return 1
        fi
        sleep 0.05
    done
    PORT=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$out")
}

stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    kill -TERM "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID"
    rc=$?
    SERVER_PID=""
    return $rc
}

cleanup_all() {
    if [ -n "$SERVER_PID" ]; then
        kill -TERM "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
    fi
    t_cleanup
}
trap cleanup_all EXIT

url() { # url PATH
    echo "nfs://127.0.0.1$1?version=3&nfsport=$PORT&mountport=$PORT"
}

mkdir -p "$T_TMP/export/sub" "$T_TMP/state"
echo "hello over nfs" > "$T_TMP/export/sub/greeting"
head -c 16777216 /dev/urandom > "$T_TMP/src.bin"

t_begin "the server starts on a free loopback port"
if start_server "$T_TMP/export"; then t_ok; else t_fail; t_done; exit 1; fi

t_begin "nfs-ls lists the export root"
t_check sh -c "nfs-ls '$(url /)' | grep -q ' sub\$'"

t_begin "nfs-cat reads a file"
t_check sh -c "[ \"\$(nfs-cat '$(url /sub/greeting)')\" = 'hello over nfs' ]"

t_begin "nfs-cp writes 16 MiB"
t_check sh -c "nfs-cp '$T_TMP/src.bin' '$(url //copy.bin)' && cmp '$T_TMP/src.bin' '$T_TMP/export/copy.bin'"

t_begin "nfs-cp reads it back"
t_check sh -c "nfs-cp '$(url //copy.bin)' '$T_TMP/back.bin' && cmp '$T_TMP/src.bin' '$T_TMP/back.bin'"

t_begin "nfs-ls -R walks directories"
t_check sh -c "nfs-ls -R '$(url /)' | grep -q greeting"

t_begin "SIGTERM stops the server with status 0"
if stop_server; then t_ok; else t_fail "exit status $?"; fi

t_begin "listening on a non-loopback address without an exports file is refused"
out=$("$STRATA_NFSD" --listen 0.0.0.0:0 --state-dir "$T_TMP/state" "$T_TMP/export" 2>&1)
rc=$?
if [ $rc -eq 2 ] && echo "$out" | grep -q "refusing"; then t_ok; else t_fail "rc=$rc: $out"; fi

t_begin "an invalid exports file is refused naming the line"
printf '%s\n' "# comment" "$T_TMP/export 127.0.0.1(rw,bogus)" > "$T_TMP/bad-exports"
out=$("$STRATA_NFSD" --listen 127.0.0.1:0 --state-dir "$T_TMP/state" --exports "$T_TMP/bad-exports" 2>&1)
rc=$?
if [ $rc -ne 0 ] && echo "$out" | grep -q "line 2: unknown option 'bogus'"; then t_ok; else t_fail "rc=$rc: $out"; fi

t_begin "a missing export directory is refused naming it"
out=$("$STRATA_NFSD" --listen 127.0.0.1:0 --state-dir "$T_TMP/state" "$T_TMP/missing" 2>&1)
rc=$?
if [ $rc -eq 1 ] && echo "$out" | grep -q "cannot export '$T_TMP/missing': No such file"; then
    t_ok
else
    t_fail "rc=$rc: $out"
fi

t_begin "--help describes the options"
t_check sh -c "'$STRATA_NFSD' --help | grep -q -- '--exports FILE'"

# Exports file: three exports with different options.
mkdir -p "$T_TMP/squash" "$T_TMP/allsq" "$T_TMP/ro" "$T_TMP/denied"
chmod 1777 "$T_TMP/squash" "$T_TMP/allsq"
echo "read only" > "$T_TMP/ro/file"
cat > "$T_TMP/exports" <<EOF2
# path          clients
$T_TMP/squash   127.0.0.1(rw,root_squash)
$T_TMP/allsq    127.0.0.0/8(rw,all_squash,anonuid=1234,anongid=4321)
$T_TMP/ro       127.0.0.1/32(ro,no_root_squash)
$T_TMP/denied   10.0.0.0/8(rw) 192.168.1.0/255.255.255.0(rw)
EOF2

t_begin "the server starts with an exports file"
if start_server --exports "$T_TMP/exports"; then t_ok; else t_fail; fi

t_begin "root_squash: a file created by root belongs to nobody"
if nfs-cp "$T_TMP/export/sub/greeting" "$(url "$T_TMP/squash/byroot")" >/dev/null 2>&1 &&
    [ "$(stat -c %u:%g "$T_TMP/squash/byroot")" = "65534:65534" ]; then
    t_ok
else
    t_fail "owner: $(stat -c %u:%g "$T_TMP/squash/byroot" 2>&1)"
fi

t_begin "all_squash with anonuid/anongid"
if nfs-cp "$T_TMP/export/sub/greeting" "$(url "$T_TMP/allsq/f")" >/dev/null 2>&1 &&
    [ "$(stat -c %u:%g "$T_TMP/allsq/f")" = "1234:4321" ]; then
    t_ok
else
    t_fail "owner: $(stat -c %u:%g "$T_TMP/allsq/f" 2>&1)"
fi

t_begin "a read-only export can be read"
t_check sh -c "[ \"\$(nfs-cat '$(url "$T_TMP/ro/file")')\" = 'read only' ]"

t_begin "a read-only export cannot be written"
if nfs-cp "$T_TMP/export/sub/greeting" "$(url "$T_TMP/ro/new")" >/dev/null 2>&1 ||
    [ -e "$T_TMP/ro/new" ]; then
    t_fail "write succeeded"
else
    t_ok
fi

t_begin "an export for other networks cannot be mounted from loopback"
if nfs-ls "$(url "$T_TMP/denied")" >/dev/null 2>&1; then t_fail "mounted"; else t_ok; fi

t_begin "SIGHUP re-reads the exports file"
grep -v '10.0.0.0/8' "$T_TMP/exports" > "$T_TMP/exports.new"
echo "$T_TMP/denied 127.0.0.1(ro)" >> "$T_TMP/exports.new"
mv "$T_TMP/exports.new" "$T_TMP/exports"
kill -HUP "$SERVER_PID"
ok=false
for i in $(seq 1 100); do
    if nfs-ls "$(url "$T_TMP/denied")" >/dev/null 2>&1; then ok=true; break; fi
    sleep 0.05
done
if $ok; then t_ok; else t_fail "still denied: $(cat "$T_TMP/server.err")"; fi

t_begin "a broken exports file on SIGHUP keeps the old exports"
echo "relative/path *(rw)" > "$T_TMP/exports"
kill -HUP "$SERVER_PID"
sleep 0.2
t_check nfs-ls "$(url "$T_TMP/denied")"

t_begin "the server still stops cleanly"
if stop_server; then t_ok; else t_fail "exit status $?"; fi

t_done
