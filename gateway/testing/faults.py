"""Fault injection around REAL components (never a replacement for them)."""

from __future__ import annotations

from typing import Any

from ledger_client.errors import LedgerUnavailable
from ledger_client.ledger import AnchorStatus, Ledger


class SwitchableLedger:
    """Wraps a real ledger; while ``down`` every call fails as an unreachable node would."""

    def __init__(self, inner: Ledger) -> None:
        self.inner = inner
        self.kind = inner.kind
        self.down = False
        self.submits = 0

    def _check(self) -> None:
        if self.down:
            raise LedgerUnavailable("ledger switched off by the test")

    def prepare(self, header_hash: bytes, *, gateway: str, block: int, now_ms: int) -> dict[str, Any]:
        return self.inner.prepare(header_hash, gateway=gateway, block=block, now_ms=now_ms)

    def submit(self, submission: dict[str, Any]) -> dict[str, Any]:
        self._check()
        self.submits += 1
        return self.inner.submit(submission)

    def lookup(self, submission: dict[str, Any], *, now_ms: int) -> AnchorStatus:
        self._check()
        return self.inner.lookup(submission, now_ms=now_ms)

    def close(self) -> None:
        self.inner.close()
