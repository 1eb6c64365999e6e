#!/usr/bin/env bash
# The restart after `kill -9` under full load (BRIEF §8: ready in <= 5 s with 10 M orders, nothing
# acknowledged lost): runs the flash workload in-process with snapshots taken as `serve` takes
# them, kills it with SIGKILL once its journal holds about ORDERS orders (a snapshot is usually
# being written then), and times RUNS starts of `elevens serve` on what it left
# (bench/restart.sh: ready time, RSS, and the start's own account of the snapshot, the journal
# tail and the read models; `last_record` is twice the orders: each is placed, then paid).
#   bench/restart-after-kill.sh target/release/elevens DATA_DIR [ORDERS] [RUNS]
set -euo pipefail
bin=$1
data=$2
orders=${3:-10000000}
runs=${4:-2}
# A flash order and its payment are two journal records, ~64 bytes each with its header (a run
# of 15,168,799 records left 969,744,246 bytes of journal).
journal_bytes=$((orders * 128))
if [ -e "$data" ]; then
    echo "$data exists: give a directory to create" >&2
    exit 2
fi
"$bin" bench --workload flash --mode in-process --duration 3600 --snapshot-every 1000000 \
    --data "$data" >/dev/null 2>&1 &
pid=$!
until [ -d "$data/journal" ] && [ "$(du -sb "$data/journal" | cut -f1)" -ge "$journal_bytes" ]; do
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "the bench stopped before the journal held $orders orders" >&2
        exit 1
    fi
    sleep 0.1
done
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
echo "killed at ~$orders orders; snapshots: $(ls "$data/snapshots" | tr '\n' ' ')"
for _ in $(seq "$runs"); do
    RUST_LOG=${RUST_LOG:-elevens_http=info,elevens_engine=info} bash "$(dirname "$0")/restart.sh" "$bin" "$data"
done
