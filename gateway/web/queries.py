"""Read-only journal answers for the dashboard and /metrics, each cheap on a year of data.

The queries are the journal's (``gateway.journal.reads``: indexed, nothing counts the
records table); this module shapes them for the pages: the last value of a probe, a series
thinned for a chart, the disk. Each caller opens its own read-only connection
(``connect``), so the web threads share nothing with the writer and with each other.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from gateway.journal import Readable
from gateway.journal.reads import journal_stats, newest_readings, open_readonly, readings_between

connect = open_readonly  # the web's name for it: ``with queries.connect(path) as db``

__all__ = ["connect", "disk", "journal_stats", "latest", "series"]


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


def latest(db: Readable, sensor: str, kind: str = "temperature") -> tuple[int, int] | None:
    """(time_ms, value) of the sensor's last reading of ``kind`` (among its newest five)."""
    for t, body in newest_readings(db, sensor, kind, 5):
        v = _value(body)
        if v is not None:
            return t, v
    return None


def series(db: Readable, sensor: str, from_ms: int, to_ms: int, *, kind: str = "temperature",
           max_points: int = 600) -> list[tuple[int, int]]:
    """Readings in [from_ms, to_ms], thinned to about ``max_points`` keeping each bucket's
    minimum AND maximum: averaging would hide the short spike an auditor asks about."""
    rows = [(t, v) for t, b in readings_between(db, sensor, from_ms, to_ms, kind) if (v := _value(b)) is not None]
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
