"""The SQL both archive backends run: ``?`` placeholders over the tables of ``schema``.

A backend subclasses ``SqlStore`` and gives the connection (``_exec``, ``_many``, ``tx``)
and its DDL types; every query lives here once, so the backends cannot drift apart.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, ClassVar

from gateway.archive.store.rows import GatewayRow, Rejection, StoredBlock, StoreError
from gateway.archive.store.schema import HEADER_ONLY, PENDING, SCHEMA, VERIFIED
from gateway.journal import RecordRow


class SqlStore:
    """The shared SQL. Subclasses give the connection, the placeholder style and the DDL types."""

    kind = "sql"
    _types: ClassVar[dict[str, str]] = {}

    def __init__(self, rejections_max_rows: int = 100_000) -> None:
        self.rejections_max_rows = rejections_max_rows
        self._in_tx = False

    # backend hooks --------------------------------------------------------------------
    def _exec(self, sql: str, args: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    def _many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        raise NotImplementedError

    def tx(self) -> AbstractContextManager[None]:
        """One transaction; nested calls join the outer one."""
        raise NotImplementedError

    def _one(self, sql: str, args: Sequence[Any] = ()) -> Any:
        return self._exec(sql, args).fetchone()

    def _all(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        return list(self._exec(sql, args).fetchall())

    def _schema(self) -> list[str]:
        text = SCHEMA.format(**self._types)
        return [s.strip() for s in text.split(";") if s.strip()]

    # gateways -------------------------------------------------------------------------------
    def enroll(self, gateway: str, public_key: str, now_ms: int) -> bool:
        """True if newly enrolled; the same key again is a no-op; another key is refused
        (a new key for a known id is key rotation, which must not happen by accident)."""
        with self.tx():
            row = self._one("SELECT public_key FROM gateways WHERE id=?", (gateway,))
            if row is not None:
                if row[0] != public_key:
                    rotated = [r for r in self.key_rotations(gateway) if r[3] == public_key]
                    if rotated:
                        raise StoreError(f"gateway {gateway!r}: {public_key[:16]}… is the key it rotated to at seq "
                                         f"{rotated[0][0]}; keep its first key {row[0][:16]}… enrolled (the archive "
                                         "follows the rotation by itself)")
                    raise StoreError(f"gateway {gateway!r} is enrolled with key {row[0][:16]}…, not {public_key[:16]}…")
                return False
            self._exec("INSERT INTO gateways (id, public_key, enrolled_ms) VALUES (?,?,?)",
                       (gateway, public_key, now_ms))
            return True

    def gateways(self) -> dict[str, GatewayRow]:
        return {r[0]: GatewayRow(r[0], r[1], r[2], r[3], r[4], r[5]) for r in self._all(
            "SELECT id, public_key, profile, profile_sig, profile_ms, enrolled_ms FROM gateways ORDER BY id")}

    def set_profile(self, gateway: str, profile: str, sig: str, time_ms: int) -> None:
        self._exec("UPDATE gateways SET profile=?, profile_sig=?, profile_ms=? WHERE id=?",
                   (profile, sig, time_ms, gateway))

    # records ---------------------------------------------------------------------------------
    def records_between(self, gateway: str, lo: int, hi: int) -> list[tuple[int, bytes, bytes]]:
        return [(r[0], bytes(r[1]), bytes(r[2])) for r in self._all(
            "SELECT seq, body, sig FROM records WHERE gateway=? AND seq BETWEEN ? AND ? ORDER BY seq",
            (gateway, lo, hi))]

    def put_records(self, gateway: str, rows: Sequence[RecordRow]) -> None:
        if rows:
            self._many("INSERT INTO records (gateway, seq, time_ms, type, sensor, kind, body, sig) "
                       "VALUES (?,?,?,?,?,?,?,?)",
                       [(gateway, r.seq, r.time_ms, r.type, r.sensor, r.kind, r.body, r.sig) for r in rows])

    def count_records(self, gateway: str, lo: int, hi: int) -> int:
        return int(self._one("SELECT COUNT(*) FROM records WHERE gateway=? AND seq BETWEEN ? AND ?",
                             (gateway, lo, hi))[0])

    def record_rows(self, gateway: str, lo: int, hi: int) -> list[RecordRow]:
        return [RecordRow(r[0], r[1], r[2], r[3], r[4], None, bytes(r[5]), bytes(r[6])) for r in self._all(
            "SELECT seq, time_ms, type, sensor, kind, body, sig FROM records WHERE gateway=? AND seq BETWEEN ? AND ? "
            "ORDER BY seq", (gateway, lo, hi))]

    def has_record(self, gateway: str, seq: int) -> bool:
        return self._one("SELECT 1 FROM records WHERE gateway=? AND seq=?", (gateway, seq)) is not None

    def sensor_seqs(self, gateway: str, sensor: str, from_ms: int, to_ms: int, max_seq: int) -> list[int]:
        return [r[0] for r in self._all(
            "SELECT seq FROM records WHERE gateway=? AND sensor=? AND time_ms BETWEEN ? AND ? AND seq <= ? "
            "ORDER BY seq",
            (gateway, sensor, from_ms, to_ms, max_seq))]

    def seqs_after(self, gateway: str, after: int, limit: int) -> list[int]:
        return [r[0] for r in self._all(
            "SELECT seq FROM records WHERE gateway=? AND seq > ? ORDER BY seq LIMIT ?", (gateway, after, limit))]

    def delete_records(self, gateway: str, seqs: Sequence[int]) -> None:
        """Records that arrived early (alarms) and turned out signed by a retired key."""
        self._many("DELETE FROM records WHERE gateway=? AND seq=?", [(gateway, s) for s in seqs])

    # the gateway's key chain (docs/upstream.md §Key rotation) --------------------------------
    def key_rotations(self, gateway: str) -> list[tuple[int, int, str, str]]:
        """(record seq, last block of the old key, old key, new key), oldest first: the same
        rows as gateway.journal.Journal.key_rotations, so export reads them alike."""
        try:
            rows = self._all("SELECT seq, last_block, old_key, new_key FROM key_rotations WHERE gateway=? ORDER BY seq",
                             (gateway,))
        except StoreError as exc:
            # read-only (status, export) on an archive the rotation-aware version has not
            # opened for writing yet: it has no such table, hence no rotation
            if self._in_tx or "key_rotations" not in str(exc):
                raise
            return []
        return [(int(r[0]), int(r[1]), r[2], r[3]) for r in rows]

    def add_rotation(self, gateway: str, seq: int, last_block: int, old_key: str, new_key: str) -> None:
        self._exec("INSERT INTO key_rotations (gateway, seq, last_block, old_key, new_key) VALUES (?,?,?,?,?)",
                   (gateway, seq, last_block, old_key, new_key))

    # blocks ----------------------------------------------------------------------------------
    _BCOLS = "block, first_seq, last_seq, header, sig, hash, sealed_ms, verified"

    @staticmethod
    def _blk(r: Any) -> StoredBlock | None:
        if r is None:
            return None
        return StoredBlock(r[0], r[1], r[2], bytes(r[3]), bytes(r[4]), bytes(r[5]), r[6], r[7])

    def get_block(self, gateway: str, n: int) -> StoredBlock | None:
        return self._blk(self._one(f"SELECT {self._BCOLS} FROM blocks WHERE gateway=? AND block=?", (gateway, n)))

    def top_block(self, gateway: str) -> StoredBlock | None:
        return self._blk(self._one(f"SELECT {self._BCOLS} FROM blocks WHERE gateway=? ORDER BY block DESC LIMIT 1",
                                   (gateway,)))

    def put_block(self, gateway: str, b: StoredBlock, first_time_ms: int, last_time_ms: int) -> None:
        self._exec("INSERT INTO blocks (gateway, block, first_seq, last_seq, header, sig, hash, sealed_ms, "
                   "first_time_ms, last_time_ms, verified) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                   (gateway, b.block, b.first_seq, b.last_seq, b.header, b.sig, b.hash, b.sealed_ms, first_time_ms,
                    last_time_ms, b.verified))

    def set_verified(self, gateway: str, n: int, state: int) -> None:
        self._exec("UPDATE blocks SET verified=? WHERE gateway=? AND block=?", (state, gateway, n))

    def drop_block(self, gateway: str, n: int) -> None:
        """A block whose root does not match its records: the block, its records and its anchors go."""
        b = self.get_block(gateway, n)
        if b is None:
            return
        self._exec("DELETE FROM records WHERE gateway=? AND seq BETWEEN ? AND ?", (gateway, b.first_seq, b.last_seq))
        self._exec("DELETE FROM anchors WHERE gateway=? AND block=?", (gateway, n))
        self._exec("DELETE FROM blocks WHERE gateway=? AND block=?", (gateway, n))

    def pending_blocks(self, gateway: str) -> list[StoredBlock]:
        return [b for r in self._all(f"SELECT {self._BCOLS} FROM blocks WHERE gateway=? AND verified=0 ORDER BY block",
                                     (gateway,)) if (b := self._blk(r)) is not None]

    # the read side of gateway.journal.Journal that export needs, over verified blocks only
    def verified_block_at(self, gateway: str, sql_where: str, args: Sequence[Any], order: str) -> StoredBlock | None:
        return self._blk(self._one(f"SELECT {self._BCOLS} FROM blocks WHERE gateway=? AND verified<>0 AND {sql_where} "
                                   f"ORDER BY {order} LIMIT 1", (gateway, *args)))

    def verified_blocks_between(self, gateway: str, lo: int, hi: int) -> list[StoredBlock]:
        return [b for r in self._all(f"SELECT {self._BCOLS} FROM blocks WHERE gateway=? AND verified<>0 "
                                     "AND block BETWEEN ? AND ? ORDER BY block", (gateway, lo, hi))
                if (b := self._blk(r)) is not None]

    def block_agg(self, gateway: str, expr: str, where: str, args: Sequence[Any]) -> Any:
        return self._one(f"SELECT {expr} FROM blocks WHERE gateway=? AND verified<>0 AND {where}", (gateway, *args))

    # anchors ---------------------------------------------------------------------------------
    def has_anchor(self, gateway: str, block: int, kind: str, anchor: str) -> bool:
        return self._one("SELECT 1 FROM anchors WHERE gateway=? AND block=? AND kind=? AND digest=?",
                         (gateway, block, kind, hashlib.sha256(anchor.encode()).digest())) is not None

    def put_anchor(self, gateway: str, block: int, header_hash: bytes, kind: str, anchor: str, time_ms: int) -> None:
        self._exec("INSERT INTO anchors (gateway, block, header_hash, kind, anchor, digest, time_ms) "
                   "VALUES (?,?,?,?,?,?,?)",
                   (gateway, block, header_hash, kind, anchor, hashlib.sha256(anchor.encode()).digest(), time_ms))

    def max_anchored(self, gateway: str, at_most: int) -> int:
        row = self._one("SELECT MAX(block) FROM anchors WHERE gateway=? AND block <= ?", (gateway, at_most))
        return -1 if row[0] is None else int(row[0])

    def anchor_at_or_after(self, gateway: str, block: int,
                           newest: bool = False) -> tuple[int, dict[str, Any], int] | None:
        """Anchors of verified blocks only: an anchor of a block the archive has not verified
        vouches for nothing here."""
        order = "a.block DESC" if newest else "a.block"
        row = self._one(
            "SELECT a.block, a.anchor, a.time_ms FROM anchors a "
            "JOIN blocks b ON b.gateway=a.gateway AND b.block=a.block "
            f"WHERE a.gateway=? AND a.block >= ? AND b.verified<>0 ORDER BY {order}, a.time_ms, a.kind LIMIT 1",
            (gateway, block))
        return None if row is None else (int(row[0]), json.loads(row[1]), int(row[2]))

    # skips and progress ------------------------------------------------------------------------
    def add_skip(self, gateway: str, first: int, last: int) -> None:
        self._exec("INSERT INTO skips (gateway, first_seq, last_seq) VALUES (?,?,?) ON CONFLICT (gateway, first_seq) "
                   "DO NOTHING", (gateway, first, last))

    def skips(self, gateway: str) -> list[tuple[int, int]]:
        return [(r[0], r[1]) for r in self._all(
            "SELECT first_seq, last_seq FROM skips WHERE gateway=? ORDER BY first_seq", (gateway,))]

    def progress(self, gateway: str) -> tuple[int, int] | None:
        row = self._one("SELECT records, blocks FROM progress WHERE gateway=?", (gateway,))
        return None if row is None else (int(row[0]), int(row[1]))

    def set_progress(self, gateway: str, records: int, blocks: int) -> None:
        self._exec("INSERT INTO progress (gateway, records, blocks) VALUES (?,?,?) ON CONFLICT (gateway) DO UPDATE SET "
                   "records=excluded.records, blocks=excluded.blocks", (gateway, records, blocks))

    # rejections and counters ----------------------------------------------------------------------
    def reject(self, rows: Sequence[Rejection]) -> None:
        """Stored (bounded: the oldest detail rows go first) and counted per reason (forever)."""
        if not rows:
            return
        self._many("INSERT INTO rejections (time_ms, gateway, stream, ref, reason, detail) VALUES (?,?,?,?,?,?)",
                   [(r.time_ms, r.gateway[:64], r.stream[:16], r.ref[:64], r.reason, r.detail[:500]) for r in rows])
        for (gw, reason), n in Counter((r.gateway[:64], r.reason) for r in rows).items():
            self.bump(gw, "rejected:" + reason, n)
        (n,) = self._one("SELECT COUNT(*) FROM rejections")
        if n > self.rejections_max_rows:
            self._exec("DELETE FROM rejections WHERE id IN (SELECT id FROM rejections ORDER BY id LIMIT ?)",
                       (n - self.rejections_max_rows,))

    def bump(self, gateway: str, name: str, n: int = 1) -> None:
        self._exec("INSERT INTO counters (gateway, name, n) VALUES (?,?,?) ON CONFLICT (gateway, name) DO UPDATE SET "
                   "n=counters.n+excluded.n", (gateway, name, n))

    def rejections(self, gateway: str | None = None, limit: int = 20) -> list[Rejection]:
        where, args = ("WHERE gateway=?", (gateway,)) if gateway is not None else ("", ())
        return [Rejection(*r) for r in self._all(
            f"SELECT time_ms, gateway, stream, ref, reason, detail FROM rejections {where} ORDER BY id DESC LIMIT ?",
            (*args, limit))]

    def unenrolled_rejections(self) -> dict[str, int]:
        """Rejections of sources that are not enrolled gateways (unknown ids, bad topics)."""
        return {r[0]: int(r[1]) for r in self._all(
            "SELECT gateway, SUM(n) FROM counters WHERE substr(name, 1, 9) = 'rejected:' AND gateway NOT IN "
            "(SELECT id FROM gateways) GROUP BY gateway ORDER BY gateway")}

    def counters(self, gateway: str) -> dict[str, int]:
        return {r[0]: int(r[1]) for r in self._all(
            "SELECT name, n FROM counters WHERE gateway=? ORDER BY name", (gateway,))}

    def status(self, gateway: str) -> dict[str, Any]:
        q = self._one
        prog = self.progress(gateway) or (-1, -1)
        by_state = dict(self._all("SELECT verified, COUNT(*) FROM blocks WHERE gateway=? GROUP BY verified",
                                  (gateway,)))
        counters = self.counters(gateway)
        return {
            "records": int(q("SELECT COUNT(*) FROM records WHERE gateway=?", (gateway,))[0]),
            "highest_contiguous_seq": prog[0],
            "blocks": sum(int(v) for v in by_state.values()),
            "blocks_verified": int(by_state.get(VERIFIED, 0)) + int(by_state.get(HEADER_ONLY, 0)),
            "blocks_pending": int(by_state.get(PENDING, 0)),
            "highest_verified_block": prog[1],
            "anchors": int(q("SELECT COUNT(*) FROM anchors WHERE gateway=?", (gateway,))[0]),
            "anchored_block": self.max_anchored(gateway, 2**62),
            "skipped": [list(s) for s in self.skips(gateway)],
            "rejections": {k.split(":", 1)[1]: v for k, v in counters.items() if k.startswith("rejected:")},
            "counters": {k: v for k, v in counters.items() if not k.startswith("rejected:")},
        }
