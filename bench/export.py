"""Export of a 1M-record range: time, peak memory, output size, and whether progress is shown.

    python bench/export.py [--quick] [--records 1000000]

The journal is filled directly (Journal.commit_batch + the real BlockSealer, blocks of
1,000 records, every record genuinely signed with the station's gateway key) and anchored
on the local ledger with the real Anchorer; ``bench/run_all.py`` reuses the journal the
RSS bench grew instead. The export is run exactly as a user runs it:

    traceseal export -c traceseal.toml --sensor probe-1 --from T0 --to T1 -o range.json

(as ``python -m gateway.cli``), timed from the outside, with its stderr watched for any
progress output before it exits and its peak RSS taken from its VmHWM. The baseline, in the
same run, is the data work no bundle can avoid: read the same rows from SQLite, hash every
leaf and every block's Merkle nodes with hashlib, and write bodies + signatures as JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from _common import REPO, Result, anchor_all, fill_journal, print_table, workdir

from gateway.app import config as configmod
from gateway.core.clock import SystemClock
from gateway.journal import Journal
from gateway.testing.station import StationDir, make_station
from ledger_client.keys import load_private_key, public_hex
from ledger_client.local import LocalLedger


def prepare(records: int, base: str | None = None, log: Any = print) -> StationDir:
    """A station whose journal holds ``records`` probe-1 readings, sealed and anchored."""
    tmp = workdir("export", base)
    st = make_station(tmp / "station", 1, sensors=1)
    cfg = configmod.load(st.config_path)
    key = load_private_key(cfg.key_file)
    j = Journal(cfg.journal.path)
    j.bind_identity(cfg.gateway_id, public_hex(key))
    log(f"[export] filling a journal with {records:,} signed records …")
    fill_journal(j, key, cfg.gateway_id, records, topic=st.topic("probe-1"))
    anchor_all(j, LocalLedger(cfg.ledger.path, load_private_key(cfg.ledger.key_file), clock_ms=SystemClock().now_ms),
               cfg.gateway_id)
    j.close()
    return st


def sensor_span(st: StationDir, count: int | None = None, sensor: str = "probe-1") -> tuple[int, int, int]:
    """(from_ms, to_ms, records) of the middle ``count`` records of ``sensor`` (all if None)."""
    cfg = configmod.load(st.config_path)
    db = sqlite3.connect(f"file:{cfg.journal.path}?mode=ro", uri=True)
    total = db.execute("SELECT COUNT(*) FROM records WHERE sensor=?", (sensor,)).fetchone()[0]
    count = min(count or total, total)
    first = (total - count) // 2

    def at(off: int) -> int:
        return db.execute("SELECT time_ms FROM records WHERE sensor=? ORDER BY time_ms LIMIT 1 OFFSET ?",
                          (sensor, off)).fetchone()[0]
    lo, hi = at(first), at(first + count - 1)
    n = db.execute("SELECT COUNT(*) FROM records WHERE sensor=? AND time_ms BETWEEN ? AND ?",
                   (sensor, lo, hi)).fetchone()[0]
    db.close()
    return lo, hi, n


def cli_export(st: StationDir, out: Path, lo: int, hi: int) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "gateway.cli", "export", "-c", str(st.config_path),
                          "--sensor", "probe-1", "--from", str(lo), "--to", str(hi), "-o", str(out)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=str(REPO))
    assert p.stderr is not None
    lines: list[tuple[float, str]] = []
    first_out = None

    def read() -> None:
        assert p.stderr is not None
        for line in p.stderr:  # stamped as it arrives: progress output would show here
            lines.append((time.perf_counter() - t0, line.rstrip()))
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    # Peak RSS is the child's own VmHWM, read while it runs. wait4's ru_maxrss is not: Linux
    # carries the pre-exec high-water mark over exec, so it reports at least the RSS of this
    # (forking) bench process, ~340 MB after run_all's journal fill.
    hwm_kb = 0
    while True:
        try:
            for line in Path(f"/proc/{p.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    hwm_kb = max(hwm_kb, int(line.split()[1]))
        except (OSError, ValueError):
            pass
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if first_out is None and (out.exists() or out.with_name(out.name + ".partial").exists()):
            first_out = time.perf_counter() - t0
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    reader.join(10)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"traceseal export failed ({code}): {lines[-5:]}")
    progress = [(t, s) for t, s in lines if not s.startswith("wrote ")]
    return {"wall_s": wall, "maxrss_mb": hwm_kb / 1000, "wait4_maxrss_mb": ru.ru_maxrss / 1000,
            "bytes": out.stat().st_size, "stderr": lines,
            "progress_lines": len(progress), "first_progress_s": progress[0][0] if progress else None,
            "silent_s": (lines[-1][0] if lines else wall), "first_output_s": first_out}


def floor(st: StationDir, lo: int, hi: int, out: Path) -> float:
    """Read the same rows, hash leaves and every block's nodes with hashlib, write JSON."""
    cfg = configmod.load(st.config_path)
    sha = hashlib.sha256
    t0 = time.perf_counter()
    db = sqlite3.connect(f"file:{cfg.journal.path}?mode=ro", uri=True)
    recs: list[list[str]] = []
    for first, last in db.execute("SELECT first_seq, last_seq FROM blocks ORDER BY block"):
        rows = db.execute("SELECT body, sig, sensor, time_ms FROM records WHERE seq BETWEEN ? AND ? ORDER BY seq",
                          (first, last)).fetchall()
        level = [sha(b"\x00" + r[0]).digest() for r in rows]
        while len(level) > 1:
            nxt = [sha(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                nxt.append(level[-1])
            level = nxt
        recs.extend([r[0].decode(), r[1].hex()] for r in rows if r[2] == "probe-1" and lo <= r[3] <= hi)
    db.close()
    with open(out, "w") as f:
        json.dump(recs, f)
    return time.perf_counter() - t0


def run(quick: bool, *, records: int = 1_000_000, station: StationDir | None = None, base: str | None = None,
        log: Any = print) -> tuple[list[Result], dict[str, Any]]:
    st = station or prepare(records, base, log)
    lo, hi, n = sensor_span(st, records)
    out = st.root / "range.json"
    log(f"[export] traceseal export of {n:,} records (CLI) …")
    cli = cli_export(st, out, lo, hi)
    log(f"[export]   {cli['wall_s']:.1f} s, peak RSS {cli['maxrss_mb']:.0f} MB, {cli['bytes'] / 1e6:.0f} MB written")
    t_floor = floor(st, lo, hi, st.root / "floor.json")
    shown = cli["progress_lines"] > 0
    res = [
        Result(f"export {n / 1e6:.2f}M-record range (traceseal export)",
               f"{cli['wall_s']:.1f} s ({n / cli['wall_s']:,.0f} rec/s)",
               f"{t_floor:.1f} s", t_floor / cli["wall_s"],
               note=f"baseline = read rows + hashlib leaves/nodes + JSON write; output {cli['bytes'] / 1e6:.0f} MB"),
        Result(f"export peak RSS ({n / 1e6:.2f}M range)", f"{cli['maxrss_mb']:,.0f} MB",
               note="the export process's own VmHWM (polled every 50 ms); wait4's ru_maxrss, "
               f"which includes the forking bench process, said {cli['wait4_maxrss_mb']:,.0f} MB"),
        Result("export shows progress", "yes" if shown else f"no (silent for {cli['silent_s']:.0f} s)", target="yes",
               met=shown, note="stderr lines before exit: " + str(cli["progress_lines"])),
    ]
    return res, {"station": st, "cli": cli, "bundle": out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--records", type=int, default=1_000_000)
    args = ap.parse_args()
    res, _ = run(args.quick, records=args.records)
    print_table(res, "\nexport")


if __name__ == "__main__":
    main()
