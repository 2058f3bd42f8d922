"""The ingest pipeline, read top to bottom: bound → route → parse → admit → seal → journal.

``process`` takes a batch of inbound messages and commits everything it produced —
records, quarantine rows, sensor counters — in ONE fsynced transaction. Only after it
returns may the transport acknowledge the batch (``BatchResult.durable``).

One message must never stop a station. If anything goes wrong with the batch other than
the journal being unwritable (a valid-looking message that makes the code itself fail,
anywhere from parse to the commit), every piece of in-memory state the batch touched
(sensor counters and replay windows, pending counter jumps, the next seq, the change
filter) is put back as it was, and the batch is run again message by message, each in its
own transaction (tried twice): the message that fails again is quarantined as
``internal-error`` with the exception class, every other one is journaled and acknowledged. A message is therefore
never retried forever. Only an unwritable journal (disk full, I/O: nothing any message did)
keeps messages for a later retry without acknowledging them: the broker keeps them.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.adapters import traceseal_fw
from gateway.core.clock import Clock
from gateway.core.errors import JournalError, ParseError, Rejected, caused_by_data
from gateway.core.observation import Observation
from gateway.ingest.admit import Admission
from gateway.ingest.filters import ChangeFilter
from gateway.ingest.seal import Sealer, reading_body
from gateway.ingest.settings import IngestConfig
from gateway.journal import Journal, QuarantineRow, RecordRow
from gateway.transports.inbound import Inbound

Parser = Callable[[str, bytes], list[Observation]]
log = logging.getLogger("traceseal.pipeline")



@dataclass
class BatchResult:
    records: list[RecordRow] = field(default_factory=list)
    quarantined: list[QuarantineRow] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    durable: list[Inbound] = field(default_factory=list)  # committed: acknowledge these, in order
    retry: list[Inbound] = field(default_factory=list)  # not committed (journal unwritable): keep
    retry_extra: list[dict[str, Any]] = field(default_factory=list)
    error: JournalError | None = None  # why ``retry`` is not empty
    isolated: bool = False  # the batch went message by message (something in it failed)

    def merge(self, other: BatchResult) -> None:
        self.records += other.records
        self.quarantined += other.quarantined
        self.counts.update(other.counts)


# What a batch may change in memory, restored together when it is not committed.
_State = tuple[dict[str, tuple[int, int]], dict[str, int], int, Any]


def mqtt_match(pattern: str, topic: str) -> bool:
    """MQTT wildcard match (+ one level, # the rest)."""
    p, t = pattern.split("/"), topic.split("/")
    for i, part in enumerate(p):
        if part == "#":
            return True
        if i >= len(t) or (part != "+" and part != t[i]):
            return False
    return len(p) == len(t)


def default_parsers(routed: Sequence[str] = ()) -> dict[str, Parser]:
    """Every adapter; those named in ``routed`` already imported (the rest import on first use)."""
    parsers: dict[str, Parser] = {"traceseal": traceseal_fw.parse}
    try:  # device adapters (issue "Real devices") register themselves here
        from gateway.adapters import registry  # lazy, optional: its parsers import on first use

        parsers.update(registry.PARSERS)
    except ImportError:
        return parsers
    # imported now, not at the first message: a missing library is a start-up error
    parsers.update({name: registry.load(name) for name in routed if name in registry.PARSERS})
    return parsers


class Router:
    """Topic (MQTT filter) or port (glob) → adapter name; first match wins."""

    def __init__(self, routes: Sequence[tuple[str, str]]) -> None:
        self.routes = list(routes)

    def adapter_for(self, transport: str, topic: str) -> str | None:
        for pattern, adapter in self.routes:
            if transport == "mqtt" and mqtt_match(pattern, topic):
                return adapter
            if transport != "mqtt" and fnmatch.fnmatch(topic, pattern):
                return adapter
        return None


class Pipeline:
    def __init__(self, cfg: IngestConfig, journal: Journal, sealer: Sealer, clock: Clock,
                 router: Router | None = None, parsers: dict[str, Parser] | None = None) -> None:
        """``cfg`` is the ingest slice (``Config.ingest``); its routes build the default router."""
        self.cfg = cfg
        self.journal = journal
        self.sealer = sealer
        self.clock = clock
        self.router = router or Router(cfg.routes)
        self.parsers = parsers or default_parsers([a for _, a in self.router.routes])
        self.admission = Admission(cfg.sensors, cfg.admission, journal.sensor_counters())
        self.filter = ChangeFilter(cfg.filters)

    def _quarantine(self, res: BatchResult, msg: Inbound, code: str, detail: str, now: int) -> None:
        res.quarantined.append(QuarantineRow(now, f"{msg.transport}:{msg.topic}"[:200], code, detail,
                                             msg.payload[: self.cfg.quarantine_raw_bytes], len(msg.payload)))
        res.counts[f"quarantined.{code}"] += 1

    def _one(self, msg: Inbound, res: BatchResult, seen: set[bytes], now: int, synced: bool) -> None:
        """One message, in four steps; a step that returns nothing has quarantined or counted it."""
        observations = self._parse(msg, res, now)
        if observations is None:
            return
        digest = hashlib.sha256(msg.payload).digest()
        if self._held_already(msg, res, observations[0], digest, seen, now):
            return
        admitted = self._admit(msg, res, observations, now)
        if admitted is None:
            return
        seen.add(digest)
        self._seal(msg, res, admitted, digest, now, synced)
        res.counts["accepted_messages"] += 1

    def _parse(self, msg: Inbound, res: BatchResult, now: int) -> list[Observation] | None:
        """Size limit, route, adapter: the observations, or None (quarantined, or counted empty)."""
        if len(msg.payload) > self.cfg.admission.max_message_bytes:
            self._quarantine(res, msg, "oversize",
                             f"{len(msg.payload)} bytes > limit {self.cfg.admission.max_message_bytes}", now)
            return None
        adapter = self.router.adapter_for(msg.transport, msg.topic)
        parse = self.parsers.get(adapter or "")
        if parse is None:
            self._quarantine(res, msg, "no-adapter", f"no adapter configured for {msg.transport} {msg.topic!r}", now)
            return None
        try:
            observations = parse(msg.topic, msg.payload)
        except ParseError as exc:
            self._quarantine(res, msg, exc.code, str(exc), now)
            return None
        except Exception as exc:  # noqa: BLE001  an adapter bug must not stop the gateway; keep the evidence
            self._quarantine(res, msg, "adapter-crash", f"{adapter}: {type(exc).__name__}: {exc}", now)
            return None
        if not observations:
            res.counts["empty"] += 1
            return None
        return observations

    def _held_already(self, msg: Inbound, res: BatchResult, first: Observation, digest: bytes, seen: set[bytes],
                      now: int) -> bool:
        """True when these bytes are already held (a redelivery: counted) or replayed (quarantined)."""
        # Identical bytes are a replay only for messages that carry a counter (traceseal
        # firmware); a scale or a Zigbee sensor legitimately repeats the same line. A broker
        # redelivery (DUP flag) of anything already journaled is kept once either way.
        replay_protected = first.counter is not None
        # Journaled bytes carry a counter admission already accepted, so a counter above the
        # sensor's newest cannot be a replay: skip the SQL look-up for the common case.
        maybe_held = msg.dup or (replay_protected and not self.admission.counter_is_new(first))
        if maybe_held and (digest in seen or self.journal.has_digest(digest)):
            if msg.dup or digest in seen:  # broker redelivery of what we already hold: ack, keep once
                res.counts["duplicate"] += 1
            else:
                self._quarantine(res, msg, "replay", "identical message already journaled", now)
            return True
        return False

    def _admit(self, msg: Inbound, res: BatchResult, observations: list[Observation],
               now: int) -> list[tuple[Observation, bool]] | None:
        """The admitted observations with their ``authenticated`` flag; None when the whole
        (signed, counter-carrying) message was refused."""
        first = observations[0]
        admitted: list[tuple[Observation, bool]] = []
        if first.counter is not None:
            # A signed firmware message is one unit: one sensor, one counter, one signature.
            try:
                authenticated = self.admission.check_message(first, msg.topic)
                self.admission.check_counter(first)
                for obs in observations:
                    if obs.sensor != first.sensor:
                        raise Rejected("mixed-sensors", f"one message carries {first.sensor!r} and {obs.sensor!r}")
                    self.admission.check_value(obs)
            except Rejected as exc:
                self._quarantine(res, msg, exc.code, exc.message, now)
                return None
            self.admission.accept_counter(first)
            admitted = [(obs, authenticated) for obs in observations]
        else:
            # Third-party payloads (a Tasmota with five probes) are admitted reading by reading:
            # one unknown or implausible probe must not cost the others.
            for obs in observations:
                try:
                    auth = self.admission.check_message(obs, msg.topic)
                    self.admission.check_value(obs)
                except Rejected as exc:
                    self._quarantine(res, msg, exc.code, exc.message, now)
                    continue
                admitted.append((obs, auth))
        return admitted

    def _seal(self, msg: Inbound, res: BatchResult, admitted: list[tuple[Observation, bool]], digest: bytes,
              now: int, synced: bool) -> None:
        """Past the change filter, each admitted observation becomes a signed record."""
        for obs, authenticated in admitted:
            why = self.filter.keep(obs, now)
            if why is not None:
                res.counts[why] += 1
                continue
            body = reading_body(obs, transport=msg.transport, topic=msg.topic, authenticated=authenticated,
                                digest=digest)
            res.records.append(self.sealer.seal(body, time_ms=now, synced=synced, digest=digest))

    def _snapshot(self) -> _State:
        return (dict(self.admission.counters), dict(self.admission.jumps), self.sealer.next_seq,
                self.filter.snapshot())

    def _restore(self, state: _State) -> None:
        counters, jumps, next_seq, filt = state
        self.admission.counters, self.admission.jumps = dict(counters), dict(jumps)
        self.sealer.next_seq = next_seq
        self.filter.restore(filt)

    def _commit(self, res: BatchResult, before: _State) -> None:
        changed = {s: c for s, c in self.admission.counters.items() if before[0].get(s) != c}
        counts = {k: v for k, v in res.counts.items() if k != "accepted_messages"}
        counts["records"] = len(res.records)
        self.journal.commit_batch(res.records, res.quarantined, changed, counts)

    def process(self, batch: Sequence[Inbound], extra: Sequence[dict[str, Any]] = ()) -> BatchResult:
        """Admit and seal ``batch`` (plus rule outputs in ``extra``) and commit.

        Raises JournalError only when the journal is unwritable and nothing was committed;
        otherwise acknowledge ``durable`` and keep ``retry`` (non-empty only with ``error``)."""
        now, synced = self.clock.now_ms(), self.clock.synced()
        before = self._snapshot()
        res = BatchResult()
        try:
            seen: set[bytes] = set()
            for msg in batch:
                self._one(msg, res, seen, now, synced)
            for body in extra:
                res.records.append(self.sealer.seal(body, time_ms=now, synced=synced))
            self._commit(res, before)
        except JournalError as exc:
            self._restore(before)
            if not caused_by_data(exc):
                raise
            failure: Exception = exc
        except Exception as exc:  # noqa: BLE001  anything a message made the code do: isolate it, never loop on it
            self._restore(before)
            failure = exc
        else:
            res.durable = list(batch)
            return res
        log.warning("a batch of %d messages and %d rule outputs failed (%s: %s); isolating it message by "
                    "message", len(batch), len(extra), type(failure).__name__, str(failure)[:200])
        return self._isolate(batch, extra, now, synced)

    def _isolate(self, batch: Sequence[Inbound], extra: Sequence[dict[str, Any]], now: int,
                 synced: bool) -> BatchResult:
        """Each message (then each rule output) in its own transaction; what fails again is
        quarantined with its exception class, the rest committed in arrival order."""
        res = BatchResult(isolated=True)
        units: list[tuple[Inbound | None, dict[str, Any] | None]] = [(m, None) for m in batch]
        units += [(None, body) for body in extra]
        seen: set[bytes] = set()
        for i, (msg, body) in enumerate(units):
            before = self._snapshot()
            for attempt in (1, 2):  # a second try alone: a failure that does not repeat costs nothing
                seen_before, part = set(seen), BatchResult()
                try:
                    if msg is not None:
                        self._one(msg, part, seen, now, synced)
                    elif body is not None:
                        part.records.append(self.sealer.seal(body, time_ms=now, synced=synced))
                    self._commit(part, before)
                    break
                except Exception as exc:  # noqa: BLE001  isolation: whatever it is, this message alone
                    self._restore(before)
                    seen = seen_before
                    if isinstance(exc, JournalError) and not caused_by_data(exc):
                        return self._keep_rest(res, units[i:], exc)
                    if attempt == 1:
                        continue
                    part = BatchResult()
                    self._quarantine_failure(part, msg, body, exc, now)
                    try:
                        self._commit(part, before)
                    except JournalError as exc2:
                        return self._keep_rest(res, units[i:], exc2)
            res.merge(part)
            if msg is not None:
                res.durable.append(msg)
        return res

    @staticmethod
    def _keep_rest(res: BatchResult, rest: Sequence[tuple[Inbound | None, dict[str, Any] | None]],
                   exc: JournalError) -> BatchResult:
        res.retry = [m for m, _ in rest if m is not None]
        res.retry_extra = [b for _, b in rest if b is not None]
        res.error = exc
        return res

    def _quarantine_failure(self, res: BatchResult, msg: Inbound | None, body: dict[str, Any] | None,
                            exc: Exception, now: int) -> None:
        detail = f"{type(exc).__name__}: {exc}"[:400]
        log.error("quarantined as internal-error: %s", detail)
        if msg is not None:
            self._quarantine(res, msg, "internal-error", detail, now)
            return
        # A rule output the sealer cannot take: keep it as evidence instead of losing it silently.
        raw = json.dumps(body, sort_keys=True, default=repr).encode()
        kind = str((body or {}).get("type", "?"))[:40]
        res.quarantined.append(QuarantineRow(now, f"rule:{kind}", "internal-error", detail,
                                             raw[: self.cfg.quarantine_raw_bytes], len(raw)))
        res.counts["quarantined.internal-error"] += 1
