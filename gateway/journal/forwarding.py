"""The journal's side of upstream forwarding (gateway/forward, docs/upstream.md): the cursors,
what is still to send, and the backlog ``traceseal status`` and /metrics show.

The forwarder reads through ``Journal`` (its methods call these); the status command and a
metrics scrape read the backlog over their own read-only connection (``upstream_backlog``),
so an operator sees it even while the gateway is down.
"""

from __future__ import annotations

import sqlite3

from gateway.journal.rows import BLOCK_COLS, BlockRow
from gateway.journal.schema import FORWARD_STREAMS, Readable, connection, has_table

# The meta row where the forwarder records each change of its link (connected, since, error).
LINK_META = "upstream_link"

# stream -> (table, cursor column, extra WHERE, time column for lag)
_SOURCES = {
    "records": ("records", "seq", "", "time_ms"),
    "alarms": ("records", "seq", "type = 'alarm' AND ", "time_ms"),
    "blocks": ("blocks", "block", "", "sealed_ms"),
    "anchors": ("anchors", "block", "", "time_ms"),
}


def cursors(db: sqlite3.Connection) -> dict[str, tuple[int, int]]:
    """stream -> (sent, archived); -1 = nothing yet."""
    have = {s: (a, b) for s, a, b in db.execute("SELECT stream, sent, archived FROM forward_state")}
    return {s: have.get(s, (-1, -1)) for s in FORWARD_STREAMS}


def save_cursors(tx: sqlite3.Connection, sent: dict[str, int], archived: dict[str, int]) -> None:
    """Inside the caller's transaction (``Journal.save_forward_cursors``)."""
    tx.executemany("INSERT INTO forward_state VALUES (?, ?, ?) "
                   "ON CONFLICT(stream) DO UPDATE SET sent=excluded.sent", [(s, v, -1) for s, v in sent.items()])
    tx.executemany("INSERT INTO forward_state VALUES (?, -1, ?) "
                   "ON CONFLICT(stream) DO UPDATE SET archived=excluded.archived", list(archived.items()))


def archived_records(db: sqlite3.Connection) -> int:
    """The archive's acknowledged record seq (-1: nothing yet)."""
    row = db.execute("SELECT archived FROM forward_state WHERE stream='records'").fetchone()
    return -1 if row is None else int(row[0])


def records_after(db: sqlite3.Connection, after: int, limit: int, *,
                  alarms_only: bool = False) -> list[tuple[int, int, bytes, bytes]]:
    """(seq, time_ms, body, sig) after ``after`` in seq order."""
    where = "type = 'alarm' AND seq > ?" if alarms_only else "seq > ?"
    return [(s, t, bytes(b), bytes(g)) for s, t, b, g in db.execute(
        f"SELECT seq, time_ms, body, sig FROM records WHERE {where} ORDER BY seq LIMIT ?", (after, limit))]


def blocks_after(db: sqlite3.Connection, after: int, upto_seq: int, limit: int) -> list[BlockRow]:
    """Blocks after ``after`` whose records all lie at or below ``upto_seq``."""
    return [BlockRow(*r) for r in db.execute(
        f"SELECT {BLOCK_COLS} FROM blocks WHERE block > ? AND last_seq <= ? ORDER BY block LIMIT ?",
        (after, upto_seq, limit))]


def anchors_after(db: sqlite3.Connection, after: int, upto_block: int,
                  limit: int) -> list[tuple[int, bytes, str, str, int]]:
    """(block, header_hash, kind, anchor JSON text, time_ms) of anchored blocks in
    (``after``, ``upto_block``], every anchor of a block together."""
    return [(b, bytes(h), k, a, t) for b, h, k, a, t in db.execute(
        "SELECT block, header_hash, kind, anchor, time_ms FROM anchors WHERE block > ? AND block <= ? "
        "AND block <= (SELECT MAX(block) FROM (SELECT DISTINCT block FROM anchors WHERE block > ? "
        "AND block <= ? ORDER BY block LIMIT ?)) ORDER BY block, id", (after, upto_block, after, upto_block, limit))]


def upstream_backlog(src: Readable) -> tuple[dict[str, tuple[int, int]], dict[str, str],
                                             dict[str, tuple[int, int | None, int]]] | None:
    """(cursors as stored, the forwarding meta rows, stream -> (backlog, oldest unsent time,
    unarchived)) for ``gateway.forward.state.upstream_stats``; None when the forwarder never
    ran on this journal. The alarms stream's ``archived`` is the records cursor: the archive
    acknowledges records by seq, whichever stream brought them."""
    db = connection(src)
    if not has_table(db, "forward_state"):
        return None
    cur = {str(s): (int(a), int(b)) for s, a, b in db.execute("SELECT stream, sent, archived FROM forward_state")}
    meta = {str(k): str(v) for k, v in db.execute("SELECT k, v FROM meta WHERE k IN ('upstream_enabled', ?)",
                                                  (LINK_META,)).fetchall()}
    if not cur and "upstream_enabled" not in meta:
        return None
    counts: dict[str, tuple[int, int | None, int]] = {}
    for s in FORWARD_STREAMS:
        table, col, where, tcol = _SOURCES[s]
        sent, archived = cur.get(s, (-1, -1))
        if s == "alarms":
            archived = cur.get("records", (-1, -1))[1]
        backlog, oldest = db.execute(f"SELECT COUNT(*), MIN({tcol}) FROM {table} WHERE {where}{col} > ?",
                                     (sent,)).fetchone()
        (unarchived,) = db.execute(f"SELECT COUNT(*) FROM {table} WHERE {where}{col} > ?", (archived,)).fetchone()
        counts[s] = (int(backlog), None if oldest is None else int(oldest), int(unarchived))
    return cur, meta, counts
