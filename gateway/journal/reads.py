"""Read-only questions about a journal for the dashboard, /metrics, ``doctor`` and test kits,
each cheap on a year of data.

Every query uses an index or a small table: records by primary key (seq) or by
``(sensor, time_ms)``; blocks, anchors, outbox and counters are small. Nothing counts the
records table (``COUNT(*)`` over millions of rows on a Pi takes seconds): seqs are dense, so
"not yet sealed" is ``last seq - last sealed seq``. The web opens its own read-only
connection per call (``open_readonly``), so its threads share nothing with the writer and
with each other. (``count_records`` and ``record_bodies`` do scan: they are for test kits.)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gateway.journal.schema import Readable, connection, has_table


@contextmanager
def open_readonly(path: Path, busy_timeout_ms: int = 2000) -> Iterator[sqlite3.Connection]:
    """A read-only connection that can never create or change the file, closed on exit."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
    try:
        db.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        yield db
    finally:
        db.close()


def journal_stats(src: Readable) -> dict[str, Any]:
    """Sealing and anchoring backlog, quarantine and pipeline counters."""
    q = connection(src).execute
    (max_seq,) = q("SELECT MAX(seq) FROM records").fetchone()
    last_seq = -1 if max_seq is None else int(max_seq)
    blk = q("SELECT block, last_seq FROM blocks ORDER BY block DESC LIMIT 1").fetchone()
    last_block, sealed_to = (-1, -1) if blk is None else (int(blk[0]), int(blk[1]))
    anchored, last_anchor_ms, anchors = q("SELECT MAX(block), MAX(time_ms), COUNT(*) FROM anchors").fetchone()
    anchored_block = -1 if anchored is None else int(anchored)
    outbox = dict(q("SELECT state, COUNT(*) FROM outbox GROUP BY state").fetchall())
    return {
        "next_seq": last_seq + 1,
        "blocks": last_block + 1,
        "unsealed_records": max(0, last_seq - sealed_to),
        "anchored_block": anchored_block,
        "unanchored_blocks": max(0, last_block - anchored_block),
        "last_anchor_ms": last_anchor_ms,
        "anchors_confirmed": int(anchors),
        "outbox": {s: int(outbox.get(s, 0)) for s in ("prepared", "submitted", "confirmed", "failed", "dropped")},
        "anchors_pending": int(outbox.get("prepared", 0)) + int(outbox.get("submitted", 0)),
        "quarantine": {str(r): int(n) for r, n in q("SELECT reason, n FROM quarantine_counts ORDER BY reason")},
        "counters": {str(k): int(n) for k, n in q("SELECT name, n FROM counters ORDER BY name")},
    }


def newest_readings(src: Readable, sensor: str, kind: str, limit: int = 5) -> Iterator[tuple[int, bytes]]:
    """(time_ms, body) of the sensor's newest readings of ``kind``, newest first."""
    for t, body in connection(src).execute(
            "SELECT time_ms, body FROM records WHERE sensor=? AND kind=? AND type='reading' "
            "ORDER BY time_ms DESC, seq DESC LIMIT ?", (sensor, kind, limit)):
        yield int(t), body


def readings_between(src: Readable, sensor: str, from_ms: int, to_ms: int, kind: str) -> Iterator[tuple[int, bytes]]:
    """(time_ms, body) of the sensor's readings of ``kind`` in [from_ms, to_ms], in time order."""
    for t, body in connection(src).execute(
            "SELECT time_ms, body FROM records WHERE sensor=? AND time_ms BETWEEN ? AND ? AND kind=? "
            "AND type='reading' ORDER BY time_ms, seq", (sensor, from_ms, to_ms, kind)):
        yield int(t), body


def max_seq(src: Readable) -> int | None:
    """The newest record's seq (None: no record yet)."""
    (top,) = connection(src).execute("SELECT MAX(seq) FROM records").fetchone()
    return None if top is None else int(top)


def type_counts(src: Readable, lo: int, hi: int) -> Iterator[tuple[str, int]]:
    """(record type, how many) among seqs [lo, hi] (by primary key)."""
    for typ, n in connection(src).execute("SELECT type, COUNT(*) FROM records WHERE seq BETWEEN ? AND ? "
                                          "GROUP BY type", (lo, hi)):
        yield str(typ), int(n)


def records_of_types(src: Readable, lo: int, hi: int, types: tuple[str, ...]) -> Iterator[tuple[int, int, str, bytes]]:
    """(seq, time_ms, type, body) of the records of ``types`` among seqs [lo, hi], in seq order."""
    marks = ",".join("?" * len(types))
    for seq, t, typ, body in connection(src).execute(
            f"SELECT seq, time_ms, type, body FROM records WHERE seq BETWEEN ? AND ? "
            f"AND type IN ({marks}) ORDER BY seq", (lo, hi, *types)):
        yield int(seq), int(t), str(typ), body


def identity(path: Path) -> dict[str, str]:
    """The journal's ``meta`` rows, with ``public_key`` the key that signs now (after a
    ``rotate-key``, the newest rotation's), for ``doctor``: does this journal belong to this
    config's gateway and key? Raises sqlite3.Error when the file cannot be read."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        meta = {str(k): str(v) for k, v in db.execute("SELECT k, v FROM meta")}
        if has_table(db, "key_rotations"):
            rot = db.execute("SELECT new_key FROM key_rotations ORDER BY seq DESC LIMIT 1").fetchone()
            if rot is not None:
                meta["public_key"] = str(rot[0])
    finally:
        db.close()
    return meta


def count_records(src: Readable, *, type: str | None = None, sensor: str | None = None) -> int:
    """How many records there are of ``type`` (and ``sensor``): a scan, for test kits."""
    where = " AND ".join(f"{c}=?" for c, v in (("type", type), ("sensor", sensor)) if v is not None) or "1=1"
    args = [v for v in (type, sensor) if v is not None]
    return int(connection(src).execute(f"SELECT COUNT(*) FROM records WHERE {where}", args).fetchone()[0])


def record_bodies(src: Readable, type: str) -> list[bytes]:
    """Every record body of ``type``, in seq order: a scan, for test kits."""
    return [bytes(b) for (b,) in connection(src).execute("SELECT body FROM records WHERE type=? ORDER BY seq", (type,))]
