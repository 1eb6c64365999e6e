#!/usr/bin/env bash
# The fuzz harness at length: every decoder of bytes from outside or from disk (journal
# segments, snapshots, records, the binary batch, HTTP requests through the real router), CASES
# inputs per target (default 100,000), in release. CI runs a bounded number of cases.
#   bench/fuzz.sh
#   CASES=1000000 bench/fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CASES="${CASES:-100000}"
PROPTEST_CASES="$CASES" exec cargo test --release -p elevens-http --test fuzz -- --nocapture
