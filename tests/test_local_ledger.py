"""The embedded ledger: append-only, chained, signed, idempotent on re-submission."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.core.clock import FakeClock
from ledger_client.errors import LedgerError, VerificationError
from ledger_client.local import LocalLedger, verify_local_anchor


@pytest.fixture
def ledger(tmp_path: Path) -> LocalLedger:
    return LocalLedger(tmp_path / "l.sqlite", Ed25519PrivateKey.generate(), clock_ms=FakeClock().now_ms)


def anchor(ledger: LocalLedger, h: bytes, block: int = 0) -> dict:
    sub = ledger.submit(ledger.prepare(h, gateway="g", block=block, now_ms=0))
    st = ledger.lookup(sub, now_ms=0)
    assert st.state == "confirmed" and st.anchor is not None
    return st.anchor


def test_entries_chain_and_verify(ledger: LocalLedger) -> None:
    a = [anchor(ledger, bytes([i]) * 32, i) for i in range(3)]
    assert [x["entry"]["index"] for x in a] == [0, 1, 2]
    assert a[0]["entry"]["prev"] == "00" * 32 and a[1]["entry"]["prev"] != a[2]["entry"]["prev"]
    assert ledger.check_chain() == 3
    assert verify_local_anchor(a[1], bytes([1]) * 32, step=6, ledger_file=ledger.path) == a[1]["entry"]["time_ms"]


def test_resubmission_is_idempotent(ledger: LocalLedger) -> None:
    h = b"\x07" * 32
    sub = ledger.prepare(h, gateway="g", block=4, now_ms=0)
    ledger.submit(sub)
    ledger.submit(sub)  # a crash-retry
    assert ledger.check_chain() == 1


def test_ledger_rows_cannot_be_rewritten(ledger: LocalLedger) -> None:
    anchor(ledger, b"\x01" * 32)
    db = sqlite3.connect(ledger.path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE entries SET header_hash = x'00'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("DELETE FROM entries")


def test_anchor_checks_name_the_mismatch(ledger: LocalLedger, tmp_path: Path) -> None:
    a = anchor(ledger, b"\x02" * 32)
    with pytest.raises(VerificationError, match="anchor names header hash 0202"):
        verify_local_anchor(a, b"\x03" * 32, step=6)
    with pytest.raises(VerificationError, match="is not the pinned key"):
        verify_local_anchor(a, b"\x02" * 32, step=6, pinned_key="ab" * 32)
    other = LocalLedger(tmp_path / "other.sqlite", Ed25519PrivateKey.generate(), clock_ms=lambda: 1)
    with pytest.raises(VerificationError, match="is not in ledger file"):
        verify_local_anchor(a, b"\x02" * 32, step=6, ledger_file=other.path)


def test_ledger_file_bound_to_its_key(ledger: LocalLedger) -> None:
    ledger.close()
    with pytest.raises(LedgerError, match="ledger was created with key"):
        LocalLedger(ledger.path, Ed25519PrivateKey.generate(), clock_ms=lambda: 1)
