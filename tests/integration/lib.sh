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
# The TAP helpers (t_begin, t_ok, t_fail, t_check, t_done, t_skip_all).
. "${STRATA_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/tap.sh"
T_TMP=""

need_root() {
    [ "$(id -u)" -eq 0 ] || t_skip_all "needs root (mounts and namespaces)"
}

# need_program PROG [PACKAGE]
need_program() {
    command -v "$1" >/dev/null 2>&1 ||
        t_skip_all "'$1' is not installed${2:+ (Debian package $2)}"
}

# need_debian_base: sets BASE to the shared debootstrap'ed Debian root
# ($STRATA_BUILD_ROOT/debian-base, built once by scripts/debian-base), or
# skips saying why it cannot be built here.
need_debian_base() {
    need_program debootstrap debootstrap
    BASE=${STRATA_BUILD_ROOT:?}/debian-base
    ndb_out=$("${STRATA_SOURCE_ROOT:?}/scripts/debian-base" "$BASE" 2>&1)
    case $? in
    0) ;;
    77) t_skip_all "$ndb_out" ;;
    *) t_skip_all "cannot build a Debian base (is the archive reachable?): $(echo "$ndb_out" | tail -n 2 | tr '\n' ' ')" ;;
    esac
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
