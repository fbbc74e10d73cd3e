# SPDX-License-Identifier: LGPL-2.1-or-later
# TAP output for the shell tests, shared by tests/integration/lib.sh (and
# through it tests/vm and tests/audit) and tests/image/lib.sh (the test
# image's copy in /app/tests):
#
#   t_begin "what is checked"; ... t_ok / t_fail "why" / t_check CMD...
#   t_skip_all "reason"    the whole program skips (exit 77)
#   t_skip "reason"        this point skips (ok ... # SKIP reason)
#   t_done                 the plan; fails when a point failed

T_N=0
T_FAILED=0
T_CURRENT=""

t_skip_all() {
    echo "1..0 # SKIP $*"
    exit 77
}

t_begin() {
    T_N=$((T_N + 1))
    T_CURRENT="$*"
}

t_ok() {
    echo "ok $T_N - $T_CURRENT"
}

t_skip() {
    echo "ok $T_N - $T_CURRENT # SKIP $*"
}

t_fail() {
    echo "not ok $T_N - $T_CURRENT"
    # Every line of the reason as a TAP comment, so multi-line output
    # (JSON, command errors) does not break the TAP stream.
    [ $# -gt 0 ] && printf '%s\n' "$*" | sed 's/^/# /'
    T_FAILED=$((T_FAILED + 1))
}

# t_check CMD...: ok if CMD succeeds, not ok (with its output) otherwise.
t_check() {
    if out=$("$@" 2>&1); then
        t_ok
    else
        t_fail "command failed: $* -> $(echo "$out" | tail -5)"
    fi
}

t_done() {
    echo "1..$T_N"
    [ "$T_FAILED" -eq 0 ]
}
