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
"""

from __future__ import annotations

import bisect
import functools
import json
import logging
import queue
import re
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.archive import checks as archive_checks
from gateway.archive.config import GATEWAY_ID, ArchiveConfig
from gateway.archive.metrics import serve
from gateway.archive.store import (
    HEADER_ONLY,
    PENDING,
    VERIFIED,
    Rejection,
    Store,
    StoredBlock,
    StoreError,
)
from gateway.core.errors import Rejected, caused_by_data
from gateway.journal import UPSTREAM_TOPICS, RecordRow
from gateway.rules.profile import PROFILE_DOMAIN, station_from_profile
from gateway.transports.inbound import Inbound
from gateway.transports.mqtt import MqttTransport
from ledger_client.canonical import canonical, header_hash, record_message
from ledger_client.keys import public_from_hex, verify_sig
from ledger_client.rotation import RECORD_TYPE as ROTATION_TYPE
from ledger_client.rotation import build_chain
from ledger_client.verify import loads_strict
from ledger_client.verify.checks import Problem


log = logging.getLogger("traceseal.archive")

STREAMS = UPSTREAM_TOPICS
MAX_ITEMS = 20_000          # per message; the forwarder cuts at batch_max
MAX_BODY = 64 * 1024        # one record's canonical text
_HEX64 = re.compile(r"[0-9a-f]{64}")
_KIND = re.compile(r"[a-z0-9_-]{1,32}")


class PartialCommit(StoreError):
    """The store failed while a batch was isolated: its first ``done`` messages are stored
    (acknowledge them and publish acks for ``touched``), the rest must be retried."""

    def __init__(self, done: int, touched: set[str], message: str) -> None:
        super().__init__(message)
        self.done, self.touched = done, touched


class ItemRejected(Rejected):
    """The archive refused one item (or message) a gateway forwarded: ``code`` (also
    ``reason``) is the stable reason of docs/upstream.md; it becomes a rejection row."""

    @property
    def reason(self) -> str:
        return self.code

    @property
    def detail(self) -> str:
        return self.message


def _text(v: Any, n: int = 500) -> str:
    """Safe to store in any TEXT column: no NUL (PostgreSQL refuses it), no lone surrogates."""
    return str(v)[:n].replace("\x00", "\\0").encode("utf-8", "replace").decode("utf-8")


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and -(2**62) < v < 2**62


def _canonical_text(text: Any, what: str) -> tuple[bytes, dict[str, Any]]:
    """The bytes as sent, and the object, if and only if the text is its own RFC 8785 form."""
    if not isinstance(text, str):
        raise ItemRejected("malformed", f"{what} is {type(text).__name__}, want a string")
    if len(text) > MAX_BODY:
        raise ItemRejected("too_large", f"{what} is {len(text)} characters, more than {MAX_BODY}")
    try:
        data = text.encode("utf-8")
        obj = loads_strict(text)
    except (ValueError, UnicodeError, RecursionError) as exc:
        raise ItemRejected("malformed", f"{what} is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ItemRejected("malformed", f"{what} is {type(obj).__name__}, want an object")
    try:
        again = canonical(obj)
    except Exception as exc:  # noqa: BLE001  any failure to canonicalise hostile input is this reason
        raise ItemRejected("not_canonical", f"{what} cannot be canonicalised: {exc}") from None
    if again != data:
        raise ItemRejected("not_canonical", f"{what} is not in RFC 8785 canonical form")
    return data, obj


@functools.lru_cache(maxsize=256)
def _pub(key_hex: str) -> Ed25519PublicKey:
    return public_from_hex(key_hex)


@dataclass
class KeysInForce:
    """A gateway's key chain as the archive has stored it: the enrolled key, then each
    accepted rotation's new key. The rule is the verifier's (ledger_client/rotation.py,
    docs/proof-format.md §8.1): a rotation record at seq ``s`` closing block ``b`` hands
    over every record after ``s`` and every block after ``b`` to its new key."""

    enrolled: str
    rotations: list[tuple[int, int, str, str]]  # (seq, last_block, old_key, new_key), oldest first

    @property
    def keys(self) -> list[str]:
        return [self.enrolled] + [r[3] for r in self.rotations]

    def for_seq(self, seq: int) -> str:
        return self.keys[bisect.bisect_left([r[0] for r in self.rotations], seq)]

    def for_block(self, n: int) -> str:
        return self.keys[bisect.bisect_left([r[1] for r in self.rotations], n)]


@dataclass
class Ack:
    records: int = -1
    blocks: int = -1
    anchors: int = -1

    def as_tuple(self) -> tuple[int, int, int]:
        return (self.records, self.blocks, self.anchors)


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
        self._notify: Any = None  # sdnotify under systemd (run_forever)
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
            raise ItemRejected("too_large", f"payload of {len(payload)} bytes is over the {self.cfg.max_payload}-byte limit")
        if gw == "?" or stream == "?":
            raise ItemRejected("malformed", "topic is not {prefix}/{gateway}/{stream} with a valid gateway id and stream")
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
            raise ItemRejected("gateway_mismatch", f"payload names gateway {_text(msg.get('gateway'), 70)!r}, topic {gw!r}")
        keys = KeysInForce(key[0], self.store.key_rotations(gw))
        if stream == "hello":
            self._hello(gw, keys, msg, rej)
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

    # -- hello -----------------------------------------------------------------------------------
    def _hello(self, gw: str, keys: KeysInForce, msg: dict[str, Any], rej: list[Rejection]) -> None:
        # any key of the chain: a gateway says hello with its current key, and a retained
        # hello from before a rotation still carries the old one
        pk = msg.get("public_key")
        data, prof = _canonical_text(msg.get("profile"), "profile")
        if pk not in keys.keys:
            sig = msg.get("sig")
            try:
                own = isinstance(pk, str) and _HEX64.fullmatch(pk) is not None and isinstance(sig, str) \
                    and verify_sig(_pub(pk), sig, PROFILE_DOMAIN + data) and prof.get("gateway") == gw
            except Exception:  # noqa: BLE001  not a point on the curve
                own = False
            if own:
                self.held_hello[gw] = msg
                raise ItemRejected("key_unknown_yet", f"hello carries key {_text(pk, 16)}…, not (yet) in the chain of the "
                                                f"enrolled key {keys.enrolled[:16]}…; held until a rotation to it. "
                                                "If this station has not rotated its key, its enrolment key is wrong "
                                                "(compare with `traceseal status --json` public_key on the gateway)")
            raise ItemRejected("key_mismatch", f"hello carries key {_text(pk, 16)}…, which is neither the enrolled key "
                                         f"{keys.enrolled[:16]}… nor one it rotated to")
        if prof.get("gateway") != gw:
            raise ItemRejected("gateway_mismatch", f"profile names gateway {_text(prof.get('gateway'), 70)!r}")
        sig = msg.get("sig")
        if not isinstance(sig, str) or not verify_sig(_pub(pk), sig, PROFILE_DOMAIN + data):
            raise ItemRejected("bad_signature", f"profile signature does not verify with the key it names {pk[:16]}…")
        t = prof.get("time_ms")
        if not _int(t):
            raise ItemRejected("bad_profile", "profile time_ms is not an integer")
        assert isinstance(t, int)  # _int said so; for the type checker
        try:
            station_from_profile(prof)
        except ValueError as exc:
            raise ItemRejected("bad_profile", str(exc)) from None
        held = self.held_hello.get(gw)
        if held is not None and held.get("public_key") not in keys.keys:
            # the gateway speaks with a key of its chain: the held hello's key was not its own
            del self.held_hello[gw]
            self._reject(rej, gw, "hello", "message", ItemRejected(
                "key_mismatch", f"the held hello's key {_text(held.get('public_key'), 16)}… is not in the chain; "
                                f"the gateway has since said hello with {pk[:16]}…"))
        have = self.store.gateways()[gw]
        if have.profile == msg["profile"]:
            self.store.bump(gw, "duplicate_hello")
        elif have.profile_ms is None or t >= have.profile_ms:
            self.store.set_profile(gw, msg["profile"], sig, t)
        else:
            self.store.bump(gw, "stale_hello")

    # -- records ---------------------------------------------------------------------------------
    def _record(self, gw: str, keys: KeysInForce, item: Any, early: bool) -> RecordRow:
        if not isinstance(item, dict) or not _int(item.get("seq")) or item["seq"] < 0:
            raise ItemRejected("malformed", "item needs a non-negative integer seq, a body and a sig")
        seq = item["seq"]
        data, rec = _canonical_text(item.get("body"), "body")
        if rec.get("seq") != seq:
            raise ItemRejected("seq_mismatch", f"body has seq {_text(rec.get('seq'), 30)}, item has {seq}")
        sig, key = item.get("sig"), keys.for_seq(seq)
        p = archive_checks.record_problem(rec, sig, data, gateway=gw, key_hex=key, sig_key=_pub(key))
        if p is not None and p.code == "gateway":
            raise ItemRejected("gateway_mismatch", f"body names gateway {_text(rec.get('gateway'), 70)!r}")
        if p is not None and p.code == "signature":
            if early and seq - 1 > self._contiguous(gw):
                # an alarm ahead of the ordered stream: a rotation not received yet may hand
                # this seq to a key the archive does not know; the ordered copy decides
                raise ItemRejected("key_unknown_yet", f"record signature does not verify with the key in force "
                                                f"{key[:16]}…, and earlier seqs (a key rotation among them?) have "
                                                "not arrived yet")
            raise ItemRejected("bad_signature", f"record signature does not verify with the key in force for seq {seq} "
                                          f"({key[:16]}…)")
        if p is not None:
            raise ItemRejected(archive_checks.REASONS[p.code], f"record: {_text(p.detail, 300)}")
        typ, sensor, kind, t = rec["type"], rec.get("sensor"), rec.get("kind"), rec["time_ms"]
        cols = [typ, sensor if isinstance(sensor, str) else None, kind if isinstance(kind, str) else None]
        if any(c is not None and (len(c) > 256 or "\x00" in c) for c in cols):
            raise ItemRejected("malformed", "record type, sensor or kind is over 256 characters or holds NUL")
        return RecordRow(seq, t, cols[0], cols[1], cols[2], None, data, bytes.fromhex(str(sig)))

    def _contiguous(self, gw: str) -> int:
        prog = self.store.progress(gw)
        return -1 if prog is None else prog[0]

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
                row = self._record(gw, keys, item, stream == "alarms")
                have = existing.get(row.seq)
                if have is not None:
                    if have != row.body:
                        raise ItemRejected("conflict", f"seq {row.seq} is already stored with different bytes "
                                                 "(validly signed: someone is rewriting history)")
                    dup += 1
                    continue
                if row.type == ROTATION_TYPE:
                    self._rotation(gw, keys, row, existing, rej)
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
                self._reject(rej, gw, stream, "skipped_from", ItemRejected("malformed", f"skipped_from {_text(skipped, 30)} "
                                                                                 "is not below the batch's first seq"))
        if new:
            lo, hi = min(r.seq for r in new), max(r.seq for r in new)
            for b in self.store.pending_blocks(gw):
                if b.first_seq <= hi and b.last_seq >= lo:
                    self._try_verify(gw, b, rej)

    def _rotation(self, gw: str, keys: KeysInForce, row: RecordRow, existing: dict[int, bytes],
                  rej: list[Rejection]) -> None:
        """A ``key_rotation`` record, already verified as signed by the key in force for its
        seq: it extends the stored chain only if it holds under the verifier's own rule
        (``build_chain``: the same gateway, old_key = the key in force, a later block, and
        the new key's signature over the rotation statement)."""
        entries: list[dict[str, Any]] = []
        for seq, _, _, _ in keys.rotations:
            stored = self.store.records_between(gw, seq, seq)
            if not stored:
                raise ItemRejected("bad_rotation", f"the stored rotation at seq {seq} has lost its record; "
                                             "cannot extend the chain")
            entries.append({"record": json.loads(stored[0][1]), "sig": stored[0][2].hex()})
        rec = json.loads(row.body)
        entries.append({"record": rec, "sig": row.sig.hex()})
        chain = build_chain(entries, gw, keys.enrolled)
        if chain.failures or len(chain.keys) != len(entries) + 1:
            raise ItemRejected("bad_rotation", "; ".join(chain.failures) or "the rotation does not extend the key chain")
        lb = rec["last_block"]
        top = self.store.top_block(gw)
        boundary = {"block": top.block, "first_seq": top.first_seq, "last_seq": top.last_seq} if top else {}
        if top is not None and (top.block > lb or archive_checks.rotation_problems(boundary, row.seq, lb)):
            raise ItemRejected("bad_rotation", f"block {top.block} is already stored signed by the old key, "
                                         f"but the rotation hands blocks after {lb} to the new key")
        self.store.add_rotation(gw, row.seq, lb, rec["old_key"], rec["new_key"])
        keys.rotations.append((row.seq, lb, rec["old_key"], rec["new_key"]))
        log.info("gateway %s: key rotated at seq %d after block %d: %s… -> %s…", gw, row.seq, lb,
                 rec["old_key"][:16], rec["new_key"][:16])
        held = self.held_hello.get(gw)
        if held is not None and held.get("public_key") == rec["new_key"]:
            del self.held_hello[gw]
            try:
                self._hello(gw, keys, held, rej)
            except ItemRejected as r:
                self._reject(rej, gw, "hello", "message", r)
        # alarms stored ahead of the rotation were checked against the old key: re-check
        stale = [s for s, body, sig in self.store.records_between(gw, row.seq + 1, 2**62)
                 if not verify_sig(_pub(keys.for_seq(s)), sig.hex(), record_message(body))]
        if stale:
            self.store.delete_records(gw, stale)
            for s in stale:
                existing.pop(s, None)
                self._reject(rej, gw, "records", f"seq {s}", ItemRejected(
                    "bad_signature", f"signed by the retired key {rec['old_key'][:16]}…, which the rotation at seq "
                                     f"{row.seq} replaced; the record is not kept"))

    # -- blocks ----------------------------------------------------------------------------------
    def _header(self, gw: str, keys: KeysInForce, item: Any) -> tuple[StoredBlock, dict[str, Any]]:
        if not isinstance(item, dict) or not _int(item.get("block")) or item["block"] < 0:
            raise ItemRejected("malformed", "item needs a non-negative integer block, a header and a sig")
        data, h = _canonical_text(item.get("header"), "header")
        n = item["block"]
        if h.get("block") != n:
            raise ItemRejected("seq_mismatch", f"header is block {_text(h.get('block'), 30)}, item says {n}")
        want, sig = keys.for_block(n), item.get("sig")
        p = archive_checks.header_problem(h, sig, data, gateway=gw, key_hex=want, sig_key=_pub(want),
                                          rotations=keys.rotations)
        if p is not None:
            raise self._header_reject(gw, keys, n, h, want, p)
        return StoredBlock(n, h["first_seq"], h["last_seq"], data, bytes.fromhex(str(sig)), header_hash(data),
                           h["sealed_ms"], PENDING), h

    def _header_reject(self, gw: str, keys: KeysInForce, n: int, h: dict[str, Any], want: str,
                       p: Problem) -> ItemRejected:
        """The rejection for a header's first problem (archive_checks.REASONS), in the
        archive's words; a key that a rotation not received yet may introduce waits."""
        reason = archive_checks.REASONS[p.code]
        if p.code == "gateway":
            return ItemRejected(reason, f"header names gateway {_text(h.get('gateway'), 70)!r}")
        if p.code == "key":
            if h["key"] not in keys.keys and h["first_seq"] - 1 > self._contiguous(gw):
                return ItemRejected("key_unknown_yet", f"header names key {_text(h['key'], 16)}…, not the key in force "
                                                 f"{want[:16]}…, and records before it have not arrived yet")
            return ItemRejected(reason, f"header names key {_text(h['key'], 16)}…, the key in force for "
                                  f"block {n} is {want[:16]}…")
        if p.code == "signature":
            return ItemRejected(reason, f"header signature does not verify with the key in force {want[:16]}…")
        return ItemRejected(reason, f"header: {_text(p.detail, 300)}")

    def _chain(self, gw: str, b: StoredBlock, h: dict[str, Any]) -> None:
        prev = self.store.get_block(gw, b.block - 1) if b.block > 0 else None
        probs: list[Problem] = []
        if b.block == 0:
            probs = archive_checks.link_problems(None, None, h)
        elif prev is not None:
            probs = archive_checks.link_problems(json.loads(prev.header), prev.hash, h)
        elif self.store.top_block(gw) is not None:
            raise ItemRejected("chain_gap", f"block {b.block - 1} is not stored: blocks must arrive in order")
        nxt = self.store.get_block(gw, b.block + 1)
        if not probs and nxt is not None:
            probs = archive_checks.link_problems(h, b.hash, json.loads(nxt.header))
            if probs:
                raise ItemRejected(archive_checks.REASONS[probs[0].code],
                             f"stored block {nxt.block} does not link to this header: {_text(probs[0].detail, 300)}")
        if probs:
            raise ItemRejected(archive_checks.REASONS[probs[0].code], f"block {b.block}: {_text(probs[0].detail, 300)}")

    def _blocks(self, gw: str, keys: KeysInForce, items: list[Any], rej: list[Rejection]) -> None:
        dup = 0
        for i, item in enumerate(items):
            ref = f"block {item.get('block')}" if isinstance(item, dict) and _int(item.get("block")) else f"item {i}"
            try:
                b, h = self._header(gw, keys, item)
                have = self.store.get_block(gw, b.block)
                if have is not None:
                    if have.header != b.header:
                        raise ItemRejected("conflict", f"block {b.block} is already stored with a different header")
                    dup += 1
                    continue
                self._chain(gw, b, h)
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
                if not (isinstance(item, dict) and _int(item.get("block")) and _int(item.get("time_ms"))
                        and isinstance(item.get("header_hash"), str) and _HEX64.fullmatch(item["header_hash"])
                        and isinstance(item.get("kind"), str) and _KIND.fullmatch(item["kind"])
                        and isinstance(item.get("anchor"), dict)):
                    raise ItemRejected("malformed", "anchor item needs block, header_hash (64 hex), kind, anchor{}, time_ms")
                a = item["anchor"]
                inner = a.get("header_hash")
                if inner is None and isinstance(a.get("entry"), dict):
                    inner = a["entry"].get("header_hash")
                if inner is not None and inner != item["header_hash"]:
                    raise ItemRejected("anchor_mismatch", "the anchor object names another header hash than the item")
                b = self.store.get_block(gw, item["block"])
                if b is None:
                    raise ItemRejected("unknown_block", f"block {item['block']} is not stored (send the block first)")
                if b.hash.hex() != item["header_hash"]:
                    raise ItemRejected("anchor_mismatch", f"header_hash {item['header_hash'][:16]}… is not the stored "
                                                    f"header's {b.hash.hex()[:16]}…")
                try:
                    text = json.dumps(a, sort_keys=True, ensure_ascii=True, allow_nan=False)
                except (ValueError, TypeError, RecursionError) as exc:
                    raise ItemRejected("malformed", f"anchor object: {exc}") from None
                if len(text) > MAX_BODY:
                    raise ItemRejected("too_large", f"anchor object is {len(text)} characters")
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
        if self.transport is None:
            return
        for gw in gateways:
            a = self.ack(gw)
            if not force and self.published.get(gw) == a.as_tuple():
                continue
            payload = json.dumps({"v": 1, "gateway": gw, "records": a.records, "blocks": a.blocks,
                                  "anchors": a.anchors, "time_ms": self.now_ms()}, sort_keys=True)
            self.transport.client.publish(f"{self.cfg.prefix}/{gw}/ack", payload, qos=1, retain=True)
            self.published[gw] = a.as_tuple()

    # -- the running service ------------------------------------------------------------------------
    def start(self) -> None:
        self.transport = MqttTransport(self.cfg.broker, self.inbox.put)
        self.thread = threading.Thread(target=self._writer, name="archive-writer", daemon=True)
        self.thread.start()
        if self.cfg.metrics_listen is not None:
            self.metrics = serve(self, *self.cfg.metrics_listen)
        self.transport.start()
        log.info("archive started: %d gateways enrolled, topics %s", len(self.keys), ", ".join(self.transport.topics))

    def stop(self) -> None:
        if self.transport is not None:
            self.transport.stop()  # intake first; what is queued but un-acked is redelivered later
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout=15)
        if self.metrics is not None:
            server, collector = self.metrics
            server.shutdown()
            server.server_close()
            collector.close()
            self.metrics = None
        self.store.close()

    def run_forever(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self.stop_event.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop_event.set())
        import sdnotify

        self._notify = sdnotify.SystemdNotifier()  # a no-op outside systemd (no NOTIFY_SOCKET)
        self.start()
        self._notify.notify("READY=1")
        try:
            while not self.stop_event.wait(1.0):
                pass
        finally:
            self._notify.notify("STOPPING=1")
            self.stop()

    def _ack(self, done: Sequence[Inbound], touched: set[str]) -> None:
        """Durable now: PUBACK in arrival order, then the retained per-gateway acks."""
        for m in done:
            if m.ack is None:
                continue
            try:
                m.ack()
            except Exception:  # the broker redelivers it: a counted duplicate, never a loss
                log.exception("PUBACK of a stored message failed")
        try:
            self.publish_acks(sorted(touched))
        except StoreError as exc:
            log.error("could not read acks to publish: %s", exc)

    def _writer(self) -> None:
        pending: list[Inbound] = []
        failures = 0
        was_connected = False
        last_watchdog = 0.0
        while not self.stop_event.is_set():
            now = time.monotonic()
            if self._notify is not None and now - last_watchdog > 5:
                # fed by this loop, so a writer stuck in the store (not merely failing and
                # retrying) stops feeding it and systemd restarts the archive
                self._notify.notify("WATCHDOG=1")
                last_watchdog = now
            connected = self.transport is not None and self.transport.connected.is_set()
            if connected and not was_connected:
                try:  # the retained acks again at each (re)connect: a broker may have lost them
                    self.publish_acks(sorted(self.keys), force=True)
                except StoreError:
                    connected = False  # try again next round
            was_connected = connected
            if not pending:
                try:
                    pending = [self.inbox.get(timeout=0.25)]
                except queue.Empty:
                    continue
                while len(pending) < self.cfg.batch_messages:
                    try:
                        pending.append(self.inbox.get_nowait())
                    except queue.Empty:
                        break
            try:
                touched = self.process([(m.topic, m.payload) for m in pending])
            except StoreError as exc:  # not committed: keep the batch, ack nothing, retry
                if isinstance(exc, PartialCommit):  # isolating, the store failed: ack what it took
                    self._ack(pending[:exc.done], exc.touched)
                    pending = pending[exc.done:]
                failures += 1
                if self.store_ok:
                    log.error("archive store cannot commit (%s); acknowledgements stopped", exc)
                self.store_ok = False
                self.stop_event.wait(min(5.0, 0.1 * 2 ** min(failures, 6)))
                continue
            except Exception:  # a bug must not stop the archive; the batch stays un-acked
                log.exception("unexpected error in the archive writer; batch kept for retry")
                self.stop_event.wait(1.0)
                continue
            self._ack(pending, touched)
            pending, failures = [], 0
            if not self.store_ok:
                log.warning("archive store writable again; resuming acknowledgements")
            self.store_ok = True
