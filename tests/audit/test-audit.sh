#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# system-migrate --audit on the host's real kernel audit: auditd started
# from a temp config dir (its log in the temp dir, never the host's
# /etc/audit or audit log), one rule set per migration's session, the
# record's audit.list and `diff --why`; rules and daemon gone afterwards,
# also after a SIGKILL of system-migrate and `verify`. The kernel takes
# audit control only from the initial pid namespace, so this suite runs
# outside the lab machine (scripts/check), like the vm suite.
. "$STRATA_SOURCE_ROOT/tests/integration/lib.sh"
need_root
need_program auditctl auditd
need_program auditd auditd
SM=${SYSTEM_MIGRATE:?SYSTEM_MIGRATE is not set}

if ! st=$(auditctl -s 2>&1); then
    t_skip_all "the kernel refuses audit control here (a container or another pid namespace?): $(echo "$st" | head -n1)"
fi
host_pid=$(echo "$st" | awk '$1 == "pid" { print $2 }')
if [ "${host_pid:-0}" != 0 ]; then
    t_skip_all "an audit daemon (pid $host_pid) already runs on this machine: this test writes into no log but its own"
fi
enabled_before=$(echo "$st" | awk '$1 == "enabled" { print $2 }')

need_program cc gcc
need_debian_base

t_tmpdir
# On any exit: no rule of ours, no auditd of ours, the enabled flag as it
# was (then lib.sh's cleanup removes the temp dir).
SM_PID=""
audit_cleanup() {
    [ -n "$SM_PID" ] && kill -9 "$SM_PID" 2>/dev/null
    auditctl -l 2>/dev/null | grep -F "key=strata-2026" | sed 's/^-a /-d /' |
        while read -r rule; do
            # shellcheck disable=SC2086
            auditctl $rule >/dev/null 2>&1
        done
    p=$(auditctl -s 2>/dev/null | awk '$1 == "pid" { print $2 }')
    if [ "${p:-0}" != 0 ] && tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF "$T_TMP"; then
        kill "$p" 2>/dev/null
        i=0
        while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        kill -9 "$p" 2>/dev/null
    fi
    [ "$enabled_before" = 0 ] && auditctl -e 0 >/dev/null 2>&1
    t_cleanup
}
trap 'audit_cleanup' EXIT
trap 'audit_cleanup; exit 130' INT TERM

C=$T_TMP/auditd
mkdir -p "$C/plugins.d" "$T_TMP/log"
cat >"$C/auditd.conf" <<EOF
log_file = $T_TMP/log/audit.log
log_format = ENRICHED
flush = INCREMENTAL_ASYNC
freq = 50
write_logs = yes
max_log_file = 64
max_log_file_action = ROTATE
num_logs = 2
space_left = 2
space_left_action = IGNORE
admin_space_left = 1
admin_space_left_action = IGNORE
disk_full_action = IGNORE
disk_error_action = IGNORE
plugin_dir = $C/plugins.d
EOF
chmod 0600 "$C/auditd.conf"

D=$T_TMP/data
M=$T_TMP/migrations
sm() { "$SM" --data "$D" --dir "$M" --base "$BASE" "$@"; }
mig() { mkdir -p "$M/$1" && printf '%s\n' "$2" >"$M/$1/install_script.sh"; }
our_rules() { auditctl -l | grep -F "key=strata-2026" || true; }
daemon_pid() { auditctl -s | awk '$1 == "pid" { print $2 }'; }

mig 20260301-001_bar 'echo y > /etc/bar'
mig 20260301-002_foo "sh -c 'echo x > /etc/foo; rm /etc/bar'; echo l >> /var/log/strata-audit.log"
R=$D/system/migrations

t_begin "--audit outside the initial pid namespace fails (exit 1) and says why"
o=$(unshare -p -f --mount-proc "$SM" --data "$D" --dir "$M" --base "$BASE" up --audit \
    --audit-config "$C" 2>&1)
rc=$?
if [ $rc -eq 1 ] && echo "$o" | grep -q "initial pid" && [ ! -d "$R/20260301-001_bar" ] &&
    [ -z "$(our_rules)" ]; then
    t_ok
else
    t_fail "rc $rc: $o"
fi

t_begin "--audit with a config dir that has no auditd.conf fails (exit 1), naming the file"
o=$(sm up --audit --audit-config "$T_TMP/nowhere" 2>&1)
rc=$?
[ $rc -eq 1 ] && echo "$o" | grep -qF "$T_TMP/nowhere/auditd.conf" && [ "$(daemon_pid)" = 0 ] &&
    t_ok || t_fail "rc $rc: $o"

sm up --to 20260301-001_bar >"$T_TMP/up1.log" 2>&1 || t_fail "plain up failed: $(cat "$T_TMP/up1.log")"

