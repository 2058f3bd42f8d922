"""The ``traceseal-upstream/1`` payloads (docs/upstream.md), built and read without I/O.

Batches are cut here, at ``batch_max`` items or ``MAX_BATCH_BYTES`` of JSON, so what the
forwarder hands to MQTT is always under the archive's 256 KiB limit. What was signed
(record bodies, headers, the profile) travels as the exact canonical text, never re-encoded.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.journal import BlockRow

VERSION = 1
MAX_BATCH_BYTES = 200 * 1024
_ENVELOPE_BYTES = 256  # {"v":1,"gateway":…,"stream":…,"skipped_from":…,"items":[]} with a 64-char id


def topic(prefix: str, gateway: str, kind: str) -> str:
    return f"{prefix}/{gateway}/{kind}"


@dataclass(frozen=True)
class Batch:
    """One payload and the stream cursor it carries up to (its last seq or block)."""

    payload: bytes
    last: int
    items: int


def _dump(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _cut(envelope: dict[str, Any], items: Sequence[tuple[int, dict[str, Any]]], batch_max: int,
         max_bytes: int) -> Batch | None:
    """The longest prefix of ``items`` (cursor, item) within both limits; at least one item."""
    taken: list[dict[str, Any]] = []
    size = _ENVELOPE_BYTES
    last = -1
    for cursor, item in items[:batch_max]:
        n = len(_dump(item)) + 1
        if taken and size + n > max_bytes:
            break
        taken.append(item)
        size += n
        last = cursor
    if not taken:
        return None
    return Batch(_dump({**envelope, "items": taken}), last, len(taken))


def hello(gateway: str, public_key: str, profile_text: str, sig: bytes) -> bytes:
    return _dump({"v": VERSION, "gateway": gateway, "public_key": public_key, "profile": profile_text,
                  "sig": sig.hex()})


def records_batch(gateway: str, stream: str, rows: Sequence[tuple[int, int, bytes, bytes]], after: int,
                  batch_max: int, max_bytes: int = MAX_BATCH_BYTES) -> Batch | None:
    """A batch of (seq, time_ms, body, sig) rows following cursor ``after``.

    In the ``records`` stream items must be contiguous: if the first row is not ``after + 1``
    (retention pruned what was never sent) the batch says ``skipped_from``; a hole further
    in ends the batch there, so the next one reports it. The ``alarms`` stream is sparse.
    """
    if not rows:
        return None
    env: dict[str, Any] = {"v": VERSION, "gateway": gateway, "stream": stream}
    run = list(rows)
    if stream == "records":
        if rows[0][0] != after + 1:
            env["skipped_from"] = after + 1
        end = 1
        while end < len(rows) and rows[end][0] == rows[end - 1][0] + 1:
            end += 1
        run = run[:end]
    return _cut(env, [(s, {"seq": s, "body": body.decode(), "sig": sig.hex()}) for s, _, body, sig in run],
                batch_max, max_bytes)


def blocks_batch(gateway: str, rows: Sequence[BlockRow], batch_max: int,
                 max_bytes: int = MAX_BATCH_BYTES) -> Batch | None:
    return _cut({"v": VERSION, "gateway": gateway},
                [(b.block, {"block": b.block, "header": b.header.decode(), "sig": b.sig.hex()}) for b in rows],
                batch_max, max_bytes)


def anchors_batch(gateway: str, rows: Sequence[tuple[int, bytes, str, str, int]], batch_max: int,
                  max_bytes: int = MAX_BATCH_BYTES) -> Batch | None:
    """Anchors of whole blocks: a cut never separates two anchors of one block, because the
    cursor (the block) must mean "every anchor of this block was sent"."""
    items = [(b, {"block": b, "header_hash": h.hex(), "kind": k, "anchor": json.loads(a), "time_ms": t})
             for b, h, k, a, t in rows]
    batch = _cut({"v": VERSION, "gateway": gateway}, items, max(batch_max, 1), max_bytes)
    if batch is None:
        return None
    n = batch.items
    if n < len(items) and items[n][0] == batch.last:  # the cut split a block: stop before it
        keep = [it for it in items[:n] if it[0] != batch.last]
        if keep:
            return _cut({"v": VERSION, "gateway": gateway}, keep, len(keep), max_bytes)
        same = [it for it in items if it[0] == batch.last]  # one block's anchors exceed a batch: send them whole
        return Batch(_dump({"v": VERSION, "gateway": gateway, "items": [it[1] for it in same]}), batch.last,
                     len(same))
    return batch


class AckError(ValueError):
    """An ack payload that does not follow the contract (ignored, logged)."""


def parse_ack(payload: bytes, gateway: str) -> dict[str, int]:
    """``{"records", "blocks", "anchors"}`` cursors from the archive's retained ack."""
    try:
        obj = json.loads(payload)
    except ValueError as exc:
        raise AckError(f"ack is not JSON: {exc}") from exc
    if not isinstance(obj, dict) or obj.get("v") != VERSION:
        raise AckError(f"ack has no \"v\": {VERSION}")
    if obj.get("gateway") != gateway:
        raise AckError(f"ack is for gateway {obj.get('gateway')!r}, not {gateway!r}")
    out = {}
    for k in ("records", "blocks", "anchors"):
        v = obj.get(k)
        if isinstance(v, bool) or not isinstance(v, int) or v < -1:
            raise AckError(f"ack {k} must be an integer >= -1, got {v!r}")
        out[k] = v
    return out
