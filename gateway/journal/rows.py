"""The journal's rows as Python values: what ingest writes, and what export, forwarding and
the archive read back (the archive's store returns the same types, so export runs on both).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# The columns of a BlockRow, in its field order (every block query selects exactly these).
BLOCK_COLS = "block, first_seq, last_seq, header, sig, hash, sealed_ms"
RECORD_COLS = "seq, time_ms, type, sensor, kind, digest, body, sig"


@dataclass(frozen=True, slots=True)
class RecordRow:
    seq: int
    time_ms: int
    type: str
    sensor: str | None
    kind: str | None
    digest: bytes | None
    body: bytes
    sig: bytes


@dataclass(frozen=True, slots=True)
class QuarantineRow:
    time_ms: int
    source: str
    reason: str
    detail: str
    raw: bytes
    raw_len: int


@dataclass(frozen=True, slots=True)
class BlockRow:
    block: int
    first_seq: int
    last_seq: int
    header: bytes
    sig: bytes
    hash: bytes
    sealed_ms: int

    @property
    def header_obj(self) -> dict[str, Any]:
        header: dict[str, Any] = json.loads(self.header)
        return header