t_begin "an audited up applies the migration and writes audit.list"
if sm up --audit --audit-config "$C" >"$T_TMP/up2.log" 2>&1 && [ -s "$R/20260301-002_foo/audit.list" ]; then
    t_ok
else
    t_fail "$(cat "$T_TMP/up2.log")"
fi
L=$R/20260301-002_foo/audit.list
tab=$(printf '\t')

t_begin "sh's file is attributed to sh (dash), the removal to the rm sh ran"
if grep -q "^C${tab}[0-9]*${tab}/usr/bin/dash${tab}/etc/foo\$" "$L" &&
    grep -q "^D${tab}[0-9]*${tab}/usr/bin/rm${tab}/etc/bar\$" "$L"; then
    t_ok
else
    t_fail "$(cat "$L")"
fi

t_begin "a write under /var/log (a state path) is marked as state"
grep -q "^SC${tab}[0-9]*${tab}/usr/bin/dash${tab}/var/log/strata-audit.log\$" "$L" && t_ok ||
    t_fail "$(cat "$L")"

t_begin "nothing of strata's own (its log, the sandbox's root) is in audit.list"
if ! grep -q "system-migrate\|/oldroot\|/newroot\|record/log" "$L"; then
    t_ok
else
    t_fail "$(cat "$L")"
fi

t_begin "diff --why shows the program beside each changed path"
w=$(sm diff --why 20260301-002_foo 2>&1)
if echo "$w" | grep -q "^A /etc/foo${tab}by /usr/bin/dash\[[0-9]*\]:C\$" &&
    echo "$w" | grep -q "^D /etc/bar${tab}by /usr/bin/rm\[[0-9]*\]:D\$" &&
    sm --json diff --why 20260301-002_foo | grep -q '"why": "/usr/bin/dash\['; then
    t_ok
else
    t_fail "$w"
fi

t_begin "diff --why of a migration applied without --audit says so (exit 1)"
o=$(sm diff --why 20260301-001_bar 2>&1)
rc=$?
[ $rc -eq 1 ] && echo "$o" | grep -q "not applied with --audit" && t_ok || t_fail "rc $rc: $o"

t_begin "afterwards no rule is left (auditctl -l) and the auditd strata started is gone"
if [ -z "$(our_rules)" ] && [ "$(daemon_pid)" = 0 ] && [ ! -e "$D/system/audit-daemon" ] &&
    [ "$(auditctl -s | awk '$1 == "enabled" { print $2 }')" = "$enabled_before" ]; then
    t_ok
else
    t_fail "rules: $(our_rules); $(auditctl -s | head -3 | tr '\n' ' ')"
fi

mig 20260301-003_fails 'touch /etc/half; exit 3'
t_begin "an audited migration that fails: exit 1, rolled back, no rule left"
o=$(sm up --audit --audit-config "$C" 2>&1)
rc=$?
if [ $rc -eq 1 ] && [ ! -d "$R/20260301-003_fails" ] && [ -z "$(our_rules)" ] &&
    [ "$(daemon_pid)" = 0 ]; then
    t_ok
else
    t_fail "rc $rc: $o; rules: $(our_rules)"
fi
rm -rf "$M/20260301-003_fails"

