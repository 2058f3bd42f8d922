"""What ``traceseal status`` and /metrics show about forwarding, read from the journal alone.

Over a plain SQLite connection (the status command's read-only journal, a metrics scrape's
own connection), so an operator sees the backlog even while the gateway is down. Whether
the link is up is the forwarder's to say; it records each change in ``meta`` so the
status command can show it too (``since_ms`` tells how stale that is after a crash).
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from gateway.journal import FORWARD_STREAMS

STREAMS = FORWARD_STREAMS  # the journal keeps one cursor row per stream
LINK_META = "upstream_link"

# stream -> (table, cursor column, extra WHERE, time column for lag)
_SOURCES = {
    "records": ("records", "seq", "", "time_ms"),
    "alarms": ("records", "seq", "type = 'alarm' AND ", "time_ms"),
    "blocks": ("blocks", "block", "", "sealed_ms"),
    "anchors": ("anchors", "block", "", "time_ms"),
}


def _has_table(db: sqlite3.Connection, name: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchone() is not None


def upstream_stats(db: sqlite3.Connection, now_ms: int) -> dict[str, Any] | None:
    """``{"enabled", "connected", "since_ms", "error", "streams": {stream: {sent, archived,
    backlog, unarchived, lag_s}}}``; None when the forwarder never ran on this journal.

    ``backlog``: items not yet PUBACKed by the upstream broker; ``unarchived``: items the
    archive has not acknowledged; ``lag_s``: age of the oldest item not yet sent (0: none).
    The alarms stream's ``archived`` is the records cursor: the archive acknowledges
    records by seq, whichever stream brought them.
    """
    if not _has_table(db, "forward_state"):
        return None
    cur = {s: (a, b) for s, a, b in db.execute("SELECT stream, sent, archived FROM forward_state")}
    meta = dict(db.execute("SELECT k, v FROM meta WHERE k IN ('upstream_enabled', ?)", (LINK_META,)).fetchall())
    if not cur and "upstream_enabled" not in meta:
        return None
    link = json.loads(meta.get(LINK_META) or "{}")
    streams: dict[str, Any] = {}
    for s in STREAMS:
        table, col, where, tcol = _SOURCES[s]
        sent, archived = cur.get(s, (-1, -1))
        if s == "alarms":
            archived = cur.get("records", (-1, -1))[1]
        backlog, oldest = db.execute(f"SELECT COUNT(*), MIN({tcol}) FROM {table} WHERE {where}{col} > ?",
                                     (sent,)).fetchone()
        (unarchived,) = db.execute(f"SELECT COUNT(*) FROM {table} WHERE {where}{col} > ?", (archived,)).fetchone()
        streams[s] = {"sent": sent, "archived": archived, "backlog": int(backlog), "unarchived": int(unarchived),
                      "lag_s": 0.0 if oldest is None else max(0.0, (now_ms - int(oldest)) / 1000)}
    return {"enabled": meta.get("upstream_enabled") == "1", "connected": bool(link.get("connected")),
            "since_ms": link.get("since_ms"), "error": str(link.get("error", "")), "streams": streams}
