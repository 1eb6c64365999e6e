#!/usr/bin/env bash
# One run of elevens and every peer on the flash workload, on this machine, and the ratios.
#
#   bench/compare.sh [--json FILE] [--duration SECONDS] [--buyers N]
#
# Starts PostgreSQL and Redis (AOF always, AOF everysec) on loopback with bench/peers/peers.sh,
# builds elevens in release mode, runs each target with the same seed, stops the peers. Fair
# pairs: elevens' single HTTP requests against unpipelined peer calls, its batches against
# pipelined peer calls; both durable (fsync before the answer; Redis everysec is not, and is
# there because it is what is usually run). Also measures a bare hyper "hello" server with the
# same HTTP client, for the single-request ceiling.
set -euo pipefail
cd "$(dirname "$0")/.."
json=""
duration=10
buyers=100000
while [ $# -gt 0 ]; do
  case "$1" in
    --json) json=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --buyers) buyers=$2; shift 2 ;;
    *) echo "usage: $0 [--json FILE] [--duration SECONDS] [--buyers N]" >&2; exit 2 ;;
  esac
done

cargo build --release --quiet --features bench
bin=target/release/elevens
out=$(mktemp -d)
trap 'bench/peers/peers.sh stop all >/dev/null 2>&1 || true; rm -rf "$out"' EXIT
bench/peers/peers.sh start all

run() { # name, args...
  local name=$1; shift
  echo "== $name" >&2
  "$bin" bench --workload flash --duration "$duration" --buyers "$buyers" --json "$out/$name.json" "$@" >&2
}
run elevens-in-process --mode in-process
run elevens-http --mode http
run elevens-http-batch --mode http-batch
run postgres-http --target postgres --mode http
run postgres-http-batch --target postgres --mode http-batch
run redis-always-http --target redis-always --mode http
run redis-always-http-batch --target redis-always --mode http-batch
run redis-everysec-http --target redis-everysec --mode http
run redis-everysec-http-batch --target redis-everysec --mode http-batch
run hyper-hello --target hyper-hello --mode http

python3 - "$out" "$json" "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" <<'PY'
import json, os, sys
out, path, commit = sys.argv[1], sys.argv[2], sys.argv[3]
r = {name[:-5]: json.load(open(os.path.join(out, name))) for name in os.listdir(out)}
def rate(name): return r[name]["orders_per_s"]
def requests(name): return r[name]["orders_per_s"] + r[name]["payments_per_s"]
ratios = {
    "vs_postgres": rate("elevens-http-batch") / rate("postgres-http-batch"),
    "vs_redis_always": rate("elevens-http-batch") / rate("redis-always-http-batch"),
    "vs_redis_everysec": rate("elevens-http-batch") / rate("redis-everysec-http-batch"),
    "http_vs_hyper": requests("elevens-http") / rate("hyper-hello"),
}
single = {
    "vs_postgres": rate("elevens-http") / rate("postgres-http"),
    "vs_redis_always": rate("elevens-http") / rate("redis-always-http"),
    "vs_redis_everysec": rate("elevens-http") / rate("redis-everysec-http"),
}
print(f"{'target':<28}{'orders/s':>12}{'payments/s':>12}{'p50 us':>10}{'p99 us':>10}  invariants")
for name in sorted(r):
    x = r[name]; i = x["invariants"]
    ok = "ok" if i["sold_exactly_stock"] and i["ledger_balanced"] and i["audit_ok"] else "FAILED"
    if not i["applicable"]:
        ok = "n/a (no state)"
    print(f"{name:<28}{x['orders_per_s']:>12.0f}{x['payments_per_s']:>12.0f}{x['latency_us']['p50']:>10}{x['latency_us']['p99']:>10}  {ok}")
print()
print("batches vs pipelined peers:  " + "  ".join(f"{k} {v:.1f}x" for k, v in ratios.items() if k != "http_vs_hyper"))
print("single vs unpipelined peers: " + "  ".join(f"{k} {v:.1f}x" for k, v in single.items()))
print(f"http single-request req/s vs bare hyper: {ratios['http_vs_hyper']:.2f}")
print(f"commit {commit}, {os.cpu_count()} cores")
if path:
    json.dump({**ratios, "single_request": single, "commit": commit, "reports": r}, open(path, "w"), indent=2)
    print(f"written to {path}")
PY
