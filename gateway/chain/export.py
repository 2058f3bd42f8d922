"""Export ``traceseal-bundle/1`` bundles from a journal: a record, a sensor's range, any seqs.

Every function reads a ``BundleSource`` (gateway/chain/source.py): the gateway's ``Journal``
or the archive's view of one gateway, through the same few questions.

A bundle is self-contained: the gateway key, the records with signatures and inclusion
proofs, every block header from the first record's block up to the block that an anchor
covers (contiguous, so a missing block shows as a break), and that anchor. Proofs are
computed per block once (``inclusion_proofs``), not per record.
"""

from __future__ import annotations

import json
import uuid
from array import array
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from itertools import pairwise
from typing import Any, BinaryIO

from gateway.chain import retention
from gateway.chain.rotation import bundle_rotations
from gateway.chain.source import BundleSource
from gateway.core.errors import GatewayError
from gateway.journal import BlockRow
from gateway.rules import Inventory
from gateway.rules.custody.manifest import route_records
from ledger_client.merkle import hash_leaf, inclusion_proofs

FORMAT = "traceseal-bundle/1"


class ExportError(GatewayError):
    pass


def _identity(journal: BundleSource) -> tuple[str, str]:
    ident = journal.identity()
    if ident is None:
        raise ExportError(f"{journal.path}: journal has no gateway identity yet (has the gateway run?)")
    return ident


def _records_by_block(journal: BundleSource, seqs: Iterable[int]) -> dict[int, list[int]]:
    """Each selected seq under its block; refuses pruned, unknown and not-yet-sealed seqs."""
    by_block: dict[int, list[int]] = defaultdict(list)
    gone = journal.pruned_through()
    for seq in sorted(set(seqs)):
        b = journal.block_of_seq(seq)
        if b is not None and b.block <= gone:  # its header is kept, its records are not
            raise ExportError(journal.pruned_note(seq) or f"record seq {seq} was pruned by retention")
        if b is None:
            if not journal.has_record(seq):
                raise ExportError(f"no record with seq {seq}")
            raise ExportError(f"record seq {seq} is not sealed into a block yet; try again after the next block is cut")
        by_block[b.block].append(seq)
    return by_block


def _block_span(journal: BundleSource, by_block: dict[int, list[int]], extra_blocks: tuple[int, int] | None,
                allow_unanchored: bool) -> tuple[int, int, list[dict[str, Any]]]:
    """(first block, last block, anchors): the span runs up to the anchor that covers it."""
    blocks_needed = set(by_block)
    if extra_blocks is not None:
        blocks_needed |= {extra_blocks[0], extra_blocks[1]}
    if not blocks_needed:
        raise ExportError("nothing to export: the selection matches no sealed record or block")
    lo, hi = min(blocks_needed), max(blocks_needed)
    covering = journal.anchor_covering(hi)
    if covering is None:
        if not allow_unanchored:
            raise ExportError(f"block {hi} is not anchored yet (`traceseal status` shows the anchor backlog); "
                              "wait, or pass --unanchored to export without an anchor")
        return lo, hi, []
    return lo, covering[0], [covering[1]]


