"""Anchoring through the outbox: one anchor per backlog, no double anchor after a crash."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.chain.anchoring import Anchorer, backoff_s
from gateway.chain.blocks import BlockSealer
from gateway.chain.export import export_range
from gateway.core.clock import FakeClock
from gateway.ingest.seal import Sealer
from gateway.journal import Journal
from gateway.testing.faults import SwitchableLedger
from ledger_client.errors import LedgerUnavailable
from ledger_client.keys import public_hex
from ledger_client.local import LocalLedger
from ledger_client.verify import verify_bundle


class Rig:
    def __init__(self, tmp: Path) -> None:
        self.clock = FakeClock()
        self.key = Ed25519PrivateKey.generate()
        self.journal = Journal(tmp / "j.sqlite")
        self.journal.bind_identity("gw", public_hex(self.key))
        self.sealer = Sealer("gw", self.key, 0)
        self.blocks = BlockSealer(self.journal, self.key, "gw", self.clock, max_records=4, max_seconds=60)
        self.local = LocalLedger(tmp / "l.sqlite", Ed25519PrivateKey.generate(), clock_ms=self.clock.now_ms)
        self.ledger = SwitchableLedger(self.local)
        self.anchorer = Anchorer(self.journal, self.ledger, self.clock, "gw")

    def add(self, n: int) -> None:
        rows = [self.sealer.seal({"type": "reading", "sensor": "p", "kind": "temperature", "value": i, "unit": "mC"},
                                 time_ms=self.clock.now_ms(), synced=True) for i in range(n)]
        self.journal.commit_batch(rows, [], {}, {})
        self.clock.advance(1000)
        self.blocks.maybe_seal()


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(tmp_path)


def test_outage_backlog_is_one_anchor(rig: Rig) -> None:
    rig.add(4)
    assert rig.anchorer.step() == "confirmed"
    rig.ledger.down = True
    for _ in range(10):  # a long outage: ten more blocks sealed, anchoring keeps failing
        rig.add(4)
        with pytest.raises(LedgerUnavailable):
            rig.anchorer.step()
    rig.ledger.down = False
    while rig.anchorer.step() != "idle":
        pass
    assert rig.local.check_chain() == 2  # the whole backlog: ONE more ledger entry
    anchored = [r[0] for r in rig.journal.db.execute("SELECT block FROM anchors ORDER BY id")]
    assert anchored == [0, 10]
    # and the earliest backlog block verifies through the header chain up to that anchor
    b = export_range(rig.journal, "p", 0, 2**52)
    rep = verify_bundle(b, gateway_key=public_hex(rig.key))
    assert rep.ok, rep.as_dict()
    assert rep.summary["anchored_blocks"] == [10] or rep.summary["anchored_blocks"] == [0, 10]


def test_crash_after_prepare_does_not_double_anchor(rig: Rig, tmp_path: Path) -> None:
    rig.add(4)
    # the gateway wrote its outbox row, then died before/after submitting: simulate both
    sub = rig.ledger.prepare(bytes(rig.journal.last_block().hash), gateway="gw", block=0, now_ms=0)  # type: ignore[union-attr]
    rig.journal.add_outbox(0, bytes(rig.journal.last_block().hash), "local", sub, 0)  # type: ignore[union-attr]
    rig.ledger.submit(sub)  # it got out before the crash
    restarted = Anchorer(Journal(tmp_path / "j.sqlite"), rig.ledger, rig.clock, "gw")
    assert restarted.step() == "confirmed"
    assert restarted.step() == "idle"
    assert rig.local.check_chain() == 1
    states = [r[0] for r in rig.journal.db.execute("SELECT state FROM outbox")]
    assert states == ["confirmed"]


def test_new_blocks_during_pending_anchor_get_next_round(rig: Rig) -> None:
    rig.add(4)
    rig.add(4)
    assert rig.anchorer.step() == "confirmed"   # anchors block 1, covering 0 and 1
    assert rig.anchorer.step() == "idle"
    rig.add(4)
    assert rig.anchorer.step() == "confirmed"   # block 2
    assert [json.loads(a)["entry"]["block"] for (a,) in rig.journal.db.execute("SELECT anchor FROM anchors")] == [1, 2]


def test_min_interval_batches_anchors(rig: Rig) -> None:
    rig.anchorer.min_interval_ms = 60_000
    rig.add(4)
    assert rig.anchorer.step() == "confirmed"
    rig.add(4)
    rig.add(4)
    assert rig.anchorer.step() == "waiting"
    rig.clock.advance(60_000)
    assert rig.anchorer.step() == "confirmed"
    assert rig.local.check_chain() == 2  # blocks 1 and 2 in one anchor


def test_backoff_is_bounded_and_jittered() -> None:
    rng = random.Random(1)
    samples = [backoff_s(a, rng, base=1.0, cap=300.0) for a in range(1, 31)]
    assert all(0 <= s <= 300 for s in samples)
    assert len(set(round(s, 6) for s in samples)) == 30
    assert max(backoff_s(3, random.Random(i)) for i in range(200)) <= 8.0
