"""Retention: delete the records of old, anchored blocks so the journal's disk stays bounded.

The rule (issue 7, and issue 10 for the upstream): a block's records may go only when

1. the block's newest record is older than ``retention.days`` AND the anchor covering it
   was confirmed before that cutoff too (the ledger's time: a Pi that booted in the past
   cannot make fresh records look old by their own timestamps alone);
2. a CONFIRMED anchor covers it (an anchor at or after it: headers are hash-chained);
3. with forwarding enabled, the central archive acknowledged every record of it
   (``Journal.archived_seq()``, from the forwarder; ``None`` = no forwarding);
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

import logging
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from gateway.chain.settings import RetentionConfig
from gateway.core.clock import Clock
from gateway.journal import Journal, Readable, pruning
from gateway.journal.pruning import fmt_day

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


def range_error(h: dict[str, Any] | None, what: str, first_block: int) -> str | None:
    """A sentence when an export that needs every record from ``first_block`` on cannot have
    them; ``h``: the source's ``horizon()`` (None: nothing pruned)."""
    if h is None or first_block > h["last_block"]:
        return None
    upto = f" up to {fmt_day(h['last_time_ms'])}" if h["last_time_ms"] is not None else ""
    return (f"{what} reaches into blocks 0..{h['last_block']} (records{upto}, seq ≤ {h['last_seq']}), "
            f"pruned on {fmt_day(h['last_prune_ms'])} by retention (days={h['days']}); "
            "export what starts after that, or ask the archive")


def plan(journal: Journal, cfg: RetentionConfig, now_ms: int, *, floor: tuple[int, str] | None = None) -> Plan:
    """``floor``: (time, why) of the oldest record the station's state still needs (see
    ``Station._floor``); no block holding a record at or after it is pruned."""
    cutoff = now_ms - cfg.days * DAY_MS
    p = Plan(days=cfg.days, cutoff_ms=cutoff, archived_seq=journal.archived_seq())
    if cfg.days <= 0:
        p.reason = "retention.days = 0: records are kept forever"
        return p
    done = journal.pruned_through()
    last = journal.last_block()
    if last is None:
        p.reason = "no sealed block"
        return p
    # anchors by block, so "the earliest anchor at or after b" is one walk, not a query per block
    anchors = pruning.first_anchor_times(journal, done)
    ai = 0
    for block, first_seq, last_seq, last_time in pruning.block_spans(journal, done):
        while ai < len(anchors) and anchors[ai][0] < block:
            ai += 1
        why = ""
        if block >= last.block:
            why = "the newest block's records are always kept"
        elif ai == len(anchors):
            why = "not anchored yet (no confirmed anchor at or after it)"
        elif last_time >= cutoff:
            why = f"newer than the retention cutoff ({fmt_day(cutoff)})"
        elif floor is not None and last_time >= floor[0]:
            why = f"a restart needs it: {floor[1]} since {fmt_day(floor[0])}"
        elif anchors[ai][1] >= cutoff:
            why = f"its anchor (block {anchors[ai][0]}) was confirmed after the cutoff ({fmt_day(cutoff)})"
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
        with journal.transaction(f"pruning blocks {chunk[0][0]}..{chunk[-1][0]}") as tx:
            deleted = pruning.delete_span(tx, run_ms=now_ms, blocks=(chunk[0][0], chunk[-1][0]),
                                          seqs=(first_seq, last_seq), days=p.days, cutoff_ms=p.cutoff_ms,
                                          archived_seq=p.archived_seq)
        res.deleted += deleted
        res.transactions += 1
        i += len(chunk)
    res.freed_pages = pruning.reclaim(journal, vacuum_pages)
    return res


def status(src: Readable) -> dict[str, Any]:
    """For ``traceseal status`` and /metrics (an open journal, or a read-only connection to
    one): how much retention has removed, and where the kept journal starts."""
    h = pruning.horizon(src)
    if h is None:
        return {"pruned_records": 0, "pruned_blocks": 0, "pruned_through_block": -1, "pruned_through_seq": -1,
                "last_prune_ms": None, "kept_from_ms": None}
    return {"pruned_records": h["records"], "pruned_blocks": h["last_block"] + 1,
            "pruned_through_block": h["last_block"], "pruned_through_seq": h["last_seq"],
            "last_prune_ms": h["last_prune_ms"], "kept_from_ms": h["last_time_ms"], "days": h["days"]}


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
