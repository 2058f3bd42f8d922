"""The archive's tables, one DDL text for both backends.

``{int}``, ``{blob}`` and ``{serial}`` are filled per backend (``SqlStore._types``), so
SQLite and PostgreSQL create the same tables and run the same SQL over them.

``blocks.verified``: ``PENDING`` = 0 (signature and chain checked, records not all here
yet), ``VERIFIED`` = 1 (its RFC 9162 root recomputed from the stored records),
``HEADER_ONLY`` = 2 (header verified but some of its records were pruned at the gateway
before they were ever forwarded, ``skipped_from``, so the root cannot be recomputed here).
"""

from __future__ import annotations

PENDING, VERIFIED, HEADER_ONLY = 0, 1, 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS gateways (
    id TEXT PRIMARY KEY,
    public_key TEXT NOT NULL,
    profile TEXT,               -- canonical profile text (docs/upstream.md hello), newest valid
    profile_sig TEXT,
    profile_ms {int},
    enrolled_ms {int} NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    gateway TEXT NOT NULL,
    seq {int} NOT NULL,
    time_ms {int} NOT NULL,
    type TEXT NOT NULL,
    sensor TEXT,
    kind TEXT,
    body {blob} NOT NULL,       -- the canonical bytes the gateway signed, as received
    sig {blob} NOT NULL,
    PRIMARY KEY (gateway, seq)
);
CREATE INDEX IF NOT EXISTS records_sensor_time ON records(gateway, sensor, time_ms);
CREATE TABLE IF NOT EXISTS blocks (
    gateway TEXT NOT NULL,
    block {int} NOT NULL,
    first_seq {int} NOT NULL,
    last_seq {int} NOT NULL,
    header {blob} NOT NULL,
    sig {blob} NOT NULL,
    hash {blob} NOT NULL,
    sealed_ms {int} NOT NULL,
    first_time_ms {int} NOT NULL,
    last_time_ms {int} NOT NULL,
    verified {int} NOT NULL DEFAULT 0,
    PRIMARY KEY (gateway, block)
);
CREATE INDEX IF NOT EXISTS blocks_first_seq ON blocks(gateway, first_seq);
CREATE TABLE IF NOT EXISTS anchors (
    gateway TEXT NOT NULL,
    block {int} NOT NULL,
    header_hash {blob} NOT NULL,
    kind TEXT NOT NULL,
    anchor TEXT NOT NULL,       -- the gateway journal's anchor object, JSON with sorted keys
    digest {blob} NOT NULL,     -- SHA-256 of anchor: the key (a long text key exceeds PostgreSQL's index rows)
    time_ms {int} NOT NULL,
    PRIMARY KEY (gateway, block, kind, digest)
);
CREATE TABLE IF NOT EXISTS skips (
    gateway TEXT NOT NULL,
    first_seq {int} NOT NULL,
    last_seq {int} NOT NULL,
    PRIMARY KEY (gateway, first_seq)
);
CREATE TABLE IF NOT EXISTS progress (
    gateway TEXT PRIMARY KEY,
    records {int} NOT NULL,     -- highest seq with every seq at or below it stored (or skipped)
    blocks {int} NOT NULL       -- highest block with every block from the chain's start verified
);
CREATE TABLE IF NOT EXISTS rejections (
    id {serial},
    time_ms {int} NOT NULL,
    gateway TEXT NOT NULL,
    stream TEXT NOT NULL,
    ref TEXT NOT NULL,
    reason TEXT NOT NULL,       -- stable code (docs/upstream.md)
    detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS key_rotations (
    gateway TEXT NOT NULL,
    seq {int} NOT NULL,         -- the key_rotation record (stored in records, signed by old_key)
    last_block {int} NOT NULL,  -- the last block old_key signs (new_key signs every later one)
    old_key TEXT NOT NULL,
    new_key TEXT NOT NULL,
    PRIMARY KEY (gateway, seq)
);
CREATE TABLE IF NOT EXISTS counters (
    gateway TEXT NOT NULL,
    name TEXT NOT NULL,
    n {int} NOT NULL,
    PRIMARY KEY (gateway, name)
);
"""
