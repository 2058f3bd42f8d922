"""Read-only journal queries for the dashboard and /metrics, each cheap on a year of data.

Every query uses an index or a small table: records by primary key (seq) or by
``(sensor, time_ms)``; blocks, anchors, outbox and counters are small. Nothing counts the
records table (``COUNT(*)`` over millions of rows on a Pi takes seconds): seqs are dense, so
"not yet sealed" is ``last seq - last sealed seq``. Each call opens its own read-only
connection, so the web threads share nothing with the writer and with each other.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def connect(path: Path, busy_timeout_ms: int = 2000) -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
    try:
        db.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        yield db
    finally:
        db.close()


def journal_stats(db: sqlite3.Connection) -> dict[str, Any]:
    """Sealing and anchoring backlog, quarantine and pipeline counters."""
    q = db.execute
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


def disk(path: Path) -> dict[str, int]:
    """Free space where the journal lives (the gateway stops acknowledging when it is full)."""
    u = shutil.disk_usage(path.parent if path.suffix else path)
    return {"free_bytes": int(u.free), "total_bytes": int(u.total)}


def _value(body: bytes) -> int | None:
    try:
        v = json.loads(body).get("value")
    except (ValueError, AttributeError):
        return None
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def latest(db: sqlite3.Connection, sensor: str, kind: str = "temperature") -> tuple[int, int] | None:
    """(time_ms, value) of the sensor's last reading of ``kind``."""
    for t, body in db.execute("SELECT time_ms, body FROM records WHERE sensor=? AND kind=? AND type='reading' "
                              "ORDER BY time_ms DESC, seq DESC LIMIT 5", (sensor, kind)):
        v = _value(body)
        if v is not None:
            return int(t), v
    return None


def series(db: sqlite3.Connection, sensor: str, from_ms: int, to_ms: int, *, kind: str = "temperature",
           max_points: int = 600) -> list[tuple[int, int]]:
    """Readings in [from_ms, to_ms], thinned to about ``max_points`` keeping each bucket's
    minimum AND maximum: averaging would hide the short spike an auditor asks about."""
    rows = [(int(t), v) for t, b in db.execute(
        "SELECT time_ms, body FROM records WHERE sensor=? AND time_ms BETWEEN ? AND ? AND kind=? AND type='reading' "
        "ORDER BY time_ms, seq", (sensor, from_ms, to_ms, kind)) if (v := _value(b)) is not None]
    if len(rows) <= max_points:
        return rows
    buckets = max(1, max_points // 2)
    width = max(1, (to_ms - from_ms + 1) // buckets + 1)
    out: list[tuple[int, int]] = []
    cur: list[tuple[int, int]] = []
    cur_b: int | None = None

    def flush() -> None:
        if cur:
            lo, hi = min(cur, key=lambda p: p[1]), max(cur, key=lambda p: p[1])
            out.extend(sorted({lo, hi}))

    for p in rows:
        b = (p[0] - from_ms) // width
        if b != cur_b:
            flush()
            cur, cur_b = [], b
        cur.append(p)
    flush()
    return out
