"""The embedded archive backend: one SQLite file, durable as the gateway's journal.

WAL with ``synchronous=FULL`` (``connect_sqlite``); ``tx()`` is ``BEGIN IMMEDIATE`` so a
write transaction never upgrades (and never deadlocks) halfway.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from gateway.archive.store.rows import StoreError
from gateway.archive.store.sql import SqlStore
from gateway.journal import connect_sqlite


class SqliteStore(SqlStore):
    kind = "sqlite"
    _types: ClassVar[dict[str, str]] = {"int": "INTEGER", "blob": "BLOB", "serial": "INTEGER PRIMARY KEY"}

    def __init__(self, path: Path | str, *, readonly: bool = False, rejections_max_rows: int = 100_000,
                 busy_timeout_ms: int = 10_000) -> None:
        super().__init__(rejections_max_rows)
        self.path = Path(path)
        try:
            self.db = connect_sqlite(self.path, readonly=readonly)
            if not readonly:
                for stmt in self._schema():
                    self.db.execute(stmt)
            self.db.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open the archive: {exc}") from exc

    def describe(self) -> str:
        return f"sqlite {self.path}"

    def close(self) -> None:
        self.db.close()

    def _exec(self, sql: str, args: Sequence[Any] = ()) -> Any:
        try:
            return self.db.execute(sql, tuple(args))
        except sqlite3.Error as exc:
            raise StoreError(f"archive store: {exc}") from exc

    def _many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            self.db.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise StoreError(f"archive store: {exc}") from exc

    @contextmanager
    def tx(self) -> Iterator[None]:
        if self._in_tx:  # nested: part of the outer transaction
            yield
            return
        self._exec("BEGIN IMMEDIATE")
        self._in_tx = True
        try:
            yield
            self._exec("COMMIT")
        except BaseException:
            try:
                self.db.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # a failed COMMIT may already have rolled back
            raise
        finally:
            self._in_tx = False
