"""Archive storage: one interface, two backends (SQLite embedded, PostgreSQL at scale).

Both run the same SQL (``?`` placeholders, rewritten for psycopg) over the same tables, so
the consumer, ``status`` and the exporter cannot tell them apart, and the tests run every
store test on both. Durability as in the gateway's journal: SQLite in WAL with
``synchronous=FULL``; PostgreSQL with its defaults (``fsync``, ``synchronous_commit=on``).
The consumer acknowledges a message only after ``tx()`` has committed it.

``blocks.verified``: 0 = pending (signature and chain checked, records not all here yet),
1 = verified (its RFC 9162 root recomputed from the stored records), 2 = header verified
but some of its records were pruned at the gateway before they were ever forwarded
(``skipped_from``), so the root cannot be recomputed here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.archive.store.postgres import PostgresStore
from gateway.archive.store.rows import GatewayRow, Rejection, Store, StoredBlock, StoreError
from gateway.archive.store.schema import HEADER_ONLY, PENDING, VERIFIED
from gateway.archive.store.sql import SqlStore
from gateway.archive.store.sqlite import SqliteStore

__all__ = ["HEADER_ONLY", "PENDING", "VERIFIED", "GatewayRow", "PostgresStore", "Rejection", "SqlStore",
           "SqliteStore", "Store", "StoreError", "StoredBlock", "open_store"]


def open_store(store_cfg: Any, *, readonly: bool = False,
               rejections_max_rows: int = 100_000) -> SqliteStore | PostgresStore:
    if store_cfg.postgres is not None:
        return PostgresStore(store_cfg.postgres, rejections_max_rows=rejections_max_rows, readonly=readonly)
    if readonly and not Path(store_cfg.sqlite).exists():
        raise StoreError(f"{store_cfg.sqlite} does not exist (has the archive run?)")
    return SqliteStore(store_cfg.sqlite, readonly=readonly, rejections_max_rows=rejections_max_rows)
