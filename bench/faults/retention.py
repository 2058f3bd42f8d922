"""Scenario 8: retention pruning killed with SIGKILL at random moments.

A real journal (signed records, sealed blocks, a local ledger anchoring part of them) with
blocks that are old and anchored, old and NOT anchored, and new. A child process runs
``gateway.chain.retention.prune`` one block per transaction; it is killed -9 after a random number
of transactions, again and again, then allowed to finish. After every kill: the journal
passes ``PRAGMA integrity_check``; the ``pruned`` log accounts for exactly the records that
are gone (whole blocks, a prefix); and no record of an unanchored or young block is gone.

Columns: sent = records written; journaled = records kept + records the prune log accounts
for; lost = records gone that the log does not account for, or that retention must never
take (unanchored or young); duplicated = records both present and logged as pruned;
detected = kill cycles after which all of that held.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.chain.anchoring import Anchorer
from gateway.chain.blocks import BlockSealer
from gateway.chain.retention import DAY_MS
from gateway.core.clock import FakeClock
from gateway.ingest.seal import Sealer
from gateway.journal import Journal
from ledger_client.keys import public_hex
from ledger_client.local import LocalLedger

from .common import REPO, Row

DAYS = 30
_CHILD = textwrap.dedent("""
    import sys
    from gateway.app.config import RetentionConfig
    from gateway.journal import Journal
    from gateway.chain.retention import prune
    j = Journal(sys.argv[1])
    prune(j, RetentionConfig(days=int(sys.argv[2]), batch=1), int(sys.argv[3]))
""")


def _build(path: Path, ledger_path: Path, blocks: int, per_block: int) -> tuple[int, set[int]]:
    """Blocks 0..60 % old and anchored, ..85 % old and never anchored, the rest new.
    Returns (now_ms, blocks retention may take)."""
    clock = FakeClock()
    key = Ed25519PrivateKey.generate()
    j = Journal(path)
    j.bind_identity("gw", public_hex(key))
    sealer = Sealer("gw", key, 0)
    bs = BlockSealer(j, key, "gw", clock, max_records=per_block, max_seconds=10**9)
    ledger = LocalLedger(ledger_path, Ed25519PrivateKey.generate(), clock_ms=clock.now_ms)
    anchorer = Anchorer(j, ledger, clock, "gw")
    anchored_to, old_to = int(blocks * 0.6) - 1, int(blocks * 0.85) - 1
    for b in range(blocks):
        rows = [sealer.seal({"type": "reading", "sensor": "p", "kind": "temperature", "value": i, "unit": "mC"},
                            time_ms=clock.now_ms(), synced=True) for i in range(per_block)]
        j.commit_batch(rows, [], {}, {})
        bs.maybe_seal()
        if b == anchored_to:
            while anchorer.step() != "idle":
                pass
        clock.advance(60_000)
        if b == old_to:
            clock.advance(40 * DAY_MS)
    j.close()
    ledger.close()
    return clock.now_ms(), set(range(anchored_to + 1))


def _check(path: Path, row: Row, may_go: set[int], per_block: int) -> tuple[bool, int, int, int]:
    """(consistent, kept, accounted-for pruned, lost)"""
    db = sqlite3.connect(path, timeout=30)
    try:
        ok = db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        counts = dict(db.execute(
            "SELECT b.block, (SELECT COUNT(*) FROM records r WHERE r.seq BETWEEN b.first_seq AND b.last_seq) "
            "FROM blocks b"))
        logged_to = db.execute("SELECT COALESCE(MAX(last_block), -1) FROM pruned").fetchone()[0]
        logged = db.execute("SELECT COALESCE(SUM(records), 0) FROM pruned").fetchone()[0]
        guard = db.execute("SELECT COUNT(*) FROM prune_guard").fetchone()[0]
    finally:
        db.close()
    gone = [b for b, n in counts.items() if n == 0]
    partial = [b for b, n in counts.items() if 0 < n < per_block]
    lost = sum(per_block for b in gone if b not in may_go) + sum(per_block - counts[b] for b in partial)
    lost += max(0, len(gone) * per_block - logged)
    consistent = (ok and not partial and guard == 0 and gone == list(range(logged_to + 1))
                  and logged == len(gone) * per_block and lost == 0)
    if not ok:
        row.fail("integrity_check failed after a kill")
    if partial:
        row.fail(f"half-pruned blocks {partial[:5]}")
    if gone != list(range(logged_to + 1)) or logged != len(gone) * per_block:
        row.fail(f"prune log (to block {logged_to}, {logged} records) does not match the gone blocks {gone[:3]}…")
    return consistent, sum(counts.values()), logged, lost


def run_retention(workdir: Path, *, cycles: int, blocks: int, per_block: int, rng: random.Random) -> list[Row]:
    row = Row(f"8 retention: kill -9 mid-prune ({blocks * per_block:,} records)", runs=cycles)
    path, ledger_path = workdir / "journal.sqlite", workdir / "ledger.sqlite"
    now, may_go = _build(path, ledger_path, blocks, per_block)
    row.sent = blocks * per_block
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *sys.path])}
    good = 0
    lost = 0
    interrupted = 0
    for _ in range(cycles):
        before = _logged(path)
        target = before + rng.randint(1, max(1, len(may_go) // (2 * cycles)))
        child = subprocess.Popen([sys.executable, "-c", _CHILD, str(path), str(DAYS), str(now)], env=env,
                                 start_new_session=True)
        deadline = time.monotonic() + 60
        while _logged(path) < target and child.poll() is None and time.monotonic() < deadline:
            time.sleep(rng.uniform(0, 0.01))
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
            interrupted += 1
        child.wait()
        consistent, kept, logged, lost_now = _check(path, row, may_go, per_block)
        good += consistent
        lost = max(lost, lost_now)
    # and then to the end: exactly the old, anchored blocks are gone, never another
    subprocess.run([sys.executable, "-c", _CHILD, str(path), str(DAYS), str(now)], env=env, check=True)
    consistent, kept, logged, lost_now = _check(path, row, may_go, per_block)
    lost = max(lost, lost_now)
    gone_blocks = logged // per_block
    row.check(gone_blocks == len(may_go), f"after the last run {gone_blocks} blocks are pruned, expected {len(may_go)}")
    row.journaled, row.lost, row.duplicated = kept + logged, lost, max(0, kept + logged - row.sent)
    row.detected = (good, cycles)
    row.check(interrupted > 0, "no kill landed while pruning ran")
    row.notes.append(f"{interrupted} of {cycles} kills landed mid-prune; "
                     f"{len(may_go)} of {blocks} blocks old and anchored, all pruned in the end; "
                     f"{blocks - len(may_go)} unanchored or young blocks "
                     f"({(blocks - len(may_go)) * per_block:,} records) "
                     "untouched through every kill")
    return [row]


def _logged(path: Path) -> int:
    db = sqlite3.connect(path, timeout=30)
    try:
        return int(db.execute("SELECT COUNT(*) FROM pruned").fetchone()[0])
    finally:
        db.close()
