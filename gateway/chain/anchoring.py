"""Anchor sealed block headers on the ledger, through a durable outbox.

One anchor per round covers the whole backlog: headers are hash-chained, so anchoring the
newest sealed header proves every earlier one existed before the ledger's time. A round:

1. resume any open outbox row (a crash may have left one ``prepared`` or ``submitted``);
2. otherwise, if blocks are sealed beyond what is anchored or in flight, ``prepare`` an
   anchor for the newest header and write it to the outbox BEFORE submitting it;
3. ``submit`` (idempotent), then ``lookup`` until confirmed; ``failed``/``dropped`` mark the
   row and the next round anchors the newest header afresh.

While the ledger is unreachable the worker backs off exponentially with jitter and the
ingest path is untouched: readings keep being journaled and sealed.
"""

from __future__ import annotations

import inspect
import logging
import random
import threading
from typing import Any

from gateway.core.clock import Clock
from gateway.journal import Journal
from ledger_client.errors import LedgerError, LedgerUnavailable
from ledger_client.ledger import Ledger
from ledger_client.retry import backoff_s

log = logging.getLogger("traceseal.anchor")


class Anchorer:
    def __init__(self, journal: Journal, ledger: Ledger, clock: Clock, gateway_id: str, *, poll_s: float = 1.0,
                 min_interval_s: int = 0, rng: random.Random | None = None) -> None:
        self.min_interval_ms = min_interval_s * 1000
        self.journal = journal
        self.ledger = ledger
        self.clock = clock
        self.gateway_id = gateway_id
        self.poll_s = poll_s
        self.rng = rng or random.Random()
        self.failures = 0
        self.connected = True
        self.last_error = ""
        self._wake = threading.Event()
        observe = getattr(ledger, "observe", None)
        if observe is not None:  # e.g. EVM nonces already spent by persisted submissions
            for row in journal.open_outbox():
                observe(row[4])

    def wake(self) -> None:
        """Called after an urgent block is sealed: anchor now rather than at the next poll."""
        self._wake.set()

    def _prepare(self, header_hash: bytes, block: int, now: int,
                 replaces: dict[str, Any] | None = None) -> dict[str, Any]:
        if replaces is not None and "replaces" in inspect.signature(self.ledger.prepare).parameters:
            return self.ledger.prepare(header_hash, gateway=self.gateway_id, block=block, now_ms=now,
                                       replaces=replaces)  # type: ignore[call-arg]
        return self.ledger.prepare(header_hash, gateway=self.gateway_id, block=block, now_ms=now)

    def step(self) -> str:
        """One round; returns what happened (for tests and logs). Raises LedgerUnavailable."""
        now = self.clock.now_ms()
        open_rows = self.journal.open_outbox()
        if not open_rows:
            last = self.journal.last_block()
            if last is None or last.block <= self.journal.covered_block():
                return "idle"
            if (self.min_interval_ms and now - self.journal.last_anchor_started_ms() < self.min_interval_ms
                    and not self.journal.urgent_after(self.journal.covered_block())):
                return "waiting"  # cost control: the next round covers everything sealed meanwhile
            sub = self._prepare(bytes(last.hash), last.block, now)
            self.journal.add_outbox(last.block, bytes(last.hash), self.ledger.kind, sub, now)
            open_rows = self.journal.open_outbox()
        oid, block, hh, kind, sub, state, _ = open_rows[-1]
        for stale in open_rows[:-1]:  # an older open row is superseded by the newest anchor
            self.journal.update_outbox(stale[0], state="dropped", now_ms=now, reason="superseded")
        last = self.journal.last_block()
        if state == "prepared" and last is not None and last.block > block:
            # Never confirmed as sent (the ledger was down): anchor the newest header instead,
            # so a backlog of any length costs one anchor. The ledger gets the old submission
            # so it can reuse what must not be spent twice (an EVM nonce).
            new = self._prepare(bytes(last.hash), last.block, now, replaces=sub)
            self.journal.update_outbox(oid, state="dropped", now_ms=now, reason="superseded before submission")
            oid = self.journal.add_outbox(last.block, bytes(last.hash), self.ledger.kind, new, now)
            block, hh, sub = last.block, bytes(last.hash), new
        if state == "prepared":
            sub = self.ledger.submit(sub)
            self.journal.update_outbox(oid, state="submitted", now_ms=now, submission=sub, attempt=True)
        st = self.ledger.lookup(sub, now_ms=now)
        if st.state == "confirmed" and st.anchor is not None and st.time_ms is not None:
            self.journal.confirm_anchor(oid, block, hh, kind, st.anchor, st.time_ms, now)
            log.info("anchored block %d on %s at %d", block, kind, st.time_ms)
            return "confirmed"
        if st.state == "pending":
            if st.replacement is not None:
                # Persist the replacement before it leaves the box: after a crash we resubmit
                # these exact bytes (same nonce) instead of creating another anchor.
                self.journal.update_outbox(oid, state="prepared", now_ms=now, submission=st.replacement,
                                           reason="replacement (fee bump)")
                new = self.ledger.submit(st.replacement)
                self.journal.update_outbox(oid, state="submitted", now_ms=now, submission=new, attempt=True,
                                           reason="replaced")
                return "replaced"
            return "pending"
        self.journal.update_outbox(oid, state=st.state, now_ms=now, reason=st.reason)
        log.warning("anchor for block %d %s: %s; will anchor afresh", block, st.state, st.reason)
        return st.state

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            delay = self.poll_s
            try:
                result = self.step()
                self.failures = 0
                self.connected = True
                if result in ("confirmed", "failed", "dropped", "replaced"):
                    delay = 0.05  # something changed: look again soon
            except LedgerUnavailable as exc:
                self.failures += 1
                self.connected = False
                self.last_error = str(exc)
                delay = backoff_s(self.failures, self.rng, base=self.poll_s)
                log.warning("ledger unavailable (%s); retry in %.1fs", exc, delay)
            except LedgerError as exc:  # e.g. a node's reply out of range (BadNodeReply): one line, retry later
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                delay = backoff_s(self.failures, self.rng, base=self.poll_s)
                log.warning("anchoring error (%s); retry in %.1fs", self.last_error, delay)
            except Exception as exc:  # never let the anchor thread die silently
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                delay = backoff_s(self.failures, self.rng, base=self.poll_s)
                log.exception("anchoring error; retry in %.1fs", delay)
            self._wake.wait(delay)
            self._wake.clear()

    def status(self) -> dict[str, Any]:
        return {"connected": self.connected, "failures": self.failures, "last_error": self.last_error}
