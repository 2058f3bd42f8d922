"""Retention: delete the records of old, anchored blocks so the journal's disk stays bounded.

The rule (issue 7, and issue 10 for the upstream): a block's records may go only when

1. the block's newest record is older than ``retention.days`` AND the anchor covering it
   was confirmed before that cutoff too (the ledger's time: a Pi that booted in the past
   cannot make fresh records look old by their own timestamps alone);
2. a CONFIRMED anchor covers it (an anchor at or after it: headers are hash-chained);
3. with forwarding enabled, the central archive acknowledged every record of it
   (``Journal.archived_seq()``, from the forwarder; absent or ``None`` = no forwarding);
4. it is not the newest sealed block (``next_seq`` is ``MAX(seq)+1``: the newest block's
   records keep the sequence from ever going back).

Pruning walks blocks in order and stops at the first that fails a condition, so what is
pruned is always a prefix of whole blocks: "blocks 0..B have no records". That makes every
later question cheap and exact (an export, the station's replay) and it is conservative: a
block stamped in the future by a wrong clock holds back everything after it.

What stays forever: block headers (the chain still verifies end to end, and a bundle of
kept records proves its chain from kept headers), anchors, sensor counters (anti-replay),
quarantine counts, and the ``pruned`` log of what went. Deletes run in transactions of
about ``batch`` records, always whole blocks, each one logging itself, so a crash at any
moment leaves a journal that is consistent and says exactly how far pruning got.
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from gateway.core.clock import Clock
from gateway.chain.settings import RetentionConfig
from gateway.journal import Journal

log = logging.getLogger("traceseal.retention")

DAY_MS = 86_400_000


@dataclass
class Plan:
    """What one run would delete, and why it stops where it stops."""

    days: int
    cutoff_ms: int
    archived_seq: int | None
    blocks: list[tuple[int, int, int]] = field(default_factory=list)  # (block, first_seq, last_seq)
    records: int = 0
    stopped_at: int | None = None  # the first block kept
    reason: str = ""  # why that block is kept

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("blocks")
        d["first_block"] = self.blocks[0][0] if self.blocks else None
        d["last_block"] = self.blocks[-1][0] if self.blocks else None
        d["first_seq"] = self.blocks[0][1] if self.blocks else None
        d["last_seq"] = self.blocks[-1][2] if self.blocks else None
        return d


def archived_seq(journal: Journal) -> int | None:
    """The archive's acknowledged seq, or None when the gateway does not forward."""
    fn = getattr(journal, "archived_seq", None)
    return None if fn is None else fn()


def _never_pruned(db: sqlite3.Connection) -> bool:
    """A journal opened read-only from before retention existed has no ``pruned`` table."""
    return db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='pruned'").fetchone() is None


def pruned_block(db: sqlite3.Connection | None) -> int:
    """Highest block whose records are gone (-1: nothing pruned)."""
    if db is None or _never_pruned(db):  # None: a journal-like source with no connection (the archive)
        return -1
    row = db.execute("SELECT MAX(last_block) FROM pruned").fetchone()
    return -1 if row[0] is None else int(row[0])


