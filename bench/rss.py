"""Gateway RSS from 0 to N buffered readings with the ledger offline, then back online.

    python bench/rss.py [--quick] [--n N] [--live M]

"Buffered" readings are journaled and sealed but not anchored: the ledger is switched off
(the test suite's SwitchableLedger around the real local ledger) so the outbox cannot
drain. The journal grows to N (10M; 1M with --quick) in stages. Between stages the bench
appends genuine signed records straight into the journal (Journal.commit_batch + the real
BlockSealer — feeding millions through MQTT would take hours); in every stage the REAL
gateway process then starts on that journal, with the ledger off, and drains a live
backlog of M firmware messages over MQTT while its RSS (/proc/<pid>/statm) is sampled
every 0.1 s. So each stage shows both what a restart on a large journal costs and what
ingest on top of it costs. At N the ledger comes back: one anchor covers the whole
backlog, and another M messages are ingested; RSS must stay flat through that too.
Target (issue "Performance"): < 80 MB, flat.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from _common import (
    Child,
    Result,
    build_messages,
    fill_journal,
    print_table,
    proc_rss_mb,
    publish_backlog,
    workdir,
)

from gateway.journal import Journal
from gateway.testing.mosquitto import Mosquitto
from gateway.testing.station import StationDir, make_station
from ledger_client.keys import load_private_key


def _count(j: Journal) -> int:
    return j.next_seq()


def _stage(st: StationDir, port: int, m: int, start_ctr: int, *, final: bool, log: Any) -> dict[str, Any]:
    jpath = st.root / "data" / "journal.sqlite"
    msgs = build_messages(st, m, start_ctr=start_ctr)
    publish_backlog(port, msgs)
    j = Journal(jpath, readonly=True)
    base = _count(j)
    samples: list[tuple[float, float]] = []
    child = Child(["bench/gwproc.py", str(st.config_path), "--ledger-down"])
    child.expect("ready")
    t0 = time.perf_counter()

    def sample() -> float:
        r = proc_rss_mb(child.pid)
        samples.append((time.perf_counter() - t0, r))
        return r
    rss_ready = sample()
    child.send("go")
    while _count(j) - base < m:
        sample()
        time.sleep(0.1)
        if time.perf_counter() - t0 > 600:
            raise TimeoutError("stage drain")
    t_drain = time.perf_counter() - t0
    out: dict[str, Any] = {"records": _count(j), "ready_mb": rss_ready, "drain_rate": m / t_drain}
    out["offline_peak_mb"] = max(r for _, r in samples)
    out["offline_last_mb"] = samples[-1][1]
    if final:
        # ledger back: the anchorer covers the whole backlog with one anchor; ingest M more live
        last_block = j.last_block()
        t1 = time.perf_counter()
        child.send("ledger-up")
        while True:
            sample()
            a = j.db.execute("SELECT MAX(block) FROM anchors").fetchone()[0]
            if a is not None and last_block is not None and a >= last_block.block:
                break
            if time.perf_counter() - t1 > 120:
                raise TimeoutError("backlog not anchored")
            time.sleep(0.1)
        out["anchor_s"] = time.perf_counter() - t1
        out["anchors"] = j.db.execute("SELECT COUNT(*) FROM anchors").fetchone()[0]
        n1 = len(samples)
        msgs = build_messages(st, m, start_ctr=start_ctr + m)
        base2 = _count(j)
        publish_backlog(port, msgs)
        while _count(j) - base2 < m:
            sample()
            time.sleep(0.1)
        out["online_peak_mb"] = max(r for _, r in samples[n1 - 1:])
        out["online_last_mb"] = samples[-1][1]
    child.send("stop")
    child.expect("stopped", timeout=60)
    child.finish()
    out["peak_mb"] = max(r for _, r in samples)
    out["maxrss_mb"] = child.rusage.ru_maxrss / 1000 if child.rusage else float("nan")
    j.close()
    log(f"[rss]   journal {out['records']:,}: ready {rss_ready:.1f} MB, peak {out['peak_mb']:.1f} MB, "
        f"drain {out['drain_rate']:,.0f}/s" + (f", anchored backlog in {out['anchor_s']:.1f} s" if final else ""))
    return out


def run(quick: bool, *, n: int | None = None, live: int | None = None, base: str | None = None,
        log: Any = print) -> tuple[list[Result], dict[str, Any]]:
    n = n or (1_000_000 if quick else 10_000_000)
    m = live or (5_000 if quick else 50_000)
    targets = [0, n // 2, n] if quick else [0, n // 10, n // 4, n // 2, n]
    tmp = workdir("rss", base)
    broker = Mosquitto(tmp / "mosquitto", persistence=False).start()
    try:
        st = make_station(tmp / "station", broker.port, sensors=10)
        reg = Child(["bench/gwproc.py", str(st.config_path), "--register", "--ledger-down"])
        reg.expect("ready")
        reg.send("go")
        reg.expect("stopped")
        reg.finish()
        key = load_private_key(st.root / "gateway.key")
        jpath = st.root / "data" / "journal.sqlite"
        stages = []
        fill_s = 0.0
        ctr = 1
        for k, target in enumerate(targets):
            j = Journal(jpath)
            have = j.next_seq()
            if target > have:
                log(f"[rss] filling journal {have:,} → {target:,} …")
                fill_s += fill_journal(j, key, st.gateway_id, target - have, topic=st.topic("probe-1"))
            j.close()
            stages.append(_stage(st, broker.port, m, ctr, final=k == len(targets) - 1, log=log))
            ctr += 2 * m
    finally:
        broker.stop()
    s0, sN = stages[0], stages[-1]
    peak_off = max(s["offline_peak_mb"] for s in stages)
    flat = peak_off <= s0["offline_peak_mb"] * 1.10 + 2
    res = [
        Result(f"RSS, ledger offline, journal 0 → {sN['records'] / 1e6:.1f}M buffered", f"{peak_off:.1f} MB peak",
               f"{s0['offline_peak_mb']:.1f} MB at 0", s0["offline_peak_mb"] / peak_off, "< 80 MB, flat",
               peak_off < 80 and flat,
               note="per stage (journal size: ready → peak MB): " + "; ".join(
                   f"{s['records'] / 1e6:.2f}M: {s['ready_mb']:.0f} → {s['offline_peak_mb']:.1f}" for s in stages)
               + f"; journal grown by direct fill in {fill_s:.0f} s, {m:,} live MQTT readings per stage"),
        Result("RSS, ledger back: anchor backlog + ingest", f"{sN['online_peak_mb']:.1f} MB peak",
               f"{sN['offline_peak_mb']:.1f} MB offline", sN["offline_peak_mb"] / sN["online_peak_mb"], "< 80 MB, flat",
               sN["online_peak_mb"] < 80 and sN["online_peak_mb"] <= sN["offline_peak_mb"] * 1.10 + 2,
               note=f"one anchor covered {sN['records']:,} records' blocks in {sN['anchor_s']:.1f} s "
                    f"({sN['anchors']} anchors in the journal)"),
        Result(f"drain rate on a {sN['records'] / 1e6:.1f}M-record journal", f"{sN['drain_rate']:,.0f}/s",
               f"{s0['drain_rate']:,.0f}/s at 0", sN["drain_rate"] / s0["drain_rate"],
               note="ledger offline; same gateway, same backlog size"),
    ]
    return res, {"station": st, "stages": stages}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--live", type=int, default=None)
    args = ap.parse_args()
    res, _ = run(args.quick, n=args.n, live=args.live)
    print_table(res, "\nRSS")


if __name__ == "__main__":
    main()