mig 20260301-004_sleep 'touch /etc/slept; sleep 120'
t_begin "SIGKILL of an audited up leaves its rules, verify removes them and stops its auditd"
"$SM" --data "$D" --dir "$M" --base "$BASE" up --audit --audit-config "$C" >"$T_TMP/up4.log" 2>&1 &
SM_PID=$!
pid=$SM_PID
i=0
while [ -z "$(our_rules)" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
sleep 0.5
before=$(our_rules | wc -l)
kill -9 $pid
wait $pid 2>/dev/null
SM_PID=""
left=$(our_rules | wc -l)
v=$(sm verify 2>&1)
if [ "$before" = 2 ] && [ "$left" = 2 ] && [ -z "$(our_rules)" ] && [ "$(daemon_pid)" = 0 ] &&
    echo "$v" | grep -q "removed the audit rules keyed 'strata-20260301-004_sleep'" &&
    echo "$v" | grep -q "stopped the audit daemon"; then
    t_ok
else
    t_fail "rules before $before, after the kill $left, after verify: $(our_rules); verify: $v"
fi
rm -rf "$M/20260301-004_sleep"

# Names relative to a directory fd (openat, unlinkat, renameat... on a dir
# fd) are placed through the inodes the records give: rm -r removes a tree
# an earlier layer made through the fds of its directories (fts), and a
# small static C program works through a fd of a directory the script made
# and one of /etc (a directory of the lower layers).
cat >"$T_TMP/dirfd.c" <<'EOF'
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static int fail(const char *what)
{
        perror(what);
        return 1;
}

int main(int argc, char **argv)
{
        int d, e, f;

        if (argc != 2)
                return 2;
        d = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        e = open("/etc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (d < 0 || e < 0)
                return fail("open");
        f = openat(d, "new", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (f < 0 || write(f, "n\n", 2) != 2 || close(f) < 0)
                return fail("openat new");
        if (unlinkat(d, "old", 0) < 0)
                return fail("unlinkat old");
        if (renameat(d, "a", d, "b") < 0)
                return fail("renameat a b");
        if (mkdirat(d, "sub", 0755) < 0)
                return fail("mkdirat sub");
        if (renameat(d, "b", e, "strata-dirfd-b") < 0)
                return fail("renameat b /etc");
        if (fchmodat(e, "strata-dirfd-mode", 0600, 0) < 0)
                return fail("fchmodat");
        return 0;
}
EOF
mig 20260301-005_tree 'mkdir -p /etc/strata-tree/sub && echo 1 >/etc/strata-tree/f1 &&
echo 2 >/etc/strata-tree/sub/f2 && echo m >/etc/strata-dirfd-mode'
mig 20260301-006_dirfd 'set -e
mkdir /etc/strata-dirfd
echo o >/etc/strata-dirfd/old
echo a >/etc/strata-dirfd/a
/run/strata-migration/dirfd /etc/strata-dirfd
rm -r /etc/strata-tree'
t_begin "names relative to a directory fd are placed (openat, unlinkat, renameat, mkdirat, fchmodat; rm -r)"
L=$R/20260301-006_dirfd/audit.list
P=/run/strata-migration/dirfd
if ! cc -static -O1 -o "$M/20260301-006_dirfd/dirfd" "$T_TMP/dirfd.c" >"$T_TMP/cc.log" 2>&1; then
    t_fail "cc: $(cat "$T_TMP/cc.log")"
elif ! sm up --to 20260301-005_tree >"$T_TMP/up5.log" 2>&1 ||
    ! sm up --audit --audit-config "$C" >"$T_TMP/up6.log" 2>&1; then
    t_fail "$(tail -n 15 "$T_TMP/up5.log" "$T_TMP/up6.log")"
else
    missing=""
    # ACTION EXE PATH, with any pid
    for want in "C $P /etc/strata-dirfd/new" "D $P /etc/strata-dirfd/old" \
        "F $P /etc/strata-dirfd/a" "T $P /etc/strata-dirfd/b" "C $P /etc/strata-dirfd/sub" \
        "F $P /etc/strata-dirfd/b" "T $P /etc/strata-dirfd-b" "M $P /etc/strata-dirfd-mode" \
        "D /usr/bin/rm /etc/strata-tree/f1" "D /usr/bin/rm /etc/strata-tree/sub/f2" \
        "D /usr/bin/rm /etc/strata-tree/sub" "D /usr/bin/rm /etc/strata-tree"; do
        # shellcheck disable=SC2086
        set -- $want
        awk -F "$tab" -v a="$1" -v e="$2" -v p="$3" '$1 == a && $3 == e && $4 == p { f = 1 }
            END { exit !f }' "$L" || missing="$missing
$want"
    done
    if [ -z "$missing" ] && ! grep -q "$tab?/" "$L"; then
        t_ok
    else
        t_fail "missing:$missing
audit.list:
$(cat "$L")"
    fi
fi

t_begin "diff --why names the program that renamed a file into /etc through a directory fd"
w=$(sm diff --why 20260301-006_dirfd 2>&1)
echo "$w" | grep -q "^A /etc/strata-dirfd-b${tab}by $P\[[0-9]*\]:T\$" && t_ok || t_fail "$w"

t_begin "install --audit of a package with apt-get attributes its files to dpkg"
if sm install --audit --audit-config "$C" hello >"$T_TMP/install.log" 2>&1; then
    id=$(ls "$M" | grep '_install_hello$')
    w=$(sm diff --why "$id")
    if echo "$w" | grep -q "^A /usr/bin/hello${tab}by /usr/bin/dpkg\[[0-9]*\]:" &&
        echo "$w" | grep -q "^M /var/lib/dpkg/status${tab}by .*/usr/bin/dpkg\["; then
        t_ok
    else
        t_fail "$(echo "$w" | grep -e hello -e dpkg/status | head -20)"
    fi
else
    t_fail "$(tail -n 15 "$T_TMP/install.log")"
fi

t_begin "and again no rule and no auditd are left"
[ -z "$(our_rules)" ] && [ "$(daemon_pid)" = 0 ] && t_ok || t_fail "rules: $(our_rules); pid $(daemon_pid)"

t_done
