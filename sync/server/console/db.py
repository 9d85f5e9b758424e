"""The console's own tables, beside the server's, on SQLite or PostgreSQL.

The console reads the server's tables (records, devices, keypersons, ledger) and keeps its own:
users, sessions, the audit chain, acknowledged alerts, the passage facts (what the sealed
record bodies say about decisions, fever and key-person hits, read once) and small settings.
It opens its own connections (one per thread) to the database the repository uses, so it
never reaches into the repository's internals. SQL is written with ``?`` placeholders;
PostgreSQL gets them as ``%s``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS console_users (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, pw_hash TEXT NOT NULL, disabled INTEGER NOT NULL,
    failed INTEGER NOT NULL, locked_until {real}, created_at {real} NOT NULL);
CREATE TABLE IF NOT EXISTS console_sessions (
    token_hash TEXT PRIMARY KEY, user_name TEXT NOT NULL, csrf TEXT NOT NULL,
    created_at {real} NOT NULL, last_seen {real} NOT NULL, lang TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS console_audit (
    seq {serial}, at {real} NOT NULL, user_name TEXT NOT NULL, action TEXT NOT NULL,
    detail TEXT NOT NULL, reason TEXT, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS console_acks (
    record_id TEXT PRIMARY KEY, user_name TEXT NOT NULL, at {real} NOT NULL);
-- the overview and the report read only the columns of console_facts_by_day (an index-only scan)
CREATE TABLE IF NOT EXISTS console_facts (
    record_id TEXT PRIMARY KEY, device_id TEXT NOT NULL, checkpoint TEXT, day TEXT,
    hour INTEGER, occurred_at {real}, direction TEXT, decision TEXT, fever INTEGER NOT NULL,
    keyperson INTEGER NOT NULL, leaving INTEGER NOT NULL, kp_category TEXT, category TEXT,
    received_at {real} NOT NULL, id_hash TEXT, name_masked TEXT, id_masked TEXT);
-- tracing reads a person's passages and each one's window at its checkpoint from these two
-- covering indexes alone (no table row is read: a cold trace touches a few index pages)
CREATE INDEX IF NOT EXISTS console_facts_by_person ON console_facts (id_hash, occurred_at,
    checkpoint, record_id);
CREATE INDEX IF NOT EXISTS console_facts_by_cp ON console_facts (checkpoint, occurred_at,
    id_hash, direction, decision, name_masked, id_masked, device_id, record_id);
DROP INDEX IF EXISTS console_facts_day;
CREATE INDEX IF NOT EXISTS console_facts_by_day ON console_facts (day, checkpoint, hour,
    direction, decision, fever, keyperson);
CREATE INDEX IF NOT EXISTS console_facts_alerts ON console_facts (occurred_at)
    WHERE decision = 'refer' OR keyperson = 1 OR leaving = 1;
CREATE TABLE IF NOT EXISTS console_device_cp (
    device_id TEXT PRIMARY KEY, checkpoint TEXT, last_record {real});
CREATE TABLE IF NOT EXISTS console_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS console_staged (
    upload_id TEXT NOT NULL, id_hash TEXT NOT NULL, category TEXT, end_date TEXT,
    created_at {real} NOT NULL, PRIMARY KEY (upload_id, id_hash));
CREATE INDEX IF NOT EXISTS console_records_received ON records (received_at);
"""


class ConsoleDB:
    """Connections and a few helpers; every query of the console goes through :meth:`q`."""

    def __init__(self, repo: Any) -> None:
        self.backend = getattr(repo, "backend", "sqlite")
        self.pg = self.backend == "postgresql"
        if self.pg:
            self.url, self.schema = repo.url, getattr(repo, "schema", None) or "public"
        else:
            self.path = repo.path
        self._local = threading.local()
        self._all: list[Any] = []
        self._lock = threading.Lock()

    # connections -----------------------------------------------------------------------------
    def _connect(self) -> Any:
        con = self._connect_pg() if self.pg else self._connect_sqlite()
        with self._lock:
            self._all.append(con)
        return con

    def _connect_pg(self) -> Any:
        import psycopg

        con = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        con.execute(f'SET search_path TO "{self.schema}"')
        return con

    def _connect_sqlite(self) -> Any:
        import sqlite3

        con = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA busy_timeout=30000")
        return con

    @property
    def con(self) -> Any:
        con = getattr(self._local, "con", None)
        if con is None or getattr(con, "closed", False):
            con = self._local.con = self._connect()
        return con

    def close(self) -> None:
        with self._lock:
            for con in self._all:
                try:
                    con.close()
                except Exception:  # noqa: BLE001 - closing a connection of another thread
                    pass
            self._all.clear()
        self._local = threading.local()

    def sql(self, text: str) -> str:
        return text.replace("?", "%s") if self.pg else text

    def q(self, text: str, params: tuple | list = ()) -> list[tuple]:
        cur = self.con.execute(self.sql(text), tuple(params))
        return list(cur.fetchall()) if cur.description else []

    def one(self, text: str, params: tuple | list = ()) -> tuple | None:
        rows = self.q(text, params)
        return rows[0] if rows else None

    def scalar(self, text: str, params: tuple | list = ()) -> Any:
        """The first column of the first row, ``None`` when there is no row."""
        row = self.one(text, params)
        return row[0] if row else None

    def many(self, text: str, rows: list[tuple]) -> None:
        if not rows:
            return
        if self.pg:
            with self.con.cursor() as cur:
                cur.executemany(self.sql(text), rows)
        else:
            self.con.executemany(text, rows)

    @contextmanager
    def tx(self) -> Iterator[None]:
        """One write transaction (SQLite takes the write lock up front)."""
        con = self.con
        if self.pg:
            with con.transaction():
                yield
        else:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def create_schema(self) -> None:
        real = "DOUBLE PRECISION" if self.pg else "REAL"
        serial = "BIGSERIAL PRIMARY KEY" if self.pg else "INTEGER PRIMARY KEY AUTOINCREMENT"
        for stmt in SCHEMA.format(real=real, serial=serial).split(";"):
            if stmt.strip():
                self.con.execute(stmt)

    # settings ----------------------------------------------------------------------------------
    def meta(self, key: str, default: str | None = None) -> str | None:
        row = self.one("SELECT value FROM console_meta WHERE key = ?", (key,))
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self.q(
            "INSERT INTO console_meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def insert_ignore(self, table: str, columns: str, rows: list[tuple]) -> None:
        marks = ", ".join("?" * len(columns.split(",")))
        self.many(f"INSERT INTO {table} ({columns}) VALUES ({marks}) ON CONFLICT DO NOTHING", rows)
