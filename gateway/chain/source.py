"""``BundleSource``: everything export asks of where the records live, and nothing more.

Two things implement it, structurally: the gateway's ``Journal`` and the archive's
``ArchiveView`` (one gateway's verified rows in the archive). So an archive export is the
gateway's own export code over the archive's rows, and export never reaches into either
one's database: what it may ask is exactly this list.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from gateway.journal import BlockRow, RecordRow


class BundleSource(Protocol):
    @property
    def path(self) -> Path:
        """Named in export errors (the journal file, or ``archive:<gateway>``)."""

    def identity(self) -> tuple[str, str] | None:
        """(gateway id, first public key); None when the source has none yet."""

    def last_block(self) -> BlockRow | None: ...
    def block(self, n: int) -> BlockRow | None: ...
    def block_of_seq(self, seq: int) -> BlockRow | None: ...
    def blocks_between(self, lo: int, hi: int) -> Iterator[BlockRow]: ...

    def blocks_overlapping(self, from_ms: int, to_ms: int) -> tuple[int, int] | None:
        """(lowest, highest) block whose time span overlaps [from_ms, to_ms]."""

    def block_after(self, t_ms: int) -> int | None: ...
    def block_before(self, t_ms: int) -> int | None: ...
    def records_range(self, first: int, last: int) -> Sequence[RecordRow]: ...
    def has_record(self, seq: int) -> bool: ...
    def sensor_seqs(self, sensor: str, from_ms: int, to_ms: int, max_seq: int) -> Sequence[int]: ...
    def latest_anchor(self) -> tuple[int, dict[str, Any], int] | None: ...
    def anchor_covering(self, block: int) -> tuple[int, dict[str, Any], int] | None: ...

    def key_rotations(self) -> list[tuple[int, int, str, str]]:
        """(record seq, last block of the old key, old key, new key), oldest first."""

    def pruned_through(self) -> int:
        """Highest block whose records are gone (-1: nothing pruned; the archive: always -1)."""

    def pruned_note(self, seq: int) -> str | None:
        """Why ``seq`` is gone, or None if it was not pruned."""

    def horizon(self) -> dict[str, Any] | None:
        """Where the kept records start (``gateway.journal.pruning.horizon``); None: nothing pruned."""