def _fmt_day(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def pruned_error(db: sqlite3.Connection | None, seq: int) -> str | None:
    """A sentence for a user who asked for ``seq``, or None if it was not pruned."""
    if db is None or _never_pruned(db):
        return None
    row = db.execute("SELECT time_ms, days FROM pruned WHERE ? BETWEEN first_seq AND last_seq ORDER BY id LIMIT 1",
                     (seq,)).fetchone()
    if row is None:
        return None
    return (f"record seq {seq} was pruned on {_fmt_day(row[0])} by retention (days={row[1]}); "
            "ask the archive for it")


def horizon(db: sqlite3.Connection | None) -> dict[str, Any] | None:
    """Where the kept journal starts, for error messages and status (None: nothing pruned)."""
    if db is None or _never_pruned(db):
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


def range_error(db: sqlite3.Connection | None, what: str, first_block: int) -> str | None:
    """A sentence when an export that needs every record from ``first_block`` on cannot have them."""
    h = horizon(db)
    if h is None or first_block > h["last_block"]:
        return None
    upto = f" up to {_fmt_day(h['last_time_ms'])}" if h["last_time_ms"] is not None else ""
    return (f"{what} reaches into blocks 0..{h['last_block']} (records{upto}, seq ≤ {h['last_seq']}), "
            f"pruned on {_fmt_day(h['last_prune_ms'])} by retention (days={h['days']}); "
            "export what starts after that, or ask the archive")


def plan(journal: Journal, cfg: RetentionConfig, now_ms: int, *, floor: tuple[int, str] | None = None) -> Plan:
    """``floor``: (time, why) of the oldest record the station's state still needs (see
    ``Station._floor``); no block holding a record at or after it is pruned."""
    cutoff = now_ms - cfg.days * DAY_MS
    p = Plan(days=cfg.days, cutoff_ms=cutoff, archived_seq=archived_seq(journal))
    if cfg.days <= 0:
        p.reason = "retention.days = 0: records are kept forever"
        return p
    db = journal.db
    done = pruned_block(db)
    last = journal.last_block()
    if last is None:
        p.reason = "no sealed block"
        return p
    # anchors by block, so "the earliest anchor at or after b" is one walk, not a query per block
    anchors = [(int(b), int(t)) for b, t in db.execute(
        "SELECT block, MIN(time_ms) FROM anchors WHERE block > ? GROUP BY block ORDER BY block", (done,))]
    ai = 0
    for block, first_seq, last_seq, last_time in db.execute(
            "SELECT block, first_seq, last_seq, last_time_ms FROM blocks WHERE block > ? ORDER BY block", (done,)):
        while ai < len(anchors) and anchors[ai][0] < block:
            ai += 1
        why = ""
        if block >= last.block:
            why = "the newest block's records are always kept"
        elif ai == len(anchors):
            why = "not anchored yet (no confirmed anchor at or after it)"
        elif last_time >= cutoff:
            why = f"newer than the retention cutoff ({_fmt_day(cutoff)})"
        elif floor is not None and last_time >= floor[0]:
            why = f"a restart needs it: {floor[1]} since {_fmt_day(floor[0])}"
        elif anchors[ai][1] >= cutoff:
            why = f"its anchor (block {anchors[ai][0]}) was confirmed after the cutoff ({_fmt_day(cutoff)})"
        elif p.archived_seq is not None and last_seq > p.archived_seq:
            why = f"not yet acknowledged by the archive (archived up to seq {p.archived_seq})"
        if why:
            p.stopped_at, p.reason = block, why
            break
        p.blocks.append((int(block), int(first_seq), int(last_seq)))
        p.records += int(last_seq) - int(first_seq) + 1
    return p


@dataclass
class Result:
    plan: Plan
    deleted: int = 0
    transactions: int = 0
    freed_pages: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {**self.plan.as_dict(), "deleted": self.deleted, "transactions": self.transactions,
                "freed_pages": self.freed_pages}


def prune(journal: Journal, cfg: RetentionConfig, now_ms: int, *, dry_run: bool = False,
          stop: threading.Event | None = None, vacuum_pages: int = 1024,
          floor: tuple[int, str] | None = None) -> Result:
    """Delete what ``plan`` allows, in short transactions of whole blocks.

    Each transaction deletes about ``cfg.batch`` records (at least one whole block) and logs
    itself in ``pruned``; the ingest writer waits at most that long (busy_timeout). Safe to
    run on a stale plan: anchors, time and the archive's acknowledgement only ever grow.
    """
    p = plan(journal, cfg, now_ms, floor=floor)
    res = Result(p)
    if dry_run or not p.blocks:
        return res
    db = journal.db
    i = 0
    while i < len(p.blocks) and not (stop is not None and stop.is_set()):
        chunk = [p.blocks[i]]
        n = chunk[0][2] - chunk[0][1] + 1
        while i + len(chunk) < len(p.blocks):
            nxt = p.blocks[i + len(chunk)]
            if n + nxt[2] - nxt[1] + 1 > cfg.batch:
                break
            chunk.append(nxt)
            n += nxt[2] - nxt[1] + 1
        first_seq, last_seq = chunk[0][1], chunk[-1][2]
        with journal.transaction(f"pruning blocks {chunk[0][0]}..{chunk[-1][0]}"):
            db.execute("INSERT INTO prune_guard VALUES (?)", (now_ms,))
            cur = db.execute("DELETE FROM records WHERE seq BETWEEN ? AND ?", (first_seq, last_seq))
            db.execute("DELETE FROM prune_guard")
            db.execute("INSERT INTO pruned (run_ms, time_ms, first_block, last_block, first_seq, last_seq, records, "
                       "days, cutoff_ms, archived_seq) VALUES (?,?,?,?,?,?,?,?,?,?)",
                       (now_ms, now_ms, chunk[0][0], chunk[-1][0], first_seq, last_seq, cur.rowcount,
                        p.days, p.cutoff_ms, p.archived_seq))
        res.deleted += cur.rowcount
        res.transactions += 1
        i += len(chunk)
    res.freed_pages = _reclaim(db, vacuum_pages)
    return res


def _reclaim(db: sqlite3.Connection, pages: int) -> int:
    """Give free pages back to the filesystem when the journal was created with
    ``auto_vacuum=INCREMENTAL``; otherwise SQLite reuses them for new records (the file
    stops growing, it does not shrink). A few pages per transaction: the writer waits."""
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


def status(db: sqlite3.Connection) -> dict[str, Any]:
    """For ``traceseal status`` and /metrics: how much retention has removed, and where the kept journal starts."""
    h = horizon(db)
    if h is None:
        return {"pruned_records": 0, "pruned_blocks": 0, "pruned_through_block": -1, "pruned_through_seq": -1,
                "last_prune_ms": None, "kept_from_ms": None}
    return {"pruned_records": h["records"], "pruned_blocks": h["last_block"] + 1,
            "pruned_through_block": h["last_block"], "pruned_through_seq": h["last_seq"],
            "last_prune_ms": h["last_prune_ms"], "kept_from_ms": h["last_time_ms"], "days": h["days"]}


def log_rows(db: sqlite3.Connection, limit: int = 20) -> list[dict[str, Any]]:
    """The prune log by run: what went, when, under which retention."""
    return [{"run_ms": r[0], "first_block": r[1], "last_block": r[2], "first_seq": r[3], "last_seq": r[4],
             "records": r[5], "transactions": r[6], "days": r[7], "cutoff_ms": r[8]}
            for r in db.execute(
                "SELECT run_ms, MIN(first_block), MAX(last_block), MIN(first_seq), MAX(last_seq), SUM(records), "
                "COUNT(*), MAX(days), MAX(cutoff_ms) FROM pruned GROUP BY run_ms ORDER BY run_ms DESC LIMIT ?",
                (limit,))]


class Pruner:
    """The gateway's retention thread: its own connection, never the ingest writer's."""

    def __init__(self, journal: Journal, cfg: RetentionConfig, clock: Clock, station: Any = None) -> None:
        self.journal = journal
        self.cfg = cfg
        self.clock = clock
        self.station = station  # gateway.station.Station: its floor keeps what a restart needs
        self.last: dict[str, Any] = {}

    def step(self, stop: threading.Event | None = None) -> Result | None:
        if not self.clock.synced():
            # An unsynchronised clock (a Pi booted in the past, or a wrong one in the future)
            # must not decide what is old; nothing is lost by waiting.
            if self.last.get("skipped") != "clock not synchronised":  # once per wait, not every 10 s
                log.warning("retention: the clock is not NTP-synchronised; nothing is pruned until it is "
                            "(or run `traceseal prune --trust-clock`)")
            self.last = {"skipped": "clock not synchronised"}
            return None
        floor = None
        if self.station is not None:
            if not self.station.replayed:  # the writer has not rebuilt the state yet
                self.last = {"skipped": "station state not rebuilt yet"}
                return None
            floor = self.station.floor
        res = prune(self.journal, self.cfg, self.clock.now_ms(), stop=stop, floor=floor)
        self.last = res.as_dict()
        if res.deleted:
            log.info("retention pruned %d records of blocks %s..%s (days=%d)", res.deleted,
                     res.plan.blocks[0][0], res.plan.blocks[-1][0], self.cfg.days)
        return res

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            delay: float = self.cfg.interval_s
            try:
                if self.step(stop) is None:  # waiting for the replay or the clock: look again soon
                    delay = min(delay, 10.0)
            except Exception:  # never let the thread die silently; nothing is deleted by a failed run
                log.exception("retention run failed; retrying at the next interval")
            stop.wait(delay)