def build_bundle(journal: BundleSource, seqs: Iterable[int], selection: dict[str, Any], *,
                 extra_blocks: tuple[int, int] | None = None, allow_unanchored: bool = False,
                 now_ms: int | None = None, progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    gw, key = _identity(journal)
    by_block = _records_by_block(journal, seqs)
    lo, hi, anchors = _block_span(journal, by_block, extra_blocks, allow_unanchored)
    blocks_out, records_out = [], []
    total = sum(len(v) for v in by_block.values())
    done = 0
    for b in journal.blocks_between(lo, hi):
        blocks_out.append({"header": json.loads(b.header), "sig": bytes(b.sig).hex()})
        wanted = by_block.get(b.block)
        if not wanted:
            continue
        rows = journal.records_range(b.first_seq, b.last_seq)
        proofs = inclusion_proofs([hash_leaf(bytes(r.body)) for r in rows])
        for seq in wanted:
            i = seq - b.first_seq
            r = rows[i]
            records_out.append({"record": json.loads(r.body), "sig": bytes(r.sig).hex(), "block": b.block,
                                "index": i, "proof": [p.hex() for p in proofs[i]]})
            done += 1
            if progress:
                progress(done, total)
    bundle: dict[str, Any] = {
        "format": FORMAT,
        "gateway": {"id": gw, "public_key": key},
        "selection": selection,
        "blocks": blocks_out,
        "records": records_out,
        "anchors": anchors,
    }
    if now_ms is not None:
        bundle["exported_ms"] = now_ms
    rotations = bundle_rotations(journal)
    if rotations:
        bundle["gateway"]["rotations"] = rotations
    return bundle


def _bundle(journal: BundleSource, seqs: Iterable[int], selection: dict[str, Any], *, out: BinaryIO | None = None,
            **kw: Any) -> dict[str, Any]:
    """``build_bundle``, or with ``out`` ``write_bundle`` (same bytes, streamed; returns the counts)."""
    if out is None:
        return build_bundle(journal, seqs, selection, **kw)
    return write_bundle(out, journal, seqs, selection, **kw)


def export_record(journal: BundleSource, seq: int, **kw: Any) -> dict[str, Any]:
    return _bundle(journal, [seq], {"type": "record", "seq": seq}, **kw)


def _top_block(journal: BundleSource, allow_unanchored: bool) -> BlockRow:
    """The newest block a selection may reach: the newest anchored one (the newest sealed one
    when unanchored export is allowed or nothing is anchored yet, so the anchor step names it)."""
    latest = journal.latest_anchor()
    last = journal.last_block()
    if last is None:
        raise ExportError("no sealed blocks yet")
    top = journal.block(last.block if allow_unanchored or latest is None else latest[0])
    assert top is not None
    return top


def export_range(journal: BundleSource, sensor: str, from_ms: int, to_ms: int, **kw: Any) -> dict[str, Any]:
    """Every record of ``sensor`` in [from_ms, to_ms] in anchored blocks, plus every block in between."""
    if to_ms < from_ms:
        raise ExportError(f"range end {to_ms} is before its start {from_ms}")
    top = _top_block(journal, kw.get("allow_unanchored", False))
    seqs = journal.sensor_seqs(sensor, from_ms, to_ms, top.last_seq)
    span = journal.blocks_overlapping(from_ms, to_ms)
    if span is not None:  # a range with pruned records in it would look complete and not be
        pruned = retention.range_error(journal.horizon(), f"the range of {sensor!r} from {from_ms}", span[0])
        if pruned:
            raise ExportError(pruned)
    before = journal.block_before(from_ms)
    after = journal.block_after(to_ms)
    lo = before if before is not None else (span[0] if span else 0)
    hi = min(span[1], top.block) if span else lo
    selection: dict[str, Any] = {"type": "range", "sensor": sensor, "from_ms": from_ms, "to_ms": to_ms}
    if after is not None and after <= top.block:
        hi = max(hi, after)  # the block after the range shows nothing was sealed in between
    elif top.header_obj["last_time_ms"] < to_ms:
        selection["open_end"] = True  # the range reaches past the last anchored block
    return _bundle(journal, seqs, selection, extra_blocks=(min(lo, top.block), hi), **kw)


def all_records(journal: BundleSource, max_seq: int) -> Iterable[tuple[int, dict[str, Any]]]:
    for lo in range(0, max_seq + 1, 5000):
        for r in journal.records_range(lo, min(lo + 4999, max_seq)):
            yield r.seq, json.loads(r.body)


def _refuse_if_pruned(journal: BundleSource, what: str) -> None:
    """A lot's or route's history is rebuilt from the whole journal: if its beginning may have
    been pruned, the gateway cannot tell a complete bundle from a truncated one, so it refuses."""
    msg = retention.range_error(journal.horizon(), f"the history of {what}", 0)
    if msg:
        raise ExportError(msg)


def export_lot(journal: BundleSource, units: dict[str, Any], inventory_cfg: Any, lot: str, *,
               gtin: str | None = None, **kw: Any) -> dict[str, Any]:
    """Everything that proves, or disproves, that lot ``lot`` was kept in range.

    Every scan and stock movement of the lot, and for each unit it sat in — from the scan
    in to the scan out, as the inventory rules derive it from the journal — every reading
    of that unit's probes and door, and every alarm about the unit in that window. The
    selection lists the windows so a verifier can check each record belongs (step 9).
    """
    _refuse_if_pruned(journal, f"lot {lot!r}")
    top = _top_block(journal, kw.get("allow_unanchored", False))
    inv = Inventory(units, inventory_cfg)
    lot_seqs: list[int] = []
    alarm_rows: list[tuple[int, str, int]] = []  # (seq, unit, time)
    for seq, rec in all_records(journal, top.last_seq):
        inv.feed(rec, rec.get("time_ms", 0))
        attrs: dict[str, Any] = rec["attrs"] if isinstance(rec.get("attrs"), dict) else {}
        if (rec.get("lot") == lot or attrs.get("lot") == lot) and (
                gtin is None or rec.get("gtin", attrs.get("gtin")) == gtin):
            lot_seqs.append(seq)
        if rec.get("type") == "alarm" and isinstance(rec.get("unit"), str):
            alarm_rows.append((seq, rec["unit"], rec.get("time_ms", 0)))
    end_default = top.header_obj["last_time_ms"]
    windows: list[dict[str, Any]] = []
    for r in inv.residency():
        if r.lot != lot or (gtin is not None and r.gtin != gtin):
            continue
        u = units.get(r.unit)
        if u is None:
            continue
        sensors = sorted(set(u.probes) | ({u.door} if u.door else set()))
        w = {"unit": r.unit, "gtin": r.gtin, "from_ms": r.entered_ms,
             "to_ms": r.left_ms if r.left_ms is not None else end_default, "sensors": sensors}
        if r.left_ms is None:
            w["open"] = True  # still in the unit: the window runs to the end of the bundle
        windows.append(w)
    if not lot_seqs and not windows:
        raise ExportError(f"no scan of lot {lot!r} in the anchored journal")
    seqs = list(lot_seqs)
    for w in windows:
        for s in w["sensors"]:
            seqs += journal.sensor_seqs(s, w["from_ms"], w["to_ms"], top.last_seq)
        seqs += [seq for seq, unit, t in alarm_rows if unit == w["unit"] and w["from_ms"] <= t <= w["to_ms"]]
    selection: dict[str, Any] = {"type": "lot", "lot": lot, "windows": windows}
    if gtin is not None:
        selection["gtin"] = gtin
    extra = None
    if windows:
        lo_t, hi_t = min(w["from_ms"] for w in windows), max(w["to_ms"] for w in windows)
        before, after = journal.block_before(lo_t), journal.block_after(hi_t)
        lo = before if before is not None else 0
        hi = after if after is not None and after <= top.block else top.block
        extra = (min(lo, top.block), hi)
    return _bundle(journal, seqs, selection, extra_blocks=extra, **kw)


def export_route(journal: BundleSource, route: str, **kw: Any) -> dict[str, Any]:
    """A waste route's manifest as a bundle: its custody records, notices and alarms, the
    operator sessions they cite, and the badge, bin-scan and weight readings behind them."""
    _refuse_if_pruned(journal, f"route {route!r}")
    top = _top_block(journal, kw.get("allow_unanchored", False))
    seqs = route_records((rec for _, rec in all_records(journal, top.last_seq)), route)
    if not seqs:
        raise ExportError(f"no custody record of route {route!r} in the anchored journal")
    return _bundle(journal, seqs, {"type": "route", "id": route}, **kw)


# -- streaming ---------------------------------------------------------------------------------
# A 1M-record range held as Python objects and then as one JSON string took 11.6 GB and
# ~2 minutes (bench/README.md). ``write_bundle`` writes the same bytes as
# ``json.dumps(build_bundle(...), separators=(",", ":"), ensure_ascii=False)`` record by record:
# the envelope (gateway, selection, blocks, anchors, and whatever else ``build_bundle`` puts
# there) comes from ``build_bundle`` itself with no records, and each record body is copied
# verbatim from the journal, where it is already RFC 8785 JSON, which is exactly what
# json.dumps writes back for it (same member order, same escapes, integers only).


def _seqs_by_block(journal: BundleSource, seqs: Iterable[int], selection: dict[str, Any],
                   kw: dict[str, Any]) -> tuple[Sequence[int], dict[int, tuple[int, int]]]:
    """(sorted seqs, block → [i, j) slice of them), walking the blocks in order: one query,
    not one per seq, and no copy of the seqs beyond one sorted list (8 bytes each)."""
    todo: Sequence[int] = seqs if isinstance(seqs, (list, array)) else list(seqs)
    if any(a >= b for a, b in pairwise(todo)):  # export_range's are sorted already
        todo = sorted(set(todo))
    if not isinstance(todo, array):
        todo = array("q", todo)
    by_block: dict[int, tuple[int, int]] = {}
    if not todo:
        return todo, by_block
    first = journal.block_of_seq(todo[0])
    if first is not None and first.block <= journal.pruned_through():
        build_bundle(journal, [todo[0]], selection, **kw)  # pruning is a prefix: names the lowest pruned seq
    i = 0
    if first is not None:
        last = journal.last_block()
        assert last is not None
        for b in journal.blocks_between(first.block, last.block):
            if todo[i] < b.first_seq:
                break  # a gap in the blocks: build_bundle below names the seq
            j = bisect_right(todo, b.last_seq, i)
            if j > i:
                by_block[b.block] = (i, j)
                i = j
            if i == len(todo):
                return todo, by_block
    build_bundle(journal, [todo[i]], selection, **kw)  # raises the same error as the in-memory export
    raise ExportError(f"record seq {todo[i]} is not in any block")  # pragma: no cover - build_bundle raised


def write_bundle(out: BinaryIO, journal: BundleSource, seqs: Iterable[int], selection: dict[str, Any], *,
                 extra_blocks: tuple[int, int] | None = None,
                 progress: Callable[[int, int], None] | None = None, **kw: Any) -> dict[str, Any]:
    """Write the bundle ``build_bundle`` would make to ``out`` as compact UTF-8 JSON, in flat memory.

    Returns ``{"records": n, "blocks": n, "anchors": n}``.
    """
    todo, by_block = _seqs_by_block(journal, seqs, selection, {"extra_blocks": extra_blocks, **kw})
    needed = set(by_block) | (set(extra_blocks) if extra_blocks is not None else set())
    if not needed:
        raise ExportError("nothing to export: the selection matches no sealed record or block")
    # no seqs, the same block span: everything but the records, exactly as build_bundle makes it
    envelope = build_bundle(journal, [], selection, extra_blocks=(min(needed), max(needed)), **kw)
    marker = f"records-{uuid.uuid4().hex}"
    envelope["records"] = [marker]
    head, tail = json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).split(f'["{marker}"]')
    out.write(head.encode("utf-8") + b"[")
    total = len(todo)
    done = 0
    for bn in sorted(by_block):
        lo_i, hi_i = by_block[bn]
        wanted, b = todo[lo_i:hi_i], journal.block(bn)
        assert b is not None
        rows = journal.records_range(b.first_seq, b.last_seq)
        proofs = inclusion_proofs([hash_leaf(bytes(r.body)) for r in rows])
        parts = []
        for seq in wanted:
            i = seq - b.first_seq
            r = rows[i]
            proof = ",".join(f'"{p.hex()}"' for p in proofs[i])
            parts.append(b'{"record":' + bytes(r.body) + b',"sig":"' + bytes(r.sig).hex().encode()
                         + f'","block":{b.block},"index":{i},"proof":[{proof}]}}'.encode())
            done += 1
            if progress:
                progress(done, total)
        out.write((b"," if done > len(parts) else b"") + b",".join(parts))
    out.write(b"]" + tail.encode("utf-8"))
    return {"records": total, "blocks": len(envelope["blocks"]), "anchors": len(envelope["anchors"])}
