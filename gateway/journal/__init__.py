"""The journal: the one SQLite file where every record, quarantined message, block and
anchor of a gateway is written, durably, before anything is acknowledged.

``journal`` holds the schema, the writer (``Journal``) and the reads export and
forwarding need. (Raw SQL elsewhere, in retention, forward.state and web.queries, moves
here in a later step.)
"""

from __future__ import annotations

from gateway.journal.journal import (
    FORWARD_STREAMS,
    SCHEMA_VERSION,
    UPSTREAM_TOPICS,
    BlockRow,
    Journal,
    QuarantineRow,
    RecordRow,
    connect_sqlite,
    is_disk_full,
)

__all__ = ["FORWARD_STREAMS", "SCHEMA_VERSION", "UPSTREAM_TOPICS", "BlockRow", "Journal", "QuarantineRow",
           "RecordRow", "connect_sqlite", "is_disk_full"]
