"""The durable journal: one SQLite database holding records, quarantine, blocks, anchors
and the anchor outbox, so one transaction moves them together.

Durability policy: WAL with ``synchronous=FULL`` — every COMMIT is fsynced before it
returns, and the pipeline acknowledges a message only after the COMMIT that holds it.
Throughput comes from group commit (many messages per transaction), not from weakening
fsync: FACTS.md measured ~3.7k rows/s at one row per commit vs ~100k at 100 per commit.

Records and block headers are append-only (triggers refuse UPDATE); only retention may
delete records, and only whole anchored blocks (gateway/chain/retention.py); block headers and
anchors are never deleted.
"""

from __future__ import annotations

import json
import sqlite3
from array import array
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gateway.core.errors import JournalError
from gateway.journal import forwarding, pruning, schema
from gateway.journal.rows import BLOCK_COLS, RECORD_COLS, BlockRow, QuarantineRow, RecordRow
from gateway.journal.schema import connect_sqlite


class Journal:
    """One connection; the gateway opens one per thread (SQLite connections are not shared)."""

    def __init__(self, path: Path | str, *, synchronous: str = "FULL", readonly: bool = False,
                 quarantine_raw_bytes: int = 1024, quarantine_max_rows: int = 100_000,
                 busy_timeout_ms: int = 10_000) -> None:
        self.path = Path(path)
        self.quarantine_raw_bytes = quarantine_raw_bytes
        self.quarantine_max_rows = quarantine_max_rows
        try:
            self.db = connect_sqlite(self.path, readonly=readonly, synchronous=synchronous)
            if not readonly:
                schema.create(self.db)
            self.db.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        except sqlite3.Error as exc:
            raise JournalError(f"{self.path}: cannot open journal: {exc}") from exc

    def close(self) -> None:
        self.db.close()

    # -- meta ---------------------------------------------------------------------------
    def meta(self, k: str) -> str | None:
        row = self.db.execute("SELECT v FROM meta WHERE k=?", (k,)).fetchone()
        return None if row is None else row[0]

    def bind_identity(self, gateway_id: str, public_key: str) -> None:
        """A journal belongs to one gateway id and key; refuse to mix two records' origins."""
        for k, v in (("gateway_id", gateway_id), ("public_key", public_key)):
            have = self.meta(k)
            if have is None:
                self.db.execute("INSERT INTO meta VALUES (?, ?)", (k, v))
            elif k == "public_key" and self.key_rotations():
                self._check_rotated_key(v)
            elif have != v:
                raise JournalError(f"{self.path}: journal belongs to {k}={have[:20]!r}, not {v[:20]!r}")

    # -- key rotations (gateway/chain/rotation.py) ----------------------------------------------
    # meta public_key stays the gateway's first key (what auditors pin, what bundles carry);
    # each rotation names the key that signs the blocks after its last_block.
    def key_rotations(self) -> list[tuple[int, int, str, str]]:
        """(record seq, last block of the old key, old key, new key), oldest first."""
        if not schema.has_table(self.db, "key_rotations"):
            return []  # a journal that never rotated (or predates rotation) has no table
        return [(int(s), int(b), str(old), str(new)) for s, b, old, new in self.db.execute(
            "SELECT seq, last_block, old_key, new_key FROM key_rotations ORDER BY seq")]

    def current_key(self) -> str | None:
        """The public key that signs the next block: the newest rotation's, else the first."""
        rot = self.key_rotations()
        return rot[-1][3] if rot else self.meta("public_key")

    def _check_rotated_key(self, key: str) -> None:
        rot = self.key_rotations()
        if key == rot[-1][3]:
            return
        retired = [(lb, old) for _, lb, old, _ in rot if old == key]
        if retired:
            raise JournalError(f"{self.path}: key {key[:16]}… was rotated out after block {retired[-1][0]}; "
                               f"the journal's current key is {rot[-1][3][:16]}… (install that key file)")
        raise JournalError(f"{self.path}: journal belongs to public_key={rot[-1][3][:20]!r}, not {key[:20]!r} "
                           f"(and that key is in none of its {len(rot)} rotation(s))")

    @contextmanager
    def transaction(self, what: str) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` as one unit, or ROLLBACK and a JournalError naming
        ``what`` (callers must then not acknowledge). A failed COMMIT (disk full) may already
        have rolled back, so the ROLLBACK's own error is ignored; any other exception rolls
        back too and propagates unchanged, so no transaction is ever left open."""
        db = self.db
        try:
            db.execute("BEGIN IMMEDIATE")
            yield db
            db.execute("COMMIT")
        except BaseException as exc:
            try:
                db.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            if isinstance(exc, sqlite3.Error):
                raise JournalError(f"{what} failed: {exc}") from exc
            raise

    def commit_rotation(self, record: RecordRow, block: BlockRow, old_key: str, new_key: str) -> None:
        """The rotation record, the block that holds it (signed by the old key) and the key
        history row in ONE transaction: a crash can never leave a rotation that the new key
        would seal, nor a key history that no signed record backs."""
        self.db.execute(schema.ROTATIONS_SCHEMA)
        with self.transaction("recording the key rotation") as db:
            db.execute("INSERT INTO records VALUES (?,?,?,?,?,?,?,?)",
                       (record.seq, record.time_ms, record.type, record.sensor, record.kind, record.digest,
                        record.body, record.sig))
            h = block.header_obj
            db.execute("INSERT INTO blocks VALUES (?,?,?,?,?,?,?,?,?,?)",
                       (block.block, block.first_seq, block.last_seq, block.header, block.sig, block.hash,
                        block.sealed_ms, 1, h["first_time_ms"], h["last_time_ms"]))
            db.execute("INSERT INTO key_rotations VALUES (?,?,?,?)", (record.seq, block.block, old_key, new_key))

    # -- ingest (single writer) ------------------------------------------------------------
    def next_seq(self) -> int:
        row = self.db.execute("SELECT MAX(seq) FROM records").fetchone()
        return 0 if row[0] is None else row[0] + 1

    def sensor_counters(self) -> dict[str, tuple[int, int]]:
        """sensor -> (highest accepted counter, bitmap of accepted counters below it)."""
        return {s: (c, int.from_bytes(w, "big") if w else 1)
                for s, c, w in self.db.execute("SELECT sensor, counter, window FROM sensor_state")}

    def has_digest(self, digest: bytes) -> bool:
        return self.db.execute("SELECT 1 FROM records WHERE digest=? LIMIT 1", (digest,)).fetchone() is not None

    def commit_batch(self, records: Sequence[RecordRow], quarantine: Sequence[QuarantineRow],
                     counters: dict[str, tuple[int, int]], counts: dict[str, int]) -> None:
        """Everything of one group commit in one fsynced transaction, or nothing.

        Raises JournalError (disk full, I/O); the caller must then not acknowledge.
        """
        with self.transaction("journal commit") as db:
            if records:
                db.executemany(
                    "INSERT INTO records VALUES (?,?,?,?,?,?,?,?)",
                    [(r.seq, r.time_ms, r.type, r.sensor, r.kind, r.digest, r.body, r.sig) for r in records],
                )
            if counters:
                db.executemany(
                    "INSERT INTO sensor_state VALUES (?, ?, ?) ON CONFLICT(sensor) DO UPDATE SET "
                    "counter=excluded.counter, window=excluded.window",
                    [(s, top, seen.to_bytes(512, "big")) for s, (top, seen) in counters.items()],
                )
            if quarantine:
                self._quarantine(quarantine)
            if counts:
                db.executemany(
                    "INSERT INTO counters VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET n=n+excluded.n",
                    list(counts.items()),
                )

    def _quarantine(self, rows: Sequence[QuarantineRow]) -> None:
        cap = self.quarantine_raw_bytes
        self.db.executemany(
            "INSERT INTO quarantine (time_ms, source, reason, detail, raw, raw_len) VALUES (?,?,?,?,?,?)",
            [(q.time_ms, q.source, q.reason, q.detail[:500], q.raw[:cap], q.raw_len) for q in rows],
        )
        self.db.executemany(
            "INSERT INTO quarantine_counts VALUES (?, 1) ON CONFLICT(reason) DO UPDATE SET n=n+1",
            [(q.reason,) for q in rows],
        )
        # Bounded: a flood of garbage must not fill the disk. Counts are kept forever;
        # the oldest raw samples go first.
        (n,) = self.db.execute("SELECT COUNT(*) FROM quarantine").fetchone()
        if n > self.quarantine_max_rows:
            self.db.execute(
                "DELETE FROM quarantine WHERE id IN (SELECT id FROM quarantine ORDER BY id LIMIT ?)",
                (n - self.quarantine_max_rows,),
            )

    def add_quarantine(self, rows: Sequence[QuarantineRow]) -> None:
        self.commit_batch((), rows, {}, {})

    # -- blocks ---------------------------------------------------------------------------
    def last_block(self) -> BlockRow | None:
        row = self.db.execute(
            f"SELECT {BLOCK_COLS} FROM blocks ORDER BY block DESC LIMIT 1"
        ).fetchone()
        return None if row is None else BlockRow(*row)

    def unsealed_span(self, after_seq: int) -> tuple[int, int | None]:
        """(count, first time_ms) of records after ``after_seq``."""
        n, t = self.db.execute("SELECT COUNT(*), MIN(time_ms) FROM records WHERE seq > ?", (after_seq,)).fetchone()
        return n, t

    def records_range(self, first: int, last: int) -> list[RecordRow]:
        return [RecordRow(*r) for r in self.db.execute(
            f"SELECT {RECORD_COLS} FROM records WHERE seq BETWEEN ? AND ? ORDER BY seq",
            (first, last))]

    def has_record(self, seq: int) -> bool:
        return self.db.execute("SELECT 1 FROM records WHERE seq=?", (seq,)).fetchone() is not None

    def insert_block(self, b: BlockRow, *, urgent: bool = False) -> None:
        with self.transaction("block insert"):
            h = b.header_obj
            self.db.execute("INSERT INTO blocks VALUES (?,?,?,?,?,?,?,?,?,?)",
                            (b.block, b.first_seq, b.last_seq, b.header, b.sig, b.hash, b.sealed_ms, int(urgent),
                             h["first_time_ms"], h["last_time_ms"]))

    def block(self, n: int) -> BlockRow | None:
        row = self.db.execute(
            f"SELECT {BLOCK_COLS} FROM blocks WHERE block=?", (n,)
        ).fetchone()
        return None if row is None else BlockRow(*row)

    def block_of_seq(self, seq: int) -> BlockRow | None:
        row = self.db.execute(
            f"SELECT {BLOCK_COLS} FROM blocks "
            "WHERE first_seq <= ? ORDER BY first_seq DESC LIMIT 1", (seq,)
        ).fetchone()
        if row is None or row[2] < seq:
            return None
        return BlockRow(*row)

    def blocks_between(self, lo: int, hi: int) -> Iterator[BlockRow]:
        for row in self.db.execute(
            f"SELECT {BLOCK_COLS} FROM blocks WHERE block BETWEEN ? AND ? ORDER BY block",
            (lo, hi),
        ):
            yield BlockRow(*row)

    def blocks_overlapping(self, from_ms: int, to_ms: int) -> tuple[int, int] | None:
        """(lowest, highest) block whose time span overlaps [from_ms, to_ms]."""
        row = self.db.execute("SELECT MIN(block), MAX(block) FROM blocks "
                              "WHERE last_time_ms >= ? AND first_time_ms <= ?", (from_ms, to_ms)).fetchone()
        return None if row[0] is None else (row[0], row[1])

    def block_after(self, t_ms: int) -> int | None:
        """The first block that starts after ``t_ms`` (so a range bundle shows what followed it)."""
        row = self.db.execute("SELECT MIN(block) FROM blocks WHERE first_time_ms > ?", (t_ms,)).fetchone()
        return None if row[0] is None else int(row[0])

    def block_before(self, t_ms: int) -> int | None:
        """The last block that starts before ``t_ms`` (so a range bundle shows what preceded it)."""
        row = self.db.execute("SELECT MAX(block) FROM blocks WHERE first_time_ms < ?", (t_ms,)).fetchone()
        return None if row[0] is None else int(row[0])

    def sensor_seqs(self, sensor: str, from_ms: int, to_ms: int, max_seq: int) -> Sequence[int]:
        """Ascending, straight from the cursor into 8 bytes per seq (a list of ints takes ~36:
        a 1M-record range export held 36 MB of seqs before the first byte was written)."""
        return array("q", (r[0] for r in self.db.execute(
            "SELECT seq FROM records WHERE sensor=? AND time_ms BETWEEN ? AND ? AND seq <= ? ORDER BY seq",
            (sensor, from_ms, to_ms, max_seq))))

    def latest_anchor(self) -> tuple[int, dict[str, Any], int] | None:
        row = self.db.execute("SELECT block, anchor, time_ms FROM anchors ORDER BY block DESC, id LIMIT 1").fetchone()
        return None if row is None else (row[0], json.loads(row[1]), row[2])

    # -- outbox and anchors ---------------------------------------------------------------------
    def open_outbox(self) -> list[tuple[int, int, bytes, str, dict[str, Any], str, int]]:
        return [(i, b, bytes(h), k, json.loads(s), st, a) for i, b, h, k, s, st, a in self.db.execute(
            "SELECT id, block, header_hash, kind, submission, state, attempts FROM outbox "
            "WHERE state IN ('prepared','submitted') ORDER BY id")]

    def covered_block(self) -> int:
        """Highest block whose header is anchored or on its way (so it needs no new anchor)."""
        row = self.db.execute(
            "SELECT MAX(block) FROM outbox WHERE state IN ('prepared','submitted','confirmed')").fetchone()
        return -1 if row[0] is None else row[0]

    def urgent_after(self, block: int) -> bool:
        """An alarm's block waits for no anchoring interval."""
        row = self.db.execute("SELECT 1 FROM blocks WHERE block > ? AND urgent = 1 LIMIT 1", (block,)).fetchone()
        return row is not None

    def last_anchor_started_ms(self) -> int:
        row = self.db.execute("SELECT MAX(created_ms) FROM outbox WHERE state != 'dropped'").fetchone()
        return -(2**62) if row[0] is None else int(row[0])

    def add_outbox(self, block: int, header_hash: bytes, kind: str, submission: dict[str, Any], now_ms: int) -> int:
        cur = self.db.execute(
            "INSERT INTO outbox (block, header_hash, kind, submission, state, created_ms, updated_ms) "
            "VALUES (?,?,?,?, 'prepared', ?, ?)",
            (block, header_hash, kind, json.dumps(submission, sort_keys=True), now_ms, now_ms))
        return int(cur.lastrowid or 0)

    def update_outbox(self, oid: int, *, state: str, now_ms: int, submission: dict[str, Any] | None = None,
                      reason: str = "", attempt: bool = False) -> None:
        sets = "state=?, updated_ms=?, reason=?, attempts=attempts+?"
        args: list[Any] = [state, now_ms, reason, int(attempt)]
        if submission is not None:
            sets += ", submission=?"
            args.append(json.dumps(submission, sort_keys=True))
        self.db.execute(f"UPDATE outbox SET {sets} WHERE id=?", (*args, oid))

    def confirm_anchor(self, oid: int, block: int, header_hash: bytes, kind: str, anchor: dict[str, Any],
                       time_ms: int, now_ms: int) -> None:
        with self.transaction(f"recording the anchor of block {block}"):
            self.db.execute("INSERT INTO anchors (block, header_hash, kind, anchor, time_ms) VALUES (?,?,?,?,?)",
                            (block, header_hash, kind, json.dumps(anchor, sort_keys=True), time_ms))
            self.db.execute("UPDATE outbox SET state='confirmed', updated_ms=? WHERE id=?", (now_ms, oid))

    def anchor_covering(self, block: int) -> tuple[int, dict[str, Any], int] | None:
        """The earliest confirmed anchor at or after ``block``: (anchored block, anchor, time)."""
        row = self.db.execute(
            "SELECT block, anchor, time_ms FROM anchors WHERE block >= ? ORDER BY block, id LIMIT 1", (block,)
        ).fetchone()
        return None if row is None else (row[0], json.loads(row[1]), row[2])

    # -- status -----------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        q = self.db.execute
        last = self.last_block()
        anchored = q("SELECT MAX(block), MAX(time_ms) FROM anchors").fetchone()
        sealed_to = -1 if last is None else last.last_seq
        return {
            "records": q("SELECT COUNT(*) FROM records").fetchone()[0],
            "next_seq": self.next_seq(),
            "blocks": 0 if last is None else last.block + 1,
            "unsealed_records": q("SELECT COUNT(*) FROM records WHERE seq > ?", (sealed_to,)).fetchone()[0],
            "anchored_block": -1 if anchored[0] is None else anchored[0],
            "last_anchor_ms": anchored[1],
            "unanchored_blocks": 0 if last is None else last.block - (-1 if anchored[0] is None else anchored[0]),
            "outbox_open": q("SELECT COUNT(*) FROM outbox WHERE state IN ('prepared','submitted')").fetchone()[0],
            "quarantine": dict(q("SELECT reason, n FROM quarantine_counts ORDER BY reason")),
            "counters": dict(q("SELECT name, n FROM counters ORDER BY name")),
        }

    def integrity_check(self) -> str:
        return str(self.db.execute("PRAGMA integrity_check").fetchone()[0])


    # -- upstream forwarding (gateway/forward; the queries are in forwarding.py) --------------
    def set_forwarding(self, enabled: bool) -> None:
        """Recorded at every gateway start, so ``archived_seq`` knows whether the archive's
        acknowledgement binds retention (cursors of a disabled forwarder are kept for later)."""
        self.set_meta("upstream_enabled", "1" if enabled else "0")

    def set_meta(self, k: str, v: str) -> None:
        self.db.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v=excluded.v", (k, v))

    def forward_cursors(self) -> dict[str, tuple[int, int]]:
        """stream -> (sent, archived); -1 = nothing yet."""
        return forwarding.cursors(self.db)

    def save_forward_cursors(self, sent: dict[str, int] | None = None, archived: dict[str, int] | None = None) -> None:
        """One fsynced transaction for every cursor that moved (the forwarder calls this once
        per network round, not per acknowledgement)."""
        with self.transaction("saving the upstream cursors") as tx:
            forwarding.save_cursors(tx, sent or {}, archived or {})

    def archived_seq(self) -> int | None:
        """The highest record seq the upstream archive acknowledged as stored (every record
        at or below it is archived), for retention: with forwarding enabled, pruning may
        remove only records at or below it. ``None``: forwarding is disabled (retention
        needs no upstream acknowledgement); ``-1``: enabled, nothing archived yet."""
        if self.meta("upstream_enabled") != "1":
            return None
        return forwarding.archived_records(self.db)

    def forward_records(self, after: int, limit: int, *,
                        alarms_only: bool = False) -> list[tuple[int, int, bytes, bytes]]:
        """(seq, time_ms, body, sig) after ``after`` in seq order."""
        return forwarding.records_after(self.db, after, limit, alarms_only=alarms_only)

    def forward_blocks(self, after: int, upto_seq: int, limit: int) -> list[BlockRow]:
        """Blocks after ``after`` whose records all lie at or below ``upto_seq``."""
        return forwarding.blocks_after(self.db, after, upto_seq, limit)

    def forward_anchors(self, after: int, upto_block: int, limit: int) -> list[tuple[int, bytes, str, str, int]]:
        """(block, header_hash, kind, anchor JSON text, time_ms) of anchored blocks in
        (``after``, ``upto_block``], every anchor of a block together."""
        return forwarding.anchors_after(self.db, after, upto_block, limit)

    # -- what export asks besides blocks and records (gateway.chain.source.BundleSource) -------
    def identity(self) -> tuple[str, str] | None:
        """(gateway id, first public key): what every bundle carries; None before the first run."""
        gw, key = self.meta("gateway_id"), self.meta("public_key")
        return None if gw is None or key is None else (gw, key)

    def pruned_through(self) -> int:
        """Highest block whose records retention deleted (-1: nothing pruned)."""
        return pruning.pruned_through(self.db)

    def pruned_note(self, seq: int) -> str | None:
        """Why ``seq`` is gone, for the user who asked for it (None: it was not pruned)."""
        return pruning.pruned_note(self.db, seq)

    def horizon(self) -> dict[str, Any] | None:
        """Where the kept journal starts (``pruning.horizon``; None: nothing pruned)."""
        return pruning.horizon(self.db)
