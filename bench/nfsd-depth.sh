#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# strata-nfsd's cost in directory depth: GETATTR of a directory handle at
# depth 1 against depth DEPTH (default 4,096), raw RPC over loopback, the
# median of RUNS rounds (default 7) of CALLS calls (default 2,000). The
# ratio printed is deep / shallow: 1.0 means the cost does not grow with
# the depth.
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
BIN="$BUILD/tests/integration/bench-nfsd-depth"
[ -x "$BIN" ] || { echo "bench: '$BIN' is missing; run 'make build' first" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root (open_by_handle_at)" >&2; exit 1; }
STRATA_NFSD="$BUILD/src/nfsd/strata-nfsd" exec "$BIN" "${DEPTH:-4096}" "${RUNS:-7}" "${CALLS:-2000}"
