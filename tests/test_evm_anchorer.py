"""The gateway's Anchorer with the EVM backend against a real anvil: outage, crash, bundle verify."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.chain.anchoring import Anchorer
from gateway.chain.blocks import BlockSealer
from gateway.chain.export import export_range
from gateway.core.clock import FakeClock
from gateway.ingest.seal import Sealer
from gateway.journal import Journal
from gateway.testing.anvil import Anvil
from ledger_client.errors import LedgerUnavailable
from ledger_client.evm import EvmLedger
from ledger_client.keys import public_hex
from ledger_client.verify import default_checkers, verify_bundle


class Rig:
    def __init__(self, tmp: Path, node: Anvil) -> None:
        self.tmp = tmp
        self.node = node
        self.clock = FakeClock()
        self.key = Ed25519PrivateKey.generate()
        self.journal = Journal(tmp / "j.sqlite")
        self.journal.bind_identity("gw", public_hex(self.key))
        self.sealer = Sealer("gw", self.key, 0)
        self.blocks = BlockSealer(self.journal, self.key, "gw", self.clock, max_records=4, max_seconds=60)
        self.ledger = self.new_ledger()
        self.anchorer = Anchorer(self.journal, self.ledger, self.clock, "gw")

    def new_ledger(self) -> EvmLedger:
        return EvmLedger(self.node.url, chain_id=self.node.chain_id, private_key=self.node.private_keys[2])

    def add(self, n: int) -> None:
        rows = [self.sealer.seal({"type": "reading", "sensor": "p", "kind": "temperature", "value": i, "unit": "mC"},
                                 time_ms=self.clock.now_ms(), synced=True) for i in range(n)]
        self.journal.commit_batch(rows, [], {}, {})
        self.clock.advance(1000)
        self.blocks.maybe_seal()

    def drain(self, anchorer: Anchorer | None = None, rounds: int = 200) -> list[str]:
        seen = []
        for _ in range(rounds):
            r = (anchorer or self.anchorer).step()
            seen.append(r)
            if r == "idle":
                return seen
        raise AssertionError(f"anchoring did not settle: {seen[-10:]}")


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Anvil]:
    with Anvil(workdir=tmp_path / "anvil") as n:
        yield n


def test_outage_backlog_is_one_evm_anchor_and_the_bundle_verifies(tmp_path: Path, node: Anvil) -> None:
    rig = Rig(tmp_path, node)
    rig.add(4)
    rig.drain()
    sender = rig.ledger.address
    assert node.tx_count(sender) == 1
    node.stop()
    for _ in range(10):  # a long outage: ten more blocks sealed, every anchoring round fails
        rig.add(4)
        with pytest.raises(LedgerUnavailable):
            rig.anchorer.step()
    node.start()  # same port; the chain survived
    assert "confirmed" in rig.drain()
    assert node.tx_count(sender) == 2  # the whole backlog: ONE more transaction
    bundle = export_range(rig.journal, "p", 0, 2**52)
    checkers = default_checkers(rpc_url=node.url, chain_id=node.chain_id, sender=sender)
    rep = verify_bundle(bundle, gateway_key=public_hex(rig.key), checkers=checkers)
    assert rep.ok, rep.as_dict()
    # without --rpc the same bundle cannot be called verified
    rep2 = verify_bundle(bundle, gateway_key=public_hex(rig.key), checkers=default_checkers())
    assert not rep2.ok and "--rpc" in str(rep2.as_dict())


def test_crash_between_send_and_receipt_makes_one_anchor(tmp_path: Path, node: Anvil) -> None:
    rig = Rig(tmp_path, node)
    node.set_automine(False)
    rig.add(4)
    assert rig.anchorer.step() == "pending"  # prepared, persisted, sent; no block yet
    rig.ledger.close()  # the process dies here
    ledger2 = rig.new_ledger()
    restarted = Anchorer(Journal(tmp_path / "j.sqlite"), ledger2, rig.clock, "gw")
    node.mine()
    assert "confirmed" in rig.drain(restarted)
    assert node.tx_count(ledger2.address) == 1
