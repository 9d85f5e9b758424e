"""PostgreSQL's side of the town server's repository (psycopg 3), for a city or many devices.

Tables live in one schema (``public`` unless told), so several towns or test runs can share a
database. Ingest claims the batch id with ``INSERT … ON CONFLICT DO NOTHING``, then loads the
batch's records with a binary ``COPY`` inside a savepoint: the fast path, taken whenever every
record is new (nearly always). If any record id is already stored, the unique index stops the
COPY, the savepoint rolls back, and the same rows go through one
``INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING RETURNING`` instead, which says which ones
were new. When two servers behind a load balancer receive the same record at once, the unique
index decides and the loser sees a duplicate, never a second copy.

Parameters travel in PostgreSQL's binary format (``%b``, ``COPY … (FORMAT BINARY)``): the text
format escapes every array element with a regular expression, which cost the server more CPU
than the rest of ingest together.

Imported only when a ``postgresql://`` URL is given, so an SQLite town never loads psycopg.
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from .dialect import Dialect
from .rows import RECORD_COLUMNS, IngestRecord, RepositoryError, record_row

_UNNEST_INSERT = (
    f"INSERT INTO records ({RECORD_COLUMNS}) SELECT * FROM unnest("
    "%b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::float8[], %b::text[], "
    "%b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::bytea[], %b::float8[])"
)
_COPY_RECORDS = f"COPY records ({RECORD_COLUMNS}) FROM STDIN (FORMAT BINARY)"
_RECORD_TYPES = ["text"] * 5 + ["float8"] + ["text"] * 6 + ["bytea", "float8"]


def _columns(records: list[IngestRecord], device_id: str, batch_id: str, now: float) -> list:
    n = len(records)
    return [
        [r.record_id for r in records],
        [r.kind for r in records],
        [device_id] * n,
        [batch_id] * n,
        [r.content_hash for r in records],
        [r.occurred_at for r in records],
        [r.day for r in records],
        [r.checkpoint for r in records],
        [r.direction for r in records],
        [r.id_hash for r in records],
        [r.name_masked for r in records],
        [r.id_masked for r in records],
        [r.body_enc for r in records],
        [now] * n,
    ]


class PgDialect(Dialect):
    name = "postgresql"
    ph = "%s"
    blob, real, serial, flag = "BYTEA", "DOUBLE PRECISION", "BIGSERIAL PRIMARY KEY", "BOOLEAN"

    def __init__(self, url: str, schema: str | None = None, pool_size: int = 8) -> None:
        self.url = url
        self.schema = schema or "public"
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", self.schema):
            raise RepositoryError(f"schema name {self.schema!r}: use lower-case letters, digits, _")
        self._pool: queue.LifoQueue[psycopg.Connection] = queue.LifoQueue()
        self._all: list[psycopg.Connection] = []
        self._slots = threading.BoundedSemaphore(pool_size)
        self._lock = threading.Lock()

    # connections -------------------------------------------------------------------------------
    def _connect(self) -> psycopg.Connection:
        try:
            # Autocommit: a read is one round trip; writes open a transaction explicitly.
            con = psycopg.connect(self.url, connect_timeout=10, autocommit=True)
        except psycopg.OperationalError as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise RepositoryError(
                f"cannot connect to PostgreSQL ({first}): check --database-url and that the "
                "server runs"
            ) from None
        con.execute(f'SET search_path TO "{self.schema}"')
        with self._lock:
            self._all.append(con)
        return con

    @contextmanager
    def _conn(self, tx: bool = True) -> Iterator[psycopg.Connection]:
        """A pooled connection; inside a transaction unless ``tx`` is false (single reads)."""
        with self._slots:
            try:
                con = self._pool.get_nowait()
            except queue.Empty:
                con = self._connect()
            broken = False
            try:
                if tx:
                    with con.transaction():
                        yield con
                else:
                    yield con
            except psycopg.OperationalError:
                broken = True
                raise
            finally:
                if broken or con.closed or con.info.transaction_status != 0:
                    con.close()
                    with self._lock:
                        if con in self._all:
                            self._all.remove(con)
                else:
                    self._pool.put(con)

    def read(self) -> Any:
        return self._conn(tx=False)

    def snapshot(self) -> Any:
        return self._conn()

    def write(self) -> Any:
        return self._conn()

    def close(self) -> None:
        with self._lock:
            for con in self._all:
                con.close()
            self._all.clear()
        self._pool = queue.LifoQueue()

    def create_schema(self) -> None:
        with self._conn() as con:
            con.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            for stmt in self.schema_sql().split(";"):
                if stmt.strip():
                    con.execute(stmt)

    def drop_schema(self) -> None:
        with self._conn() as con:
            con.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')

    # statements --------------------------------------------------------------------------------
    def lock(self, con: Any, table: str, mode: str = "EXCLUSIVE") -> None:
        con.execute(f"LOCK TABLE {table} IN {mode} MODE")

    def executemany(self, con: Any, query: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            with con.cursor() as cur:
                cur.executemany(self.sql(query), rows)

    def bulk_insert(self, con: Any, rows: list[tuple[Any, ...]]) -> None:
        with con.cursor() as cur, cur.copy(_COPY_RECORDS) as copy:
            copy.set_types(_RECORD_TYPES)
            for row in rows:
                copy.write_row(row)

    def insert_records(
        self, con: Any, firsts: list[IngestRecord], device_id: str, batch_id: str, now: float
    ) -> dict[str, str]:
        inserted: set[str] = set()
        if firsts:
            try:
                with con.transaction():  # a savepoint: a failed COPY leaves no trace
                    self.bulk_insert(con, [record_row(r, device_id, batch_id, now) for r in firsts])
                inserted = {r.record_id for r in firsts}
            except psycopg.errors.UniqueViolation:
                cur = con.execute(
                    _UNNEST_INSERT + " ON CONFLICT (record_id) DO NOTHING RETURNING record_id",
                    _columns(firsts, device_id, batch_id, now),
                )
                inserted = {row[0] for row in cur.fetchall()}
        missing = [r.record_id for r in firsts if r.record_id not in inserted]
        if not missing:
            return {}
        return dict(
            con.execute(
                "SELECT record_id, content_hash FROM records WHERE record_id = ANY(%s)",
                (missing,),
            ).fetchall()
        )
