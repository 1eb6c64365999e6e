#!/usr/bin/env python3
"""The flash path's budget, checked: instructions per order (counted by callgrind) and the
state's bytes per order, per SKU and per shipment, against bench/budget.toml.

    python3 bench/budget.py [--binary target/release/elevens] [--json out.json]

Runs `elevens bench --workload budget` once under `valgrind --tool=callgrind`: the orders go
through three functions nothing else calls (`budget::apply_order`, the state machine,
`budget::derive_order`, what the sequencer derives from each command, and `budget::fold_order`,
what the read-model thread does with those events), so their inclusive instruction counts over
the orders are the cost of one order, the same on every run. The bytes
come from the run's own report (the tables' sizes, not the RSS). Exits 1 when a figure is more
than 2% over its budget; says so when one is more than 2% under (the budget should come down).
"""

import argparse
import json
import pathlib
import re
import subprocess
import sys
import tempfile
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent
TOLERANCE = 0.02
# The run: enough orders that the tables' fixed costs vanish in the per-order figures, few
# enough for callgrind (~40 s).
ORDERS = 200_000
SKUS = 20_000
BUYERS = 20_000


def inclusive(annotated: str, function: str) -> int:
    """The inclusive instruction count callgrind_annotate gives `function` (its largest line)."""
    counts = [
        int(m.group(1).replace(",", ""))
        for m in re.finditer(r"^\s*([\d,]+) \([^)]*\)\s+\S*:" + re.escape(function) + r" \[", annotated, re.M)
    ]
    if not counts:
        sys.exit(f"budget: callgrind counted nothing for {function}")
    return max(counts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default=str(ROOT / "target/release/elevens"))
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args()
    budget = tomllib.loads((ROOT / "bench/budget.toml").read_text())

    with tempfile.TemporaryDirectory(prefix="elevens-budget-") as scratch:
        scratch = pathlib.Path(scratch)
        run = [
            "valgrind", "--tool=callgrind", f"--callgrind-out-file={scratch / 'callgrind.out'}",
            args.binary, "bench", "--workload", "budget", "--orders", str(ORDERS),
            "--skus", str(SKUS), "--buyers", str(BUYERS), "--json", str(scratch / "budget.json"),
        ]
        done = subprocess.run(run, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"budget: the run failed:\n{done.stdout}\n{done.stderr}")
        print(done.stdout, end="")
        report = json.loads((scratch / "budget.json").read_text())
        annotated = subprocess.run(
            ["callgrind_annotate", "--inclusive=yes", str(scratch / "callgrind.out")],
            capture_output=True, text=True, check=True,
        ).stdout

    orders = report["orders"]
    state_machine = inclusive(annotated, "elevens_bench::budget::apply_order") / orders
    derived = inclusive(annotated, "elevens_bench::budget::derive_order") / orders
    folded = inclusive(annotated, "elevens_bench::budget::fold_order") / orders
    parts = {name: inclusive(annotated, f"elevens_bench::budget::fold_{name}") / orders for name in ("analytics", "owners")}
    print("  read models per order: " + ", ".join(f"{name} {value:.1f}" for name, value in parts.items()))
    figures = {
        "instructions_per_order.state_machine": state_machine,
        "instructions_per_order.sequencer": state_machine + derived,
        "instructions_per_order.read_models": folded,
        "bytes.per_order": report["bytes_per_order"],
        "bytes.per_sku": report["bytes_per_sku"],
        "bytes.per_shipment": report["bytes_per_shipment"],
    }
    failed = False
    print(f"budget: {orders} orders; figure, budget, ratio (fails above {1 + TOLERANCE:.2f})")
    for name, value in figures.items():
        table, key = name.split(".")
        limit = budget[table][key]
        ratio = value / limit
        verdict = "OVER BUDGET" if ratio > 1 + TOLERANCE else ("under: lower the budget" if ratio < 1 - TOLERANCE else "ok")
        failed |= ratio > 1 + TOLERANCE
        print(f"  {name:<40} {value:>10.1f} {limit:>10.1f} {ratio:6.3f}  {verdict}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({"orders": orders, "figures": figures}, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
