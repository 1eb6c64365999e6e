#!/usr/bin/env bash
# The deterministic simulator at length: SEEDS seeds of COMMANDS commands each (default 1,000 x
# 10,000 = 10 M commands), the real state machine and journal on a disk that tears writes, loses
# what was not fsync'd, fails reads and rots bytes, with crashes between every two operations.
# A failure prints its seed and the command that replays it.
#   bench/sim.sh                 # 10 M commands
#   SEEDS=100 COMMANDS=1000000 bench/sim.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS="${SEEDS:-1000}"
COMMANDS="${COMMANDS:-10000}"
FIRST="${FIRST:-1}"
cargo build --release -p elevens-sim >/dev/null
exec target/release/elevens-sim --seed "$FIRST" --seeds "$SEEDS" --commands "$COMMANDS"
