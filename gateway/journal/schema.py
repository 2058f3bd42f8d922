"""The journal's SQLite schema, how a connection to it is opened, and how a journal file is
created or brought up to date: the one place that knows the tables.

Every other module of ``gateway.journal`` reads and writes these tables; nothing outside
the package does (tests/test_layering.py). The on-disk format is ``SCHEMA_VERSION`` 1:
tables are only ever added (``CREATE ... IF NOT EXISTS``) or widened by a nullable column,
so a journal written by any earlier gateway opens unchanged.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Protocol

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY,
    time_ms INTEGER NOT NULL,
    type TEXT NOT NULL,
    sensor TEXT,
    kind TEXT,
    digest BLOB,            -- SHA-256 of the source message, to recognise redeliveries
    body BLOB NOT NULL,     -- canonical (RFC 8785) record bytes: what is signed and hashed
    sig BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS records_sensor_time ON records(sensor, time_ms);
CREATE INDEX IF NOT EXISTS records_digest ON records(digest);
CREATE TABLE IF NOT EXISTS sensor_state (sensor TEXT PRIMARY KEY, counter INTEGER NOT NULL, window BLOB);
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY,
    time_ms INTEGER NOT NULL,
    source TEXT NOT NULL,   -- transport and topic/port
    reason TEXT NOT NULL,   -- stable code
    detail TEXT NOT NULL,   -- human message naming the field
    raw BLOB NOT NULL,      -- first bytes of the payload (bounded)
    raw_len INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS quarantine_counts (reason TEXT PRIMARY KEY, n INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, n INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (
    block INTEGER PRIMARY KEY,
    first_seq INTEGER NOT NULL UNIQUE,
    last_seq INTEGER NOT NULL,
    header BLOB NOT NULL,   -- canonical header bytes
    sig BLOB NOT NULL,
    hash BLOB NOT NULL UNIQUE,
    sealed_ms INTEGER NOT NULL,
    urgent INTEGER NOT NULL DEFAULT 0,
    first_time_ms INTEGER NOT NULL,
    last_time_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    block INTEGER NOT NULL,
    header_hash BLOB NOT NULL,
    kind TEXT NOT NULL,
    submission TEXT NOT NULL,
    state TEXT NOT NULL,    -- prepared | submitted | confirmed | failed | dropped
    attempts INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    reason TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS anchors (
    id INTEGER PRIMARY KEY,
    block INTEGER NOT NULL,
    header_hash BLOB NOT NULL,
    kind TEXT NOT NULL,
    anchor TEXT NOT NULL,
    time_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS anchors_block ON anchors(block);
CREATE TRIGGER IF NOT EXISTS records_append_only BEFORE UPDATE ON records
    BEGIN SELECT RAISE(ABORT, 'records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS blocks_append_only BEFORE UPDATE ON blocks
    BEGIN SELECT RAISE(ABORT, 'blocks are append-only'); END;
"""


# Retention (gateway/chain/retention.py). A DELETE on records is refused unless the deleting
# transaction itself put a row in prune_guard (and removes it before COMMIT): a stray
# DELETE in any other code path fails loudly instead of silently losing readings. The
# guard is a real table because a trigger on a main-schema table cannot see TEMP tables.
# It protects against bugs, not a hostile operator (who could drop triggers; the header
# chain and the anchors are what make that detectable).
RETENTION_SCHEMA = """
CREATE TABLE IF NOT EXISTS prune_guard (run INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS pruned (
    id INTEGER PRIMARY KEY,
    run_ms INTEGER NOT NULL,      -- the run this transaction belonged to (its start time)
    time_ms INTEGER NOT NULL,     -- when this transaction committed
    first_block INTEGER NOT NULL,
    last_block INTEGER NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    records INTEGER NOT NULL,
    days INTEGER NOT NULL,        -- the retention that allowed it
    cutoff_ms INTEGER NOT NULL,   -- blocks ending before this (and anchored before it) went
    archived_seq INTEGER          -- the upstream archive's acknowledged seq, NULL without forwarding
);
CREATE TRIGGER IF NOT EXISTS records_delete_by_retention_only BEFORE DELETE ON records
    WHEN NOT EXISTS (SELECT 1 FROM prune_guard)
    BEGIN SELECT RAISE(ABORT, 'records are deleted only by retention (gateway/chain/retention.py)'); END;
CREATE TRIGGER IF NOT EXISTS blocks_kept BEFORE DELETE ON blocks
    BEGIN SELECT RAISE(ABORT, 'block headers are kept forever'); END;
CREATE TRIGGER IF NOT EXISTS anchors_kept BEFORE DELETE ON anchors
    BEGIN SELECT RAISE(ABORT, 'anchors are kept forever'); END;
CREATE TRIGGER IF NOT EXISTS pruned_append_only BEFORE UPDATE ON pruned
    BEGIN SELECT RAISE(ABORT, 'the prune log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS pruned_kept BEFORE DELETE ON pruned
    BEGIN SELECT RAISE(ABORT, 'the prune log is kept forever'); END;
"""

