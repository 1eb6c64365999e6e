#!/usr/bin/env bash
# Two builds of elevens, interleaved in one sitting: base, head, base, head... with the same
# bench arguments, then each figure's range per build and the head/base ratio per pair.
#
#   bench/interleave.sh BASE_BINARY HEAD_BINARY PAIRS [elevens bench arguments...]
#   bench/interleave.sh /work/bin/elevens-base-25ffba6 target/release/elevens 4 --workload flash --duration 8
#
# This machine swings ±30% from one run to the next, so a figure from one run against a figure
# from another sitting says nothing: only ratios of neighbouring runs of a fixed baseline do.
set -euo pipefail
[ $# -ge 3 ] || { sed -n 2,8p "$0" >&2; exit 2; }
base=$1 head=$2 pairs=$3
shift 3
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for i in $(seq 1 "$pairs"); do
  for side in base head; do
    bin=$base
    [ "$side" = head ] && bin=$head
    echo "== pair $i $side: $bin $*" >&2
    (cd "$out" && "$bin" bench "$@" --json "$out/$side-$i.json" >"$out/$side-$i.log" 2>&1) \
      || { cat "$out/$side-$i.log" >&2; exit 1; }
    grep -E "orders |sequencer|worst batch|rss per" "$out/$side-$i.log" >&2 || true
  done
done
python3 - "$out" "$pairs" <<'PY'
import json, statistics, sys
out, pairs = sys.argv[1], int(sys.argv[2])
runs = {side: [json.load(open(f"{out}/{side}-{i}.json")) for i in range(1, pairs + 1)] for side in ("base", "head")}
figures = ["orders_per_s", "payments_per_s", "claims_per_s", "ops_per_s", "sequencer_ns_per_item",
           "rss_bytes_per_order", "rss_bytes_per_sku", "worst_batch_ms"]
print(f"{'figure':24} {'base':>22} {'head':>22}  head/base per pair (median)")
for f in figures:
    b = [r.get(f) or 0 for r in runs["base"]]
    h = [r.get(f) or 0 for r in runs["head"]]
    if not any(b) and not any(h):
        continue
    ratios = [y / x for x, y in zip(b, h) if x and y]
    rng = lambda v: f"{min(v):,.1f}-{max(v):,.1f}" if any(v) else "(not reported)"
    each = " ".join(f"{r:.2f}" for r in ratios)
    print(f"{f:24} {rng(b):>22} {rng(h):>22}  {each} ({statistics.median(ratios):.2f})" if ratios
          else f"{f:24} {rng(b):>22} {rng(h):>22}")
PY
