#!/usr/bin/env bash
# Time a restart: start `elevens serve` on a data directory, poll /healthz every 50 ms, print the
# seconds until the first 200 and the RSS, then kill -9 the server.
#   bench/restart.sh target/release/elevens DATA_DIR
# Make a large data directory first, e.g. (kill -9 it under load for the crash case):
#   elevens bench --workload flash --mode in-process --duration 90 --snapshot-every 1000000 --data DATA_DIR
set -euo pipefail
bin=$1
data=$2
port=${PORT:-8799}
log=$(mktemp)
start=$(date +%s.%N)
"$bin" serve --data "$data" --listen "127.0.0.1:$port" >"$log" 2>&1 &
pid=$!
until curl -sf -o /dev/null "http://127.0.0.1:$port/healthz"; do
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "the server died:" >&2
        cat "$log" >&2
        exit 1
    fi
    sleep 0.05
done
end=$(date +%s.%N)
echo "ready in $(awk "BEGIN { printf \"%.2f\", $end - $start }") s, $(grep VmRSS "/proc/$pid/status")"
grep -m1 "recovered" "$log" | sed 's/\x1b\[[0-9;]*m//g'
kill -9 "$pid"
# Wait for it to be gone: a second start on the same port (and data directory) would find both
# still held ("Address already in use").
wait "$pid" 2>/dev/null || true
rm -f "$log"
