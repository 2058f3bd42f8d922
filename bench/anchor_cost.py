"""Anchor cost per reading, from bench/anchor_bench.py's gas per anchor (measured on anvil).

    python bench/anchor_cost.py [--quick]

Runs ``bench/anchor_bench.py --inflight 1`` (a real anvil; ~1 s) and divides the measured
gas per anchor by the readings one anchor covers at typical rates. One anchor covers every
block sealed since the previous one (headers are hash-chained), so readings per anchor =
reading rate × anchor interval, where the interval is ``ledger.min_interval_s`` or, when 0,
the block interval (a block is cut at ``blocks.max_records`` or ``max_seconds``). Baseline
in the same run: anchoring every reading on its own (one anchor per reading).
If anvil is not installed the FACTS.md figure (22,440 gas) is used and the row says so.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from typing import Any

from _common import REPO, Result, print_table

# (label, readings per second, anchor interval in seconds)
SCENARIOS = [
    ("station 10 probes/min, min_interval_s=3600", 10 / 60, 3600),
    ("station 10 probes/min, anchor every 60-s block", 10 / 60, 60),
    ("1,000 readings/s, anchor every 1,000-record block", 1000, 1),
    ("1,000 readings/s, min_interval_s=3600", 1000, 3600),
]


def measure_gas(n: int) -> tuple[float, str]:
    try:
        p = subprocess.run([sys.executable, "bench/anchor_bench.py", "--n", str(n), "--inflight", "1"],
                           capture_output=True, text=True, cwd=str(REPO), timeout=300, check=False)
        for line in p.stdout.splitlines():
            cells = [c.strip() for c in line.split("|")]
            if len(cells) >= 7 and re.fullmatch(r"\d+", cells[0]):
                return float(cells[6]), f"anvil, {n} anchors (anchor_bench.py)"
        why = (p.stderr.strip().splitlines() or ["no output"])[-1]
    except (OSError, subprocess.TimeoutExpired) as exc:
        why = str(exc)
    return 22_440.0, f"FACTS.md figure: anchor_bench.py failed ({why[:80]})"


def run(quick: bool, *, log: Any = print) -> list[Result]:
    log("[anchor] gas per anchor on anvil …")
    gas, src = measure_gas(20 if quick else 200)
    res = [Result("gas per anchor (36-byte input)", f"{gas:,.0f} gas", note=src)]
    for label, rate, interval in SCENARIOS:
        per_anchor = rate * interval
        per_reading = gas / per_anchor
        res.append(Result(f"anchor gas per reading: {label}",
                          f"{per_reading:,.2f} gas ({per_anchor:,.0f} readings/anchor)",
                          f"{gas:,.0f} gas", gas / per_reading,
                          note="" if per_anchor >= 1 else "fewer than one reading per anchor"))
    res[1].note = "ratio = one anchor per reading ÷ this (higher is cheaper)"
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    print_table(run(args.quick), "\nanchor cost")


if __name__ == "__main__":
    main()
