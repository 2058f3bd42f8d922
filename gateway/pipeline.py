"""The ingest pipeline, read top to bottom: bound → route → parse → admit → seal → journal.

``process`` takes a batch of inbound messages and commits everything it produced —
records, quarantine rows, sensor counters — in ONE fsynced transaction. Only after it
returns may the transport acknowledge the batch. If the commit fails (disk full), nothing
of the batch is kept in memory state either, and the caller retries the same batch
later without acknowledging: the broker keeps the messages.
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .adapters import traceseal_fw
from .admit import Admission
from .clock import Clock
from .config import Config
from .errors import JournalError, ParseError, Rejected
from .filters import ChangeFilter
from .journal import Journal, QuarantineRow, RecordRow
from .observation import Observation
from .seal import Sealer, reading_body

Parser = Callable[[str, bytes], list[Observation]]


@dataclass
class Inbound:
    """One message from a transport. ``ack`` is called only after it is durable."""

    transport: str
    topic: str
    payload: bytes
    dup: bool = False
    ack: Callable[[], None] | None = None


@dataclass
class BatchResult:
    records: list[RecordRow] = field(default_factory=list)
    quarantined: list[QuarantineRow] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


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
        from .adapters import registry

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


def default_routes(cfg: Config) -> list[tuple[str, str]]:
    """traceseal topics, then configured third-party topics, then serial ports and 1-wire files."""
    routes = [(t, "traceseal") for t in cfg.mqtt.topics] + list(cfg.routes)
    routes += [(s.name, s.adapter) for s in cfg.serial]
    routes += [("*/w1_slave", "ds18b20"), ("*/temperature", "ds18b20")]
    return routes


class Pipeline:
    def __init__(self, cfg: Config, journal: Journal, sealer: Sealer, clock: Clock,
                 router: Router | None = None, parsers: dict[str, Parser] | None = None) -> None:
        self.cfg = cfg
        self.journal = journal
        self.sealer = sealer
        self.clock = clock
        self.router = router or Router(default_routes(cfg))
        self.parsers = parsers or default_parsers([a for _, a in self.router.routes])
        self.admission = Admission(cfg.sensors, cfg.admission, journal.sensor_counters())
        self.filter = ChangeFilter(cfg.filters)

    def _quarantine(self, res: BatchResult, msg: Inbound, code: str, detail: str, now: int) -> None:
        res.quarantined.append(QuarantineRow(now, f"{msg.transport}:{msg.topic}"[:200], code, detail,
                                             msg.payload[: self.cfg.journal.quarantine_raw_bytes], len(msg.payload)))
        res.counts[f"quarantined.{code}"] += 1

    def _one(self, msg: Inbound, res: BatchResult, seen: set[bytes], now: int, synced: bool) -> None:
        if len(msg.payload) > self.cfg.admission.max_message_bytes:
            self._quarantine(res, msg, "oversize",
                             f"{len(msg.payload)} bytes > limit {self.cfg.admission.max_message_bytes}", now)
            return
        adapter = self.router.adapter_for(msg.transport, msg.topic)
        parse = self.parsers.get(adapter or "")
        if parse is None:
            self._quarantine(res, msg, "no-adapter", f"no adapter configured for {msg.transport} {msg.topic!r}", now)
            return
        try:
            observations = parse(msg.topic, msg.payload)
        except ParseError as exc:
            self._quarantine(res, msg, exc.code, str(exc), now)
            return
        except Exception as exc:  # an adapter bug must not stop the gateway; keep the evidence
            self._quarantine(res, msg, "adapter-crash", f"{adapter}: {type(exc).__name__}: {exc}", now)
            return
        if not observations:
            res.counts["empty"] += 1
            return
        digest = hashlib.sha256(msg.payload).digest()
        first = observations[0]
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
            return
        admitted: list[tuple[Observation, bool]] = []
        if replay_protected:
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
                return
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
        seen.add(digest)
        for obs, authenticated in admitted:
            why = self.filter.keep(obs, now)
            if why is not None:
                res.counts[why] += 1
                continue
            body = reading_body(obs, transport=msg.transport, topic=msg.topic, authenticated=authenticated,
                                digest=digest)
            res.records.append(self.sealer.seal(body, time_ms=now, synced=synced, digest=digest))
        res.counts["accepted_messages"] += 1

    def process(self, batch: Sequence[Inbound], extra: Sequence[dict[str, Any]] = ()) -> BatchResult:
        """Admit and seal ``batch`` (plus rule outputs in ``extra``) and commit. Raises JournalError."""
        now, synced = self.clock.now_ms(), self.clock.synced()
        saved_counters = dict(self.admission.counters)
        saved_seq = self.sealer.next_seq
        res = BatchResult()
        seen: set[bytes] = set()
        for msg in batch:
            self._one(msg, res, seen, now, synced)
        for body in extra:
            res.records.append(self.sealer.seal(body, time_ms=now, synced=synced))
        changed = {s: c for s, c in self.admission.counters.items() if saved_counters.get(s) != c}
        counts = {k: v for k, v in res.counts.items() if k != "accepted_messages"}
        counts["records"] = len(res.records)
        try:
            self.journal.commit_batch(res.records, res.quarantined, changed, counts)
        except JournalError:
            self.admission.counters = saved_counters
            self.sealer.next_seq = saved_seq
            raise
        return res
