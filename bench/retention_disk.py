#!/usr/bin/env python3
"""Disk cost of the journal per reading, and what retention gives back.

    python bench/retention_disk.py [--readings 100000] [--prune-fraction 0.8]

Writes realistic signed readings (the body a traceseal probe's reading becomes: source,
counter, sensor time, message digest) through the real journal, sealer and block sealer,
anchors them on a local ledger, then prunes the oldest part and writes as much again,
twice: on a journal created as today (``auto_vacuum=NONE``: freed pages are reused) and on
one created with ``auto_vacuum=INCREMENTAL`` (freed pages handed back by
``PRAGMA incremental_vacuum``). Prints file sizes at each step.
"""

from __future__ import annotations

import argparse
import hashlib
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from gateway.app.config import RetentionConfig  # noqa: E402
from gateway.chain.anchoring import Anchorer  # noqa: E402
from gateway.chain.blocks import BlockSealer  # noqa: E402
from gateway.chain.retention import DAY_MS, prune  # noqa: E402
from gateway.core.clock import FakeClock  # noqa: E402
from gateway.ingest.seal import Sealer  # noqa: E402
from gateway.journal import Journal  # noqa: E402
from ledger_client.keys import public_hex  # noqa: E402
from ledger_client.local import LocalLedger  # noqa: E402


def size(path: Path) -> int:
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return path.stat().st_size


def fill(j: Journal, sealer: Sealer, blocks: BlockSealer, clock: FakeClock, n: int, ctr0: int,
         anchorer: Anchorer) -> None:
    batch = []
    for i in range(n):
        ctr = ctr0 + i
        sensor = f"probe-{ctr % 4 + 1}"
        digest = hashlib.sha256(f"{sensor}/{ctr}".encode()).digest()
        body = {"type": "reading", "sensor": sensor, "kind": "temperature", "value": 4000 + ctr % 997, "unit": "mC",
                "source": {"adapter": "traceseal", "transport": "mqtt", "topic": f"traceseal/sensors/{sensor}/reading",
                           "auth": "ed25519", "ctr": ctr, "sensor_time_ms": clock.now_ms() - 120,
                           "msg_sha256": digest.hex()}}
        batch.append(sealer.seal(body, time_ms=clock.now_ms(), synced=True, digest=digest))
        clock.advance(60_000 // 4)  # four probes, one reading a minute each
        if len(batch) == 500:
            j.commit_batch(batch, [], {}, {})
            batch = []
            if blocks.maybe_seal():
                while anchorer.step() != "idle":  # anchored as it goes, as the anchor thread does
                    pass
    if batch:
        j.commit_batch(batch, [], {}, {})
    blocks.maybe_seal(force=True)
    while anchorer.step() != "idle":
        pass


def run(root: Path, n: int, fraction: float, incremental: bool) -> dict[str, float]:
    path = root / ("inc.sqlite" if incremental else "none.sqlite")
    if incremental:  # must be set before the first table exists
        db = sqlite3.connect(path)
        db.execute("PRAGMA auto_vacuum=INCREMENTAL")
        db.execute("CREATE TABLE _x (x)")
        db.execute("DROP TABLE _x")
        db.close()
    clock = FakeClock()
    key = Ed25519PrivateKey.generate()
    j = Journal(path)
    j.bind_identity("gw", public_hex(key))
    sealer = Sealer("gw", key, 0)
    blocks = BlockSealer(j, key, "gw", clock, max_records=1000, max_seconds=60)
    ledger = LocalLedger(root / f"l-{incremental}.sqlite", Ed25519PrivateKey.generate(), clock_ms=clock.now_ms)
    anchorer = Anchorer(j, ledger, clock, "gw")
    fill(j, sealer, blocks, clock, n, 0, anchorer)
    full = size(path)
    # retention cutoff at `fraction` of the way through the data
    span_ms = n * 15_000
    now = clock.now_ms() - span_ms + int(span_ms * fraction) + 30 * DAY_MS
    t0 = time.perf_counter()
    res = prune(j, RetentionConfig(days=30, batch=5000), now)
    took = time.perf_counter() - t0
    after_prune = size(path)
    (free,) = j.db.execute("PRAGMA freelist_count").fetchone()
    (page,) = j.db.execute("PRAGMA page_size").fetchone()
    fill(j, sealer, blocks, clock, res.deleted, n, anchorer)
    refill = size(path)
    j.close()
    ledger.close()
    return {"readings": n, "bytes_per_reading": full / n, "full_mb": full / 1e6, "pruned": res.deleted,
            "after_prune_mb": after_prune / 1e6, "free_mb": free * page / 1e6,
            "after_refill_mb": refill / 1e6, "freed_pages": res.freed_pages,
            "prune_s": took, "ms_per_txn": 1000 * took / max(1, res.transactions)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--readings", type=int, default=100_000)
    ap.add_argument("--prune-fraction", type=float, default=0.8)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        print("auto_vacuum   readings  B/reading  full MB  pruned   after prune MB  free MB  after refill MB"
              "  prune s  ms/txn")
        for inc in (False, True):
            r = run(Path(d), args.readings, args.prune_fraction, inc)
            print(f"{'INCREMENTAL' if inc else 'NONE':<12} {r['readings']:>9} {r['bytes_per_reading']:>10.0f} "
                  f"{r['full_mb']:>8.1f} {r['pruned']:>7} {r['after_prune_mb']:>15.1f} {r['free_mb']:>8.1f} "
                  f"{r['after_refill_mb']:>16.1f} {r['prune_s']:>8.2f} {r['ms_per_txn']:>7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
