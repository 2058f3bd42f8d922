"""The seam between the gateway and any ledger: one small Protocol, one status type.

The gateway anchors a 32-byte block-header hash. Anchoring is split into ``prepare``
(build a submission, cheap, no network) and ``submit`` (send it) so the caller can
persist the submission in its outbox *before* it leaves the box: after a crash it
resubmits the same bytes instead of creating a second anchor. ``submit`` must therefore
be idempotent. ``lookup`` says where a submission stands; once confirmed it returns the
anchor object that goes into bundles verbatim (docs/proof-format.md §Anchors).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

AnchorState = Literal["pending", "confirmed", "failed", "dropped"]


@dataclass(frozen=True)
class AnchorStatus:
    """Where a submission stands.

    - ``pending``: sent, not yet final; poll again later. ``replacement`` may hold a new
      submission to persist and submit instead (e.g. the same nonce with higher fees).
    - ``confirmed``: final; ``anchor`` is the bundle object, ``time_ms`` the ledger's time.
    - ``failed``: the ledger rejected it for good (e.g. reverted); prepare a new one.
    - ``dropped``: the ledger no longer knows it (reorg, evicted); prepare a new one.
    """

    state: AnchorState
    anchor: dict[str, Any] | None = None
    time_ms: int | None = None
    reason: str = ""
    replacement: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Ledger(Protocol):
    kind: str

    def prepare(self, header_hash: bytes, *, gateway: str, block: int, now_ms: int) -> dict[str, Any]:
        """A JSON-able submission for ``header_hash``; no network."""
        ...

    def submit(self, submission: dict[str, Any]) -> dict[str, Any]:
        """Send it (idempotent); returns the submission, possibly updated. Raises LedgerUnavailable."""
        ...

    def lookup(self, submission: dict[str, Any], *, now_ms: int) -> AnchorStatus:
        """Where the submission stands. Raises LedgerUnavailable."""
        ...

    def close(self) -> None: ...
