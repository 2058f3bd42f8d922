"""Archive ingest rate: records/s through ``Archive.process`` (verify + store + commit) on
SQLite and on a real PostgreSQL server, against raw Ed25519 verification of the same
records in the same run (the floor: the archive checks every signature).

    python bench/archive_ingest.py [--records 20000] [--batch 500]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.app.config import MqttConfig
from gateway.archive.config import ArchiveConfig, StoreConfig
from gateway.archive.consumer import Archive
from gateway.archive.store import PostgresStore, SqliteStore
from gateway.chain.blocks import BlockSealer
from gateway.core.clock import FakeClock
from gateway.ingest.seal import Sealer
from gateway.journal import Journal
from ledger_client.canonical import record_message
from ledger_client.keys import public_hex


def build(tmp: Path, n: int) -> tuple[str, list[tuple[bytes, bytes]], Journal]:
    key = Ed25519PrivateKey.generate()
    j = Journal(tmp / "j.sqlite")
    j.bind_identity("bench-gw", public_hex(key))
    clock = FakeClock()
    sealer = Sealer("bench-gw", key, 0)
    rows = []
    for i in range(n):
        rows.append(sealer.seal({"type": "reading", "sensor": f"p{i % 8}", "kind": "temperature",
                                 "value": 4000 + i % 900, "unit": "mC"}, time_ms=clock.now_ms(), synced=True))
        clock.advance(1000)
    j.commit_batch(rows, (), {}, {})
    BlockSealer(j, key, "bench-gw", clock, 1000, 3600).maybe_seal(force=True)
    return public_hex(key), [(r.body, r.sig) for r in rows], j


def messages(j: Journal, batch: int) -> list[tuple[str, bytes]]:
    out = []
    recs = j.records_range(0, 10**9)
    for i in range(0, len(recs), batch):
        items = [{"seq": r.seq, "body": r.body.decode(), "sig": r.sig.hex()} for r in recs[i:i + batch]]
        out.append(("traceseal/up/bench-gw/records",
                    json.dumps({"v": 1, "gateway": "bench-gw", "items": items}).encode()))
    blocks = [{"block": b.block, "header": b.header.decode(), "sig": b.sig.hex()} for b in j.blocks_between(0, 10**9)]
    out.append(("traceseal/up/bench-gw/blocks", json.dumps({"v": 1, "gateway": "bench-gw", "items": blocks}).encode()))
    return out


def run(store, pub: str, msgs: list[tuple[str, bytes]], n: int) -> float:
    cfg = ArchiveConfig(prefix="traceseal/up", broker=MqttConfig(), store=StoreConfig(), gateways={"bench-gw": pub})
    a = Archive(cfg, store)
    t = time.perf_counter()
    for m in msgs:
        a.process([m])
    dt = time.perf_counter() - t
    s = store.status("bench-gw")
    assert s["records"] == n and s["blocks_pending"] == 0 and not s["rejections"], s
    return n / dt


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--records", type=int, default=20_000)
    p.add_argument("--batch", type=int, default=500)
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ts-archive-bench-"))
    try:
        pub, sigs, j = build(tmp, args.records)
        from ledger_client.keys import public_from_hex

        pk = public_from_hex(pub)
        t = time.perf_counter()
        for body, sig in sigs:
            pk.verify(sig, record_message(body))
        raw = len(sigs) / (time.perf_counter() - t)
        msgs = messages(j, args.batch)
        rates = {"sqlite": run(SqliteStore(tmp / "a.sqlite"), pub, msgs, args.records)}
        from gateway.testing.postgres import Postgres

        with Postgres(tmp / "pg") as pg:
            rates["postgres"] = run(PostgresStore(pg.dsn), pub, msgs, args.records)
        print(f"{'figure':<40} {'value':>12}")
        print(f"{'raw Ed25519 verify (baseline)':<40} {raw:>10.0f}/s")
        for k, v in rates.items():
            print(f"{'archive ingest, ' + k + f' ({args.batch}/msg)':<40} {v:>10.0f}/s  ({v / raw:.2f} of baseline)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
