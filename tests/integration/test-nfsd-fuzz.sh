#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# A short libFuzzer run of each strata-nfsd target (`make fuzz` runs them
# for longer): fuzz-nfsd-request (whole records: decoding, MOUNT, the
# portmapper) and fuzz-nfsd-procs (the NFS procedures with valid handles,
# on an export of its own). Skips when clang's libFuzzer is missing.
. "$(dirname "$0")/lib.sh"
: "${STRATA_SOURCE_ROOT:?}"
FUZZ_BUILD="$STRATA_SOURCE_ROOT/build-fuzz"
export FUZZ_BUILD
for f in request procs; do
    out=$(FUZZ_TARGETS=$f "$STRATA_SOURCE_ROOT/scripts/fuzz" 5 2>&1)
    rc=$?
    if [ $rc -eq 77 ]; then
        t_skip_all "$(echo "$out" | tail -1)"
    fi
    t_begin "fuzz-nfsd-$f runs 5 seconds without a crash"
    if [ $rc -eq 0 ]; then
        echo "$out" | sed 's/^/# /'
        t_ok
    else
        t_fail "$(echo "$out" | tail -5)"
    fi
done
t_done
