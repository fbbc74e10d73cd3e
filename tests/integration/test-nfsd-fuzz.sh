#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# A short libFuzzer run of strata-nfsd's request decoder and handler
# (`make fuzz` runs it for longer). Skips when clang's libFuzzer is missing.
. "$(dirname "$0")/lib.sh"
: "${STRATA_SOURCE_ROOT:?}"
FUZZ_BUILD="$STRATA_SOURCE_ROOT/build-fuzz"
export FUZZ_BUILD
out=$("$STRATA_SOURCE_ROOT/scripts/fuzz" 5 2>&1)
rc=$?
if [ $rc -eq 77 ]; then
    t_skip_all "$(echo "$out" | tail -1)"
fi
t_begin "fuzz-nfsd-request runs 5 seconds without a crash"
if [ $rc -eq 0 ]; then
    echo "$out" | sed 's/^/# /'
    t_ok
else
    t_fail "$(echo "$out" | tail -5)"
fi
t_done
