# SPDX-License-Identifier: LGPL-2.1-or-later
# Support for shell integration tests: TAP output, skips with a reason,
# a temp dir that is removed (mounts first) even when a test fails.
#
#   . "$(dirname "$0")/lib.sh"
#   need_root
#   need_program s6-svscan s6
#   t_begin "overlay shows the upper file"
#   ... commands; `t_ok` / `t_fail "why"` or `t_check CMD...` ...
#   t_done
#
# STRATA (the strata binary) and STRATA_BUILD_ROOT come from meson.

set -u
T_N=0
T_FAILED=0
T_CURRENT=""
T_TMP=""

t_skip_all() {
    echo "1..0 # SKIP $*"
    exit 77
}

need_root() {
    [ "$(id -u)" -eq 0 ] || t_skip_all "needs root (mounts and namespaces)"
}

# need_program PROG [PACKAGE]
need_program() {
    command -v "$1" >/dev/null 2>&1 ||
        t_skip_all "'$1' is not installed${2:+ (Debian package $2)}"
}

t_cleanup() {
    if [ -n "$T_TMP" ] && [ -d "$T_TMP" ]; then
        # Unmount whatever a test left below the temp dir, deepest first.
        grep -o " $T_TMP[^ ]*" /proc/self/mountinfo 2>/dev/null | sort -r |
            while read -r m; do umount -l "$m" 2>/dev/null; done
        rm -rf "$T_TMP"
    fi
}

# Creates $T_TMP, removed on exit.
t_tmpdir() {
    T_TMP=$(mktemp -d "${TMPDIR:-/tmp}/strata-it.XXXXXX")
    trap 't_cleanup' EXIT
    trap 't_cleanup; exit 130' INT TERM
}

t_begin() {
    T_N=$((T_N + 1))
    T_CURRENT="$*"
}

t_ok() {
    echo "ok $T_N - $T_CURRENT"
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
