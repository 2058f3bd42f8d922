"""The archive's consumer: verify what gateways forward, store it, then acknowledge.

One writer thread owns the store. paho's network thread only enqueues into a bounded inbox
(a full inbox blocks it, so a backlog waits at the broker, as in the gateway). The writer
takes up to ``batch_messages`` messages, checks every item as docs/upstream.md §Archive-side
verification says, writes the accepted items and the rejections in ONE transaction, and
only after its commit PUBACKs the messages (in arrival order) and publishes the retained
per-gateway ack. A crash anywhere before the commit loses nothing (the broker redelivers);
after it, the redelivery is a counted duplicate.

Nothing a gateway (or anyone on the broker) sends can stop the writer: every malformed,
oversized or hostile payload becomes a rejection row with a stable reason code.

This module is the core (batches, isolation, routing, the per-stream handlers); the checks
of one item are in gateway/archive/items.py, the threads and MQTT in gateway/archive/runner.py.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.archive import checks as archive_checks
from gateway.archive import keychain, runner
from gateway.archive.config import GATEWAY_ID, ArchiveConfig
from gateway.archive.items import (
    MAX_BODY,
    MAX_ITEMS,
    Ack,
    ItemRejected,
    KeysInForce,
    PartialCommit,
    _int,
    _text,
    anchor_item,
    check_chain,
    record_row,
    stored_header,
)
from gateway.archive.store import HEADER_ONLY, VERIFIED, Rejection, Store, StoredBlock, StoreError
from gateway.core.errors import caused_by_data
from gateway.journal import UPSTREAM_TOPICS, RecordRow
from gateway.transports.inbound import Inbound
from ledger_client.keys import public_from_hex
from ledger_client.rotation import RECORD_TYPE as ROTATION_TYPE
from ledger_client.verify import loads_strict

__all__ = ["MAX_BODY", "MAX_ITEMS", "STREAMS", "Ack", "Archive", "ItemRejected", "KeysInForce", "PartialCommit"]

log = logging.getLogger("traceseal.archive")

STREAMS = UPSTREAM_TOPICS


class Archive:
    """The verification and storage core; ``start``/``stop`` add MQTT around it."""

    def __init__(self, cfg: ArchiveConfig, store: Store, *, now_ms: Callable[[], int] | None = None) -> None:
        self.cfg = cfg
        self.store = store
        self.now_ms = now_ms or (lambda: int(time.time() * 1000))
        self.keys: dict[str, tuple[str, Ed25519PublicKey]] = {}
        self.published: dict[str, tuple[int, int, int]] = {}
        self.inbox: queue.Queue[Inbound] = queue.Queue(maxsize=cfg.inbox)
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None
        self.transport: Any = None
        self.store_ok = True
        self.processed = 0
        # per gateway, the newest hello signed by a key the archive does not know yet (a
        # forwarder says hello before it forwards the rotation record): applied when a
        # rotation to that key is accepted. Memory only: the hello is retained, so a
        # restarted archive receives it again.
        self.held_hello: dict[str, dict[str, Any]] = {}
        self.last_seen: dict[str, float] = {}  # gateway -> time.monotonic() of its last message (metrics)
        self.metrics: Any = None  # (http server, collector) while [metrics] listen serves
        self.notifier: Any = None  # sdnotify under systemd (run_forever)
        now = self.now_ms()
        for gid, key in cfg.gateways.items():
            store.enroll(gid, key, now)  # a different stored key raises StoreError: no silent rotation
        self._load_keys()

    # -- enrolled keys ---------------------------------------------------------------------------
    def _load_keys(self) -> None:
        self.keys = {g.id: (g.public_key, public_from_hex(g.public_key)) for g in self.store.gateways().values()}

    def _key(self, gw: str) -> tuple[str, Ed25519PublicKey] | None:
        if gw not in self.keys:
            self._load_keys()  # `traceseal archive enroll` while running
        return self.keys.get(gw)

    # -- one transaction over a batch of messages ---------------------------------------------------
    def process(self, msgs: Sequence[tuple[str, bytes]]) -> set[str]:
        """Verify and store ``msgs``; returns the gateways touched.

        One transaction for the batch. If it fails for any reason but an unavailable store
        (a payload that makes the code itself fail, a row the database refuses), the batch
        is run again message by message, each alone in its own transaction and tried twice:
        a message that still fails becomes an ``internal_error`` rejection and the others
        are stored, so one message can never stop the archive (it was retried for ever).

        Raises StoreError when the store cannot commit: nothing of the batch was stored,
        or (``PartialCommit``) only its first ``done`` messages, which may be acknowledged.
        """
        try:
            return self._process(msgs)
        except StoreError as exc:
            if not caused_by_data(exc):
                raise
            failure: Exception = exc
        except Exception as exc:  # noqa: BLE001  anything one message makes the code do: isolate it
            failure = exc
        log.warning("a batch of %d messages failed (%s: %s); isolating it message by message", len(msgs),
                    type(failure).__name__, _text(str(failure), 200))
        touched: set[str] = set()
        for i, (topic, payload) in enumerate(msgs):
            for attempt in (1, 2):
                try:
                    touched |= self._process([(topic, payload)])
                    break
                except Exception as exc:
                    if isinstance(exc, StoreError) and not caused_by_data(exc):
                        raise PartialCommit(i, touched, str(exc)) from exc
                    if attempt == 1:
                        continue
                    gw, stream = self._route(topic)
                    detail = f"{type(exc).__name__}: {exc}"
                    log.error("message from %s on %s rejected as internal_error: %s", gw, stream, _text(detail, 200))
                    try:
                        with self.store.tx():
                            self.store.reject([Rejection(self.now_ms(), _text(gw, 64), _text(stream, 16), "message",
                                                         "internal_error", _text(detail))])
                    except StoreError as exc2:
                        raise PartialCommit(i, touched, str(exc2)) from exc2
        return touched

    def _process(self, msgs: Sequence[tuple[str, bytes]]) -> set[str]:
        touched: set[str] = set()
        rejections: list[Rejection] = []
        held = dict(self.held_hello)  # restored if the batch does not commit (it is retried)
        try:
            with self.store.tx():
                for topic, payload in msgs:
                    gw, stream = self._route(topic)
                    if gw in self.keys:
                        self.last_seen[gw] = time.monotonic()
                    try:
                        self._message(gw, stream, payload, rejections)
                        touched.add(gw)
                    except ItemRejected as r:
                        rejections.append(Rejection(self.now_ms(), _text(gw, 64), _text(stream, 16), "message",
                                                    r.reason, _text(r.detail)))
                for gw in sorted(touched):
                    self._advance(gw)
                self.store.reject(rejections)
        except BaseException:
            self.held_hello = held
            raise
        for row in rejections[:5]:  # a flood of garbage must not flood the log too; status has them all
            log.warning("rejected %s %s %s from %s: %s", row.stream, row.ref, row.reason, row.gateway, row.detail)
        if len(rejections) > 5:
            log.warning("… and %d more rejections (traceseal archive status)", len(rejections) - 5)
        self.processed += len(msgs)
        return touched

    def _route(self, topic: str) -> tuple[str, str]:
        prefix = self.cfg.prefix + "/"
        rest = topic[len(prefix):] if topic.startswith(prefix) else ""
        gw, _, stream = rest.partition("/")
        return (gw if GATEWAY_ID.fullmatch(gw) else "?"), (stream if stream in STREAMS else "?")

    def _message(self, gw: str, stream: str, payload: bytes, rej: list[Rejection]) -> None:
        if len(payload) > self.cfg.max_payload:
            raise ItemRejected("too_large", f"payload of {len(payload)} bytes is over the "
                                            f"{self.cfg.max_payload}-byte limit")
        if gw == "?" or stream == "?":
            raise ItemRejected("malformed", "topic is not {prefix}/{gateway}/{stream} with a valid gateway id "
                                            "and stream")
        key = self._key(gw)
        if key is None:
            raise ItemRejected("unknown_gateway", f"gateway {gw!r} is not enrolled")
        try:
            msg = loads_strict(payload.decode("utf-8"))
        except (ValueError, UnicodeError, RecursionError) as exc:
            raise ItemRejected("malformed", f"payload is not JSON: {exc}") from None
        if not isinstance(msg, dict):
            raise ItemRejected("malformed", f"payload is {type(msg).__name__}, want an object")
        if msg.get("v") != 1:
            raise ItemRejected("malformed", f"v is {msg.get('v')!r}, want 1")
        if msg.get("gateway") != gw:
            raise ItemRejected("gateway_mismatch",
                               f"payload names gateway {_text(msg.get('gateway'), 70)!r}, topic {gw!r}")
        keys = KeysInForce(key[0], self.store.key_rotations(gw))
        if stream == "hello":
            keychain.hello(self, gw, keys, msg, rej)
            return
        items = msg.get("items")
        if not isinstance(items, list) or len(items) > MAX_ITEMS:
            raise ItemRejected("malformed", f"items must be a list of at most {MAX_ITEMS}")
        if stream in ("records", "alarms"):
            self._records(gw, stream, keys, msg, items, rej)
        elif stream == "blocks":
            self._blocks(gw, keys, items, rej)
        else:
            self._anchors(gw, items, rej)

    def _reject(self, rej: list[Rejection], gw: str, stream: str, ref: str, r: ItemRejected) -> None:
        rej.append(Rejection(self.now_ms(), gw, stream, ref, r.reason, _text(r.detail)))


    # -- records ---------------------------------------------------------------------------------
    def _records(self, gw: str, stream: str, keys: KeysInForce, msg: dict[str, Any], items: list[Any],
                 rej: list[Rejection]) -> None:
        seqs = [it["seq"] for it in items if isinstance(it, dict) and _int(it.get("seq"))]
        existing: dict[int, bytes] = {}
        if seqs:
            lo, hi = min(seqs), max(seqs)
            if hi - lo <= 4 * len(seqs) + 64:
                existing = {s: b for s, b, _ in self.store.records_between(gw, lo, hi)}
            else:  # scattered (an alarms batch): look each up
                for s in set(seqs):
                    existing.update({x: b for x, b, _ in self.store.records_between(gw, s, s)})
        new: list[RecordRow] = []
        dup = 0
        for i, item in enumerate(items):
            ref = f"seq {item.get('seq')}" if isinstance(item, dict) and _int(item.get("seq")) else f"item {i}"
            try:
                row = record_row(self.store, gw, keys, item, stream == "alarms")
                have = existing.get(row.seq)
                if have is not None:
                    if have != row.body:
                        raise ItemRejected("conflict", f"seq {row.seq} is already stored with different bytes "
                                                 "(validly signed: someone is rewriting history)")
                    dup += 1
                    continue
                if row.type == ROTATION_TYPE:
                    keychain.rotation(self, gw, keys, row, existing, rej)
                existing[row.seq] = row.body
                new.append(row)
            except ItemRejected as r:
                self._reject(rej, gw, stream, ref, r)
        self.store.put_records(gw, new)
        if dup:
            self.store.bump(gw, "duplicate_records", dup)
        skipped = msg.get("skipped_from")
        if stream == "records" and skipped is not None:
            first = min(seqs) if seqs else None
            if _int(skipped) and first is not None and 0 <= skipped < first:
                self.store.add_skip(gw, skipped, first - 1)  # a finding: pruned before it was ever sent
                log.warning("gateway %s: seqs %d..%d were pruned before forwarding", gw, skipped, first - 1)
            else:
                why = f"skipped_from {_text(skipped, 30)} is not below the batch's first seq"
                self._reject(rej, gw, stream, "skipped_from", ItemRejected("malformed", why))
        if new:
            lo, hi = min(r.seq for r in new), max(r.seq for r in new)
            for b in self.store.pending_blocks(gw):
                if b.first_seq <= hi and b.last_seq >= lo:
                    self._try_verify(gw, b, rej)

    # -- blocks ----------------------------------------------------------------------------------
    def _blocks(self, gw: str, keys: KeysInForce, items: list[Any], rej: list[Rejection]) -> None:
        dup = 0
        for i, item in enumerate(items):
            ref = f"block {item.get('block')}" if isinstance(item, dict) and _int(item.get("block")) else f"item {i}"
            try:
                b, h = stored_header(self.store, gw, keys, item)
                have = self.store.get_block(gw, b.block)
                if have is not None:
                    if have.header != b.header:
                        raise ItemRejected("conflict", f"block {b.block} is already stored with a different header")
                    dup += 1
                    continue
                check_chain(self.store, gw, b, h)
                first_block = self.store.top_block(gw) is None
                self.store.put_block(gw, b, h["first_time_ms"], h["last_time_ms"])
                if first_block:  # the chain starts here (block 0, or later for an archive enrolled late)
                    self.store.set_progress(gw, (self.store.progress(gw) or (-1, -1))[0], b.block - 1)
                self._try_verify(gw, b, rej)
            except ItemRejected as r:
                self._reject(rej, gw, "blocks", ref, r)
        if dup:
            self.store.bump(gw, "duplicate_blocks", dup)

    def _try_verify(self, gw: str, b: StoredBlock, rej: list[Rejection]) -> None:
        """Once every record of the block is stored: recompute its RFC 9162 root."""
        skipped = sum(max(0, min(hi, b.last_seq) - max(lo, b.first_seq) + 1) for lo, hi in self.store.skips(gw))
        size = b.last_seq - b.first_seq + 1
        if self.store.count_records(gw, b.first_seq, b.last_seq) + skipped < size:
            return  # pending: not acknowledged until verified
        if skipped:
            self.store.set_verified(gw, b.block, HEADER_ONLY)
            return
        rows = self.store.records_between(gw, b.first_seq, b.last_seq)
        p = archive_checks.root_problem([body for _, body, _ in rows], json.loads(b.header))
        if p is None:
            self.store.set_verified(gw, b.block, VERIFIED)
            return
        self.store.drop_block(gw, b.block)
        self._reject(rej, gw, "blocks", f"block {b.block}", ItemRejected(
            archive_checks.REASONS[p.code], f"{_text(p.detail, 300)}; the block and its records are not kept"))

    # -- anchors ---------------------------------------------------------------------------------
    def _anchors(self, gw: str, items: list[Any], rej: list[Rejection]) -> None:
        dup = 0
        for i, item in enumerate(items):
            ref = f"block {item.get('block')}" if isinstance(item, dict) and _int(item.get("block")) else f"item {i}"
            try:
                b, text = anchor_item(self.store, gw, item)
                if self.store.has_anchor(gw, b.block, item["kind"], text):
                    dup += 1
                    continue
                self.store.put_anchor(gw, b.block, b.hash, item["kind"], text, item["time_ms"])
            except ItemRejected as r:
                self._reject(rej, gw, "anchors", ref, r)
        if dup:
            self.store.bump(gw, "duplicate_anchors", dup)

    # -- progress and acks ------------------------------------------------------------------------
    def _advance(self, gw: str) -> None:
        """Move the contiguous cursors forward (amortised: only over what is new)."""
        prog = self.store.progress(gw)
        r, b = prog if prog is not None else (-1, -1)
        r0, b0 = r, b
        skips = self.store.skips(gw)
        while True:
            moved = False
            for lo, hi in skips:
                if lo <= r + 1 <= hi:
                    r, moved = hi, True
            seqs = self.store.seqs_after(gw, r, 5000)
            for s in seqs:
                if s != r + 1:
                    break
                r, moved = s, True
            if not moved:
                break
        while True:
            nb = self.store.get_block(gw, b + 1)
            if nb is None or nb.verified not in (VERIFIED, HEADER_ONLY):
                break
            b += 1
        if (r, b) != (r0, b0):
            self.store.set_progress(gw, r, b)

    def ack(self, gw: str) -> Ack:
        """What the gateway may treat as archived: a record only once its block is verified
        too (so a record whose block later fails the root check was never acknowledged)."""
        prog = self.store.progress(gw)
        if prog is None:
            return Ack()
        r, b = prog
        blk = self.store.get_block(gw, b) if b >= 0 else None
        records = min(r, blk.last_seq) if blk is not None else -1
        return Ack(records, b if blk is not None else -1, self.store.max_anchored(gw, b) if blk is not None else -1)

    def publish_acks(self, gateways: Sequence[str], *, force: bool = False) -> None:
        runner.publish_acks(self, gateways, force=force)

    # -- the running service (gateway/archive/runner.py) ------------------------------------------
    def start(self) -> None:
        runner.start(self)

    def stop(self) -> None:
        runner.stop(self)

    def run_forever(self) -> None:
        runner.run_forever(self)
