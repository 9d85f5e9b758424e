"""Everything that differs between the town server's two databases, in one object.

:class:`sync.server.repository.Repository` is written once, in SQL both databases read, with
``?`` placeholders. A dialect supplies what is not shared: how a connection is had (SQLite: one
per thread, WAL; PostgreSQL: a pool, :mod:`.pg_dialect`), how a write transaction holds its lock
(SQLite takes the write lock up front with ``BEGIN IMMEDIATE``, so two batches cannot both decide
that a record is new; PostgreSQL locks a table where the order of writers matters), the column
types of the schema, and how a batch's new records are written (SQLite: look up the ids first,
then insert what is new; PostgreSQL: binary ``COPY`` first, see :mod:`.pg_dialect`).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from .ledger import schema as ledger_schema
from .rows import RECORD_COLUMNS, IngestRecord, RepositoryError, record_row

_SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (
    device_id TEXT PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL, public_key {blob},
    token_hash TEXT UNIQUE, token_expires {real}, created_at {real} NOT NULL,
    enrolled_at {real}, revoked_at {real}, last_seen {real});
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY, device_id TEXT NOT NULL, created_at {real},
    record_count INTEGER, received_at {real} NOT NULL, reply TEXT);
CREATE TABLE IF NOT EXISTS records (
    record_id TEXT PRIMARY KEY, kind TEXT NOT NULL, device_id TEXT NOT NULL,
    batch_id TEXT NOT NULL, content_hash TEXT NOT NULL, occurred_at {real}, day TEXT,
    checkpoint TEXT, direction TEXT, id_hash TEXT, name_masked TEXT, id_masked TEXT,
    body {blob} NOT NULL, received_at {real} NOT NULL);
CREATE INDEX IF NOT EXISTS records_by_person ON records (id_hash, occurred_at);
CREATE INDEX IF NOT EXISTS records_by_checkpoint ON records (checkpoint, occurred_at);
CREATE TABLE IF NOT EXISTS conflicts (
    record_id TEXT NOT NULL, content_hash TEXT NOT NULL, kind TEXT, device_id TEXT NOT NULL,
    batch_id TEXT NOT NULL, body {blob} NOT NULL, received_at {real} NOT NULL,
    PRIMARY KEY (record_id, content_hash));
CREATE TABLE IF NOT EXISTS changes (
    seq {serial}, kind TEXT NOT NULL, data TEXT NOT NULL,
    created_at {real} NOT NULL);
CREATE TABLE IF NOT EXISTS keypersons (
    id_hash TEXT PRIMARY KEY, category TEXT, end_date TEXT, active {flag} NOT NULL,
    updated_at {real} NOT NULL);
"""

INSERT_RECORD = f"INSERT INTO records ({RECORD_COLUMNS}) VALUES ({', '.join('?' * 14)})"


class Dialect:
    """One database's side of the repository. Connections are DB-API style (``execute``
    returns a cursor with ``fetchone``/``fetchall``)."""

    name = "?"
    ph = "?"  # the parameter placeholder the driver reads
    path: str | None = None  # the database file, when there is one
    blob, real, serial, flag = "BLOB", "REAL", "INTEGER PRIMARY KEY AUTOINCREMENT", "INTEGER"

    def schema_sql(self) -> str:
        types = {"blob": self.blob, "real": self.real, "serial": self.serial, "flag": self.flag}
        return _SCHEMA.format(**types) + ledger_schema(self.blob, self.serial, self.real)

    def sql(self, query: str) -> str:
        """``query`` (written with ``?``) in this driver's placeholders."""
        return query if self.ph == "?" else query.replace("?", self.ph)

    # connections: subclasses provide these --------------------------------------------------
    def read(self) -> AbstractContextManager[Any]:
        """A connection for one statement (no transaction needed)."""
        raise NotImplementedError

    def snapshot(self) -> AbstractContextManager[Any]:
        """A connection for several reads that belong together."""
        raise NotImplementedError

    def write(self) -> AbstractContextManager[Any]:
        """A connection inside one write transaction: committed on exit, rolled back on error."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def create_schema(self) -> None:
        raise NotImplementedError

    def drop_schema(self) -> None:
        """Tests only: remove every table (PostgreSQL schema); a file is removed by its owner."""

    # statements -------------------------------------------------------------------------------
    def lock(self, con: Any, table: str, mode: str = "EXCLUSIVE") -> None:
        """Serialise writers of ``table`` for the rest of the transaction (no-op where the
        write transaction already holds the whole database)."""

    def executemany(self, con: Any, query: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            con.executemany(self.sql(query), rows)

    def insert_records(
        self, con: Any, firsts: list[IngestRecord], device_id: str, batch_id: str, now: float
    ) -> dict[str, str]:
        """Store the records whose id is not on the server yet (``firsts`` has each id once);
        return id → stored content hash of those that were already there."""
        raise NotImplementedError

    def bulk_insert(self, con: Any, rows: list[tuple[Any, ...]]) -> None:
        """Plain insert of record rows, no checks (the baseline of ``bench/sync.py``)."""
        self.executemany(con, INSERT_RECORD, rows)


class SqliteDialect(Dialect):
    """One file, nothing to install. One connection per thread (the ASGI app runs storage calls
    in a thread pool); WAL so readers never wait for the writer; writes take the lock up front
    (``BEGIN IMMEDIATE``) so two batches cannot both decide that a record is new."""

    name = "sqlite"

    def __init__(self, path: str) -> None:
        self.path: str = path
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise RepositoryError(f"directory {parent} does not exist: run fieldkit-server init")
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    @property
    def _con(self) -> sqlite3.Connection:
        con: sqlite3.Connection | None = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30
            )
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=FULL")
            con.execute("PRAGMA busy_timeout=30000")
            self._local.con = con
            with self._lock:
                self._all.append(con)
        return con

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        yield self._con

    snapshot = read  # WAL: reads outside a write see committed data; none of them span writes

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        con = self._con
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            for con in self._all:
                try:
                    con.close()
                except sqlite3.ProgrammingError:
                    pass
            self._all.clear()
        self._local = threading.local()

    def create_schema(self) -> None:
        self._con.executescript(self.schema_sql())

    def insert_records(
        self, con: Any, firsts: list[IngestRecord], device_id: str, batch_id: str, now: float
    ) -> dict[str, str]:
        stored: dict[str, str] = {}
        ids = [r.record_id for r in firsts]
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            q = (
                "SELECT record_id, content_hash FROM records WHERE record_id IN "
                f"({','.join('?' * len(chunk))})"
            )
            stored.update(con.execute(q, chunk).fetchall())
        self.bulk_insert(
            con,
            [record_row(r, device_id, batch_id, now) for r in firsts if r.record_id not in stored],
        )
        return stored
