"""The archive backend at scale: PostgreSQL through psycopg (an optional install).

PostgreSQL's defaults give durability (``fsync``, ``synchronous_commit=on``). The session
survives a server restart: outside a transaction a dropped connection is reopened (and a
read retried once); inside one the error stops the transaction, as it must.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

from gateway.archive.store.rows import StoreError
from gateway.archive.store.sql import SqlStore


class PostgresStore(SqlStore):
    kind = "postgres"
    _types: ClassVar[dict[str, str]] = {"int": "BIGINT", "blob": "BYTEA", "serial": "BIGSERIAL PRIMARY KEY"}

    def __init__(self, dsn: str, *, rejections_max_rows: int = 100_000, readonly: bool = False) -> None:
        super().__init__(rejections_max_rows)
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise StoreError("PostgreSQL store needs psycopg: pip install 'traceseal[archive-pg]'") from exc
        self._psycopg = psycopg
        self.dsn = dsn
        try:
            self.db = psycopg.connect(dsn, autocommit=True)
            if not readonly:
                with self.tx():
                    # one schema creator at a time (two archives starting together)
                    self._exec("SELECT pg_advisory_xact_lock(7253)")
                    for stmt in self._schema():
                        self._exec(stmt)
        except psycopg.Error as exc:
            raise StoreError(f"cannot open the PostgreSQL archive: {exc}") from exc

    def describe(self) -> str:
        return "postgres"

    def close(self) -> None:
        self.db.close()

    def _reconnect(self) -> None:
        """After the server restarted: a new session (never inside a transaction, which is lost anyway)."""
        if self.db.closed or self.db.broken:
            try:
                self.db = self._psycopg.connect(self.dsn, autocommit=True)
            except self._psycopg.Error as exc:
                raise StoreError(f"cannot reconnect to PostgreSQL: {exc}") from exc

    def _exec(self, sql: str, args: Sequence[Any] = ()) -> Any:
        if not self._in_tx:
            self._reconnect()
        try:
            return self.db.execute(sql.replace("?", "%s"), tuple(args))
        except self._psycopg.Error as exc:
            if self._in_tx or not self.db.broken:
                raise StoreError(f"archive store: {exc}") from exc
        self._reconnect()  # a read on a session the server dropped: once more on a new one
        try:
            return self.db.execute(sql.replace("?", "%s"), tuple(args))
        except self._psycopg.Error as exc:
            raise StoreError(f"archive store: {exc}") from exc

    def _many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            with self.db.cursor() as cur:
                cur.executemany(sql.replace("?", "%s"), rows)
        except self._psycopg.Error as exc:
            raise StoreError(f"archive store: {exc}") from exc

    @contextmanager
    def tx(self) -> Iterator[None]:
        if self._in_tx:
            yield
            return
        self._reconnect()
        self._in_tx = True
        try:
            with self.db.transaction():
                yield
        except self._psycopg.Error as exc:
            raise StoreError(f"archive store: {exc}") from exc
        finally:
            self._in_tx = False
