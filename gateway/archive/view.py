"""One gateway's data in the archive as a ``BundleSource`` (gateway/chain/source.py), the
questions gateway/chain/export.py asks of a journal.

So an archive export is the gateway's own export code over the archive's rows: the same
bundle format, the same block and anchor choices, verified the same way. Only blocks the
archive has verified (root recomputed, or header-only where the gateway pruned records
before forwarding) and anchors of such blocks are visible.

A lot or route that crossed gateways exports as ``traceseal-set/1`` (docs/proof-format.md
§13): one ``traceseal-bundle/1`` per gateway that holds records of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gateway.archive.store import HEADER_ONLY, VERIFIED, Store
from gateway.chain.export import ExportError, export_lot, export_route
from gateway.journal import BlockRow, RecordRow
from gateway.rules.profile import station_from_profile

SET_FORMAT = "traceseal-set/1"


class ArchiveView:
    def __init__(self, store: Store, gateway_id: str) -> None:
        gws = store.gateways()
        if gateway_id not in gws:
            raise ExportError(f"gateway {gateway_id!r} is not enrolled in this archive")
        self.store: Any = store  # the store Protocol lacks the view-only queries (block_agg, ...)
        self.gateway = gws[gateway_id]
        self.gw = gateway_id
        self.path = Path(f"archive:{gateway_id}")  # named in export errors

    def meta(self, k: str) -> str | None:
        return {"gateway_id": self.gw, "public_key": self.gateway.public_key}.get(k)

    def identity(self) -> tuple[str, str]:
        return self.gw, str(self.gateway.public_key)

    # -- retention: the archive keeps every record it verified, so nothing here was pruned -----
    # (records the gateway pruned before forwarding them show as header-only blocks instead)
    def pruned_through(self) -> int:
        return -1

    def pruned_note(self, seq: int) -> str | None:
        return None

    def horizon(self) -> dict[str, Any] | None:
        return None

    def station(self) -> tuple[dict[str, Any], Any]:
        """(units, inventory) from the gateway's newest signed profile (what export_lot needs)."""
        if self.gateway.profile is None:
            return {}, None
        import json

        return station_from_profile(json.loads(self.gateway.profile))

    # -- blocks (verified only) -----------------------------------------------------------------
    def last_block(self) -> BlockRow | None:
        b = self.store.verified_block_at(self.gw, "1=1", (), "block DESC")
        return None if b is None else b.row()

    def block(self, n: int) -> BlockRow | None:
        b = self.store.verified_block_at(self.gw, "block=?", (n,), "block")
        return None if b is None else b.row()

    def block_of_seq(self, seq: int) -> BlockRow | None:
        b = self.store.verified_block_at(self.gw, "first_seq <= ?", (seq,), "first_seq DESC")
        if b is None or b.last_seq < seq:
            return None
        if b.verified == HEADER_ONLY:
            raise ExportError(f"record seq {seq} is in block {b.block}, some of whose records the gateway pruned "
                              "before forwarding them: no inclusion proof can be computed here")
        row: BlockRow = b.row()
        return row

    def blocks_between(self, lo: int, hi: int) -> Iterator[BlockRow]:
        for b in self.store.verified_blocks_between(self.gw, lo, hi):
            yield b.row()

    def blocks_overlapping(self, from_ms: int, to_ms: int) -> tuple[int, int] | None:
        row = self.store.block_agg(self.gw, "MIN(block), MAX(block)", "last_time_ms >= ? AND first_time_ms <= ?",
                                   (from_ms, to_ms))
        return None if row[0] is None else (int(row[0]), int(row[1]))

    def block_after(self, t_ms: int) -> int | None:
        row = self.store.block_agg(self.gw, "MIN(block)", "first_time_ms > ?", (t_ms,))
        return None if row[0] is None else int(row[0])

    def block_before(self, t_ms: int) -> int | None:
        row = self.store.block_agg(self.gw, "MAX(block)", "first_time_ms < ?", (t_ms,))
        return None if row[0] is None else int(row[0])

    # -- records ------------------------------------------------------------------------------------
    def records_range(self, first: int, last: int) -> list[RecordRow]:
        rows: list[RecordRow] = self.store.record_rows(self.gw, first, last)
        return rows

    def has_record(self, seq: int) -> bool:
        return bool(self.store.has_record(self.gw, seq))

    def sensor_seqs(self, sensor: str, from_ms: int, to_ms: int, max_seq: int) -> list[int]:
        seqs: list[int] = self.store.sensor_seqs(self.gw, sensor, from_ms, to_ms, max_seq)
        return seqs

    # -- the key chain (gateway.rotations, docs/proof-format.md §8.1) ------------------------------
    def key_rotations(self) -> list[tuple[int, int, str, str]]:
        """The rotations the archive accepted whose closing block it has verified (their
        inclusion proof is computed from that block's stored records): what
        ``keyrotation.bundle_rotations`` puts in ``gateway.rotations``, as the gateway would.
        A rotation whose block is still pending is left out; no block after it can be in
        an export yet either (export needs contiguous verified blocks)."""
        out = []
        for rot in self.store.key_rotations(self.gw):
            b = self.store.get_block(self.gw, rot[1])
            if b is None or b.verified != VERIFIED:
                break  # the chain is a chain: nothing after a missing link
            out.append(rot)
        return out

    # -- anchors ------------------------------------------------------------------------------------
    def latest_anchor(self) -> tuple[int, dict[str, Any], int] | None:
        found: tuple[int, dict[str, Any], int] | None = self.store.anchor_at_or_after(self.gw, 0, newest=True)
        return found

    def anchor_covering(self, block: int) -> tuple[int, dict[str, Any], int] | None:
        found: tuple[int, dict[str, Any], int] | None = self.store.anchor_at_or_after(self.gw, block)
        return found


def _views(store: Store) -> list[ArchiveView]:
    return [ArchiveView(store, g) for g in store.gateways()]


_NOT_HERE = ("no scan of lot", "no custody record of route", "no sealed blocks yet")


def export_set(store: Store, selection: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """A lot or route across every gateway of the archive: one bundle per gateway that has it.

    A gateway with no record of the selection is left out; any other failure (a gateway's
    records of it not anchored yet) fails the whole export, naming the gateway, because a
    set that silently drops a station would hide exactly what an auditor looks for.
    """
    bundles = []
    for v in _views(store):
        try:
            if selection["type"] == "lot":
                units, inv = v.station()
                b = export_lot(v, units, inv, selection["lot"], gtin=selection.get("gtin"), **kw)
            elif selection["type"] == "route":
                b = export_route(v, selection["id"], **kw)
            else:
                raise ExportError(f"a {SET_FORMAT} holds a lot or a route, not {selection['type']!r}")
        except ExportError as exc:
            if any(s in str(exc) for s in _NOT_HERE):
                continue
            raise ExportError(f"gateway {v.gw}: {exc}") from exc
        bundles.append(b)
    if not bundles:
        what = f"lot {selection.get('lot')!r}" if selection["type"] == "lot" else f"route {selection.get('id')!r}"
        raise ExportError(f"no gateway in the archive has an anchored record of {what}")
    out: dict[str, Any] = {"format": SET_FORMAT, "selection": selection, "bundles": bundles}
    if kw.get("now_ms") is not None:
        out["exported_ms"] = kw["now_ms"]
    return out
