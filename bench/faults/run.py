#!/usr/bin/env python3
"""The fault report: every scenario at report size (or ``--quick``: the CI sizes), one table.

    python bench/faults/run.py            # the full report (≥100 crash cycles, 20k backlog, 1M inputs, …)
    python bench/faults/run.py --quick    # the CI subset, a few minutes
    python bench/faults/run.py --only crash,tamper --seed 7 --keep

Exit status 0 when every row passes (a CONTROL row must show its loss; XFAIL rows are known,
reported gateway defects), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.faults.common import Row, format_table
from bench.faults.suite import CI, NAMES, REPORT, run

LEGEND = """\
columns: runs = cycles/restarts/rounds/adapters; readings sent = readings published (hostile input: inputs fed;
tampering: bit flips); acknowledged = publisher PUBACKs from the broker; journaled = of those sent, found in the
journal; lost = acknowledged but not journaled; duplicated = journaled more than once; detected = injected faults
the system noticed and handled as specified (each row's note says what counts). Rows 9 (store and forward) look one
hop further: journaled, lost and duplicated there are about the ARCHIVE; so does row 11 (archive HTTPS under a
connection flood), whose detected counts attack connections the archive refused or cut."""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="the CI sizes (what tests/faults runs)")
    ap.add_argument("--only", help=f"comma-separated subset of: {', '.join(NAMES)}")
    ap.add_argument("--seed", type=int, default=None, help="seed for kill moments, fuzzing and sampling")
    ap.add_argument("--workdir", type=Path, help="keep everything here (default: a temp dir, removed)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = ap.parse_args(argv)
    names = args.only.split(",") if args.only else NAMES
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        ap.error(f"unknown scenario(s) {unknown}; known: {NAMES}")
    sizes = CI if args.quick else REPORT
    seed = args.seed if args.seed is not None else int(time.time())
    work = args.workdir or Path(tempfile.mkdtemp(prefix="traceseal-faults-"))
    print(f"fault suite ({'quick: CI sizes' if args.quick else 'full report'}), seed {seed}, workdir {work}",
          file=sys.stderr, flush=True)
    rows: list[Row] = []
    t0 = time.monotonic()
    for name in names:
        t = time.monotonic()
        print(f"… {name} {sizes[name]}", file=sys.stderr, flush=True)
        try:
            got = run(name, work / name, sizes, seed=seed)
        except Exception:  # noqa: BLE001 - report the scenario as crashed, run the others
            r = Row(f"{name}: crashed", runs=0)
            r.fail(traceback.format_exc(limit=8))
            got = [r]
        rows += got
        print(f"  {name}: {time.monotonic() - t:.0f} s, " + ", ".join(f"{r.scenario} {r.result()}" for r in got),
              file=sys.stderr, flush=True)
    print()
    print(format_table(rows))
    print()
    print(LEGEND)
    bad = [r for r in rows if r.failures]
    print(f"\n{len(rows)} rows, {len(bad)} failed, {sum(1 for r in rows if r.known)} known defects (XFAIL), "
          f"{time.monotonic() - t0:.0f} s, seed {seed}")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=1))
    if not (args.workdir or args.keep):
        shutil.rmtree(work, ignore_errors=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
