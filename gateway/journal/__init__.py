"""The journal: the one SQLite file where every record, quarantined message, block and
anchor of a gateway is written, durably, before anything is acknowledged.

The package owns the file: ``schema`` (tables, connections, migration), ``rows`` (the row
types), ``journal`` (``Journal``: the writer and the reads export needs), ``forwarding``
(upstream cursors and backlog), ``pruning`` (retention's queries and guarded delete) and
``reads`` (read-only questions for the dashboard, /metrics and doctor). No SQL runs on the
gateway side outside it, and nothing outside reaches for a journal's connection
(tests/test_layering.py); the archive's store owns its own database the same way.
"""

from __future__ import annotations

from gateway.journal.journal import Journal
from gateway.journal.rows import BlockRow, QuarantineRow, RecordRow
from gateway.journal.schema import (
    FORWARD_STREAMS,
    SCHEMA_VERSION,
    UPSTREAM_TOPICS,
    Readable,
    connect_sqlite,
    is_disk_full,
)

__all__ = ["FORWARD_STREAMS", "SCHEMA_VERSION", "UPSTREAM_TOPICS", "BlockRow", "Journal", "QuarantineRow",
           "Readable", "RecordRow", "connect_sqlite", "is_disk_full"]
