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
# STRATA (the strata binary) and STRATA_BUILD_ROOT come from meson (in the
# test image, from the wrapper scripts/test-image generated for the test).
#
# In the test image (STRATA_TEST_IMAGE=1, a podman container whose PID 1 is
# overlayfs-init) the tests use the machine's /data layout: the temp dir is
# under SYSTEM_DIR (/data/system, the container's tmpfs: an overlay's upper
# dir cannot be on the overlay root), STATE_DIR is /data/state, nothing is
# cleaned up (the container's end removes it all), and tests that cannot
# work in a container say so and skip (not_in_image).

set -u
# The TAP helpers (t_begin, t_ok, t_fail, t_check, t_done, t_skip_all);
# create_service, enable_service, wait_file, have_scanner (s6 services in
# the machine's scandir, where an s6-svscan runs on it).
. "${STRATA_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/tap.sh"
. "${STRATA_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/services.sh"
T_TMP=""
STRATA_TEST_IMAGE=${STRATA_TEST_IMAGE:-0}
if [ "$STRATA_TEST_IMAGE" = 1 ]; then
    SYSTEM_DIR=${SYSTEM_DIR:-/data/system}
    STATE_DIR=${STATE_DIR:-/data/state}
fi

# not_in_image REASON: skips the test inside the test image, saying why it
# cannot work in a podman container.
not_in_image() {
    [ "$STRATA_TEST_IMAGE" = 1 ] && t_skip_all "inside the test image (a podman container): $*"
    return 0
}

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
    BASE=${STRATA_BUILD_ROOT:?}/debian-base
    # a finished one (the test image gets the host's) needs no debootstrap
    [ -f "$BASE/.complete" ] || need_program debootstrap debootstrap
    ndb_out=$("${STRATA_SOURCE_ROOT:?}/scripts/debian-base" "$BASE" 2>&1)
    case $? in
    0) ;;
    77) t_skip_all "$ndb_out" ;;
    *) t_skip_all "cannot build a Debian base (is the archive reachable?): $(echo "$ndb_out" | tail -n 2 | tr '\n' ' ')" ;;
    esac
}

t_cleanup() {
    # The test image's container removes everything when it ends.
    [ "$STRATA_TEST_IMAGE" = 1 ] && return 0
    if [ -n "$T_TMP" ] && [ -d "$T_TMP" ]; then
        # Unmount whatever a test left below the temp dir, deepest first.
        grep -o " $T_TMP[^ ]*" /proc/self/mountinfo 2>/dev/null | sort -r |
            while read -r m; do umount -l "$m" 2>/dev/null; done
        rm -rf "$T_TMP"
    fi
}

# Creates $T_TMP, removed on exit (in the test image: under SYSTEM_DIR/tmp,
# left to the container's end).
t_tmpdir() {
    if [ "$STRATA_TEST_IMAGE" = 1 ]; then
        mkdir -p "$SYSTEM_DIR/tmp"
        T_TMP=$(mktemp -d "$SYSTEM_DIR/tmp/strata-it.XXXXXX")
        return 0
    fi
    T_TMP=$(mktemp -d "${TMPDIR:-/tmp}/strata-it.XXXXXX")
    trap 't_cleanup' EXIT
    trap 't_cleanup; exit 130' INT TERM
}