# Upstream forwarding (gateway/forward, docs/upstream.md): one row per stream (records,
# alarms, blocks, anchors). ``sent``: everything at or below it was PUBACKed by the upstream
# broker (over HTTPS: answered 2xx); ``archived``: the archive's own acknowledgement, the only cursor retention may
# trust. The partial index holds only alarm records, so the forwarder finds a new alarm
# among a million readings at once while ingest pays nothing for readings.
FORWARD_SCHEMA = """
CREATE TABLE IF NOT EXISTS forward_state (stream TEXT PRIMARY KEY, sent INTEGER NOT NULL, archived INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS records_alarms ON records(seq) WHERE type = 'alarm';
"""
FORWARD_STREAMS = ("records", "alarms", "blocks", "anchors")
# The topic suffixes a gateway publishes under (docs/upstream.md): the streams plus its hello.
UPSTREAM_TOPICS = ("hello", *FORWARD_STREAMS)

# Key rotations (gateway/chain/rotation.py): created by the first rotation, so a journal that
# never rotated (or predates rotation) has no such table.
ROTATIONS_SCHEMA = ("CREATE TABLE IF NOT EXISTS key_rotations (seq INTEGER PRIMARY KEY, "
                    "last_block INTEGER NOT NULL UNIQUE, old_key TEXT NOT NULL, new_key TEXT NOT NULL)")


def connect_sqlite(path: Path, *, readonly: bool, synchronous: str = "FULL") -> sqlite3.Connection:
    """A connection as the journal and the archive use them: autocommit mode (every
    transaction is an explicit BEGIN IMMEDIATE … COMMIT), WAL with ``synchronous`` for a
    writer, and for a reader a read-only URI, so a reader can never create or change the file."""
    if readonly:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    return db


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and (
        "full" in str(exc).lower() or getattr(exc, "sqlite_errorcode", 0) == 13
    )


def create(db: sqlite3.Connection) -> None:
    """Create every table a writer needs (idempotent) and add the columns later versions
    introduced, so an older journal file keeps working in place."""
    db.executescript(SCHEMA)
    db.executescript(RETENTION_SCHEMA)
    db.executescript(FORWARD_SCHEMA)
    cols = [r[1] for r in db.execute("PRAGMA table_info(sensor_state)")]
    if "window" not in cols:  # journals from before the anti-replay window
        db.execute("ALTER TABLE sensor_state ADD COLUMN window BLOB")
    db.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", ("schema_version", str(SCHEMA_VERSION)))


def has_table(db: sqlite3.Connection, name: str) -> bool:
    """A journal opened read-only may predate a table (retention, forwarding, rotations)."""
    return db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchone() is not None


class Opened(Protocol):
    """An open journal (``Journal``): the read helpers of this package take one of these or
    a bare read-only connection (``reads.open_readonly``: the dashboard's and /metrics' own),
    so ``traceseal status`` and a scrape ask the same questions through the same code."""

    @property
    def db(self) -> sqlite3.Connection: ...


Readable = Opened | sqlite3.Connection


def connection(src: Readable) -> sqlite3.Connection:
    return src if isinstance(src, sqlite3.Connection) else src.db
