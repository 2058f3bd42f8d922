"""Run every performance bench and print one table: figure, value, baseline, ratio, target, met?

    python bench/run_all.py [--quick] [--json FILE] [--keep] [--tmp DIR]

Every baseline is measured in the same run on the same machine (speed drifts up to 2× over
time here, and other sessions may share the machine: the load average is printed before and
after). --quick (< 10 min) uses a 1M-record journal for the RSS growth; the full run grows
it to 10M and measures longer latency windows. Figures are printed, never asserted: speed
targets live here, not in timed tests.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Result, dump_json, print_table


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="finish in under 10 minutes")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows (with raw figures) here")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (journals, bundles)")
    ap.add_argument("--tmp", default=None, help="parent of the work directory (default: system temp)")
    ap.add_argument("--only", nargs="*", default=None,
                    help="subset: anchor rounds blocks ingest alarm admission rss export verify "
                         "(export/verify need rss's journal or fill their own)")
    args = ap.parse_args()
    quick = args.quick
    if args.keep:
        os.environ["TRACESEAL_BENCH_KEEP"] = "1"
    base = tempfile.mkdtemp(prefix="traceseal-bench-", dir=args.tmp)
    want = set(args.only or ["anchor", "rounds", "blocks", "ingest", "alarm", "admission", "rss", "export", "verify"])
    t0 = time.perf_counter()
    load0 = loadavg()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:6.0f}s] {msg}", file=sys.stderr, flush=True)

    rows: list[Result] = []
    sections: list[tuple[str, list[Result]]] = []
    try:
        if "anchor" in want:
            import anchor_cost

            sections.append(("anchor cost", anchor_cost.run(quick, log=log)))
        if "rounds" in want:
            import anchor_rounds

            sections.append(("anchor rounds", anchor_rounds.run(quick, base=base, log=log)))
        if "blocks" in want:
            import blocks_proofs

            sections.append(("blocks and proofs", blocks_proofs.run(quick, base=base, log=log)))
        if "ingest" in want:
            import ingest

            sections.append(("ingest", ingest.run(quick, base=base, log=log)))
        if "alarm" in want:
            import alarm_latency

            sections.append(("alarm latency", alarm_latency.run(quick, base=base, log=log)))
        if "admission" in want:
            import admission

            sections.append(("admission modes", admission.run(quick, base=base, log=log)))
        station = None
        if "rss" in want:
            import rss

            res, info = rss.run(quick, base=base, log=log)
            station = info["station"]
            sections.append(("memory", res))
        bundle = None
        if "export" in want:
            import export

            res, info = export.run(quick, station=station, base=base, log=log)
            station, bundle = info["station"], info["bundle"]
            sections.append(("export", res))
        if "verify" in want:
            import verify_rate

            sections.append(("verification", verify_rate.run(quick, station=station, full_bundle=bundle,
                                                             base=base, log=log)))
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    for name, res in sections:
        rows.append(Result(f"— {name} —", ""))
        rows.extend(res)
    mode = "quick" if quick else "full"
    print_table(rows, f"\ntraceseal performance ({mode} run, {time.perf_counter() - t0:.0f} s, "
                      f"{os.cpu_count()} vCPU, load average {load0} → {loadavg()})")
    if args.keep:
        print(f"\nwork directory kept: {base}")
    if args.json:
        dump_json(rows, args.json)


if __name__ == "__main__":
    main()
