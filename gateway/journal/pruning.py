"""The journal's side of retention (gateway/chain/retention.py has the policy): what was
pruned, the blocks and anchors a plan walks, the guarded delete, and giving pages back.

Pruning is always a prefix of whole blocks ("blocks 0..B have no records"), logged in the
append-only ``pruned`` table, so every question here is one small query. A journal opened
read-only from before retention existed has no ``pruned`` table: nothing was pruned.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from typing import Any

from gateway.journal.schema import Readable, connection, has_table


def fmt_day(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def pruned_through(src: Readable) -> int:
    """Highest block whose records are gone (-1: nothing pruned)."""
    db = connection(src)
    if not has_table(db, "pruned"):
        return -1
    row = db.execute("SELECT MAX(last_block) FROM pruned").fetchone()
    return -1 if row[0] is None else int(row[0])


def pruned_note(src: Readable, seq: int) -> str | None:
    """A sentence for a user who asked for ``seq``, or None if it was not pruned."""
    db = connection(src)
    if not has_table(db, "pruned"):
        return None
    row = db.execute("SELECT time_ms, days FROM pruned WHERE ? BETWEEN first_seq AND last_seq ORDER BY id LIMIT 1",
                     (seq,)).fetchone()
    if row is None:
        return None
    return (f"record seq {seq} was pruned on {fmt_day(row[0])} by retention (days={row[1]}); "
            "ask the archive for it")


def horizon(src: Readable) -> dict[str, Any] | None:
    """Where the kept journal starts, for error messages and status (None: nothing pruned)."""
    db = connection(src)
    if not has_table(db, "pruned"):
        return None
    row = db.execute("SELECT MAX(last_block), MAX(last_seq), MAX(time_ms), COUNT(DISTINCT run_ms), SUM(records) "
                     "FROM pruned").fetchone()
    if row[0] is None:
        return None
    last_block, last_seq, last_ms, runs, records = (int(x) for x in row)
    (days,) = db.execute("SELECT days FROM pruned ORDER BY id DESC LIMIT 1").fetchone()
    t = db.execute("SELECT last_time_ms FROM blocks WHERE block=?", (last_block,)).fetchone()
    return {"last_block": last_block, "last_seq": last_seq, "last_time_ms": None if t is None else int(t[0]),
            "last_prune_ms": last_ms, "runs": runs, "records": records, "days": int(days)}


def first_anchor_times(src: Readable, after_block: int) -> list[tuple[int, int]]:
    """(block, time of its first confirmed anchor) for anchored blocks after ``after_block``,
    ascending: "the earliest anchor at or after b" is then one walk, not a query per block."""
    return [(int(b), int(t)) for b, t in connection(src).execute(
        "SELECT block, MIN(time_ms) FROM anchors WHERE block > ? GROUP BY block ORDER BY block", (after_block,))]


def block_spans(src: Readable, after_block: int) -> Iterator[tuple[int, int, int, int]]:
    """(block, first_seq, last_seq, last_time_ms) of every block after ``after_block``, ascending."""
    for block, first_seq, last_seq, last_time in connection(src).execute(
            "SELECT block, first_seq, last_seq, last_time_ms FROM blocks WHERE block > ? ORDER BY block",
            (after_block,)):
        yield int(block), int(first_seq), int(last_seq), int(last_time)


def delete_span(tx: sqlite3.Connection, *, run_ms: int, blocks: tuple[int, int], seqs: tuple[int, int],
                days: int, cutoff_ms: int, archived_seq: int | None) -> int:
    """Delete the records of ``blocks`` (whole blocks: ``seqs`` is their first and last seq)
    and log it, inside the caller's transaction (``Journal.transaction``); returns how many
    records went. The ``prune_guard`` row is what lets the DELETE past its trigger."""
    tx.execute("INSERT INTO prune_guard VALUES (?)", (run_ms,))
    cur = tx.execute("DELETE FROM records WHERE seq BETWEEN ? AND ?", seqs)
    tx.execute("DELETE FROM prune_guard")
    tx.execute("INSERT INTO pruned (run_ms, time_ms, first_block, last_block, first_seq, last_seq, records, "
               "days, cutoff_ms, archived_seq) VALUES (?,?,?,?,?,?,?,?,?,?)",
               (run_ms, run_ms, blocks[0], blocks[1], seqs[0], seqs[1], cur.rowcount, days, cutoff_ms, archived_seq))
    return cur.rowcount


def reclaim(src: Readable, pages: int) -> int:
    """Give free pages back to the filesystem when the journal was created with
    ``auto_vacuum=INCREMENTAL``; otherwise SQLite reuses them for new records (the file
    stops growing, it does not shrink). A few pages per transaction: the writer waits."""
    db = connection(src)
    (mode,) = db.execute("PRAGMA auto_vacuum").fetchone()
    if mode != 2:
        return 0
    freed = 0
    while True:
        (free,) = db.execute("PRAGMA freelist_count").fetchone()
        if free == 0:
            return freed
        db.execute(f"PRAGMA incremental_vacuum({min(int(pages), int(free))})").fetchall()
        (left,) = db.execute("PRAGMA freelist_count").fetchone()
        if left >= free:
            return freed
        freed += free - left


def log_rows(src: Readable, limit: int = 20) -> list[dict[str, Any]]:
    """The prune log by run: what went, when, under which retention."""
    return [{"run_ms": r[0], "first_block": r[1], "last_block": r[2], "first_seq": r[3], "last_seq": r[4],
             "records": r[5], "transactions": r[6], "days": r[7], "cutoff_ms": r[8]}
            for r in connection(src).execute(
                "SELECT run_ms, MIN(first_block), MAX(last_block), MIN(first_seq), MAX(last_seq), SUM(records), "
                "COUNT(*), MAX(days), MAX(cutoff_ms) FROM pruned GROUP BY run_ms ORDER BY run_ms DESC LIMIT ?",
                (limit,))]
