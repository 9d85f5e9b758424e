"""Opening the local store safely: never overwrite a file that is not ours."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlite_utils import Database

from ..errors import NotInitialisedError, StoreError
from .schema import SCHEMA_MARKER, all_migration_sets


class StoreBusyError(StoreError):
    """Another process held the store's write lock for too long; nothing was written."""


SQLITE_HEADER = b"SQLite format 3\x00"
BUSY_WAIT_S = 30.0  # how long a writer waits for another process's write to finish


def _inspect_existing(path: Path) -> None:
    """Refuse a corrupt or foreign file before anything writes to it (WAL changes the header)."""
    try:
        with open(path, "rb") as fh:
            header = fh.read(16)
    except OSError as exc:
        raise StoreError("err.store_unreadable", path=str(path), why=exc.strerror) from None
    if header != SQLITE_HEADER:
        raise StoreError("err.store_not_sqlite", path=str(path))
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            marker = None
            if "fieldkit_meta" in tables:
                row = conn.execute("SELECT value FROM fieldkit_meta WHERE key='schema'").fetchone()
                marker = row[0] if row else None
            check = (
                conn.execute("PRAGMA quick_check(1)").fetchone()[0] if len(tables) < 64 else "ok"
            )
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise StoreError("err.store_damaged", path=str(path), why=str(exc)) from None
    if marker != SCHEMA_MARKER:
        raise StoreError("err.store_foreign", path=str(path))
    if check != "ok":
        raise StoreError("err.store_integrity", path=str(path), why=check)


def connect(path: Path, *, create: bool) -> Database:
    if path.exists() and path.stat().st_size > 0:
        _inspect_existing(path)
    elif not create:
        raise NotInitialisedError("err.store_missing", path=str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(str(path), check_same_thread=False, timeout=BUSY_WAIT_S)
        # Autocommit at the driver: transactions are explicit, through ``Guarded.tx()``.
        conn.isolation_level = None
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before we say so (events must survive a power cut).
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        # Freed space is zeroed on every delete and update, not only during a purge: an update
        # that moves a row (marking it synced, sealing it) leaves the old cell's bytes in the
        # page otherwise, and those hold what the row held (tests/test_purge.py).
        conn.execute("PRAGMA secure_delete=ON")
        db = Database(conn)
        for migrations in all_migration_sets():
            applied = {m.name for m in migrations.applied(db)}
            known = {m.name for m in migrations._migrations}
            if applied - known:
                raise StoreError(
                    "err.store_newer", path=str(path), schema=sorted(applied - known)[-1]
                )
            migrations.apply(db)
        db.execute(
            "INSERT OR IGNORE INTO fieldkit_meta(key, value) VALUES ('schema', ?)", [SCHEMA_MARKER]
        )
    except sqlite3.DatabaseError as exc:
        raise StoreError("err.store_open", path=str(path), why=str(exc)) from None
    return db


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class Guarded:
    """One connection shared by the UI thread and workers, serialised by a lock.

    Every transaction is ``BEGIN IMMEDIATE``: it takes the write lock before it reads, so two
    processes writing the same store (two terminals, the app and a sync) queue behind SQLite's
    busy timeout instead of failing with "database is locked" when a read turns into a write.
    A lock that is still held after ``BUSY_WAIT_S`` is refused with one clear line, before
    anything was written (nothing is lost; try again)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.lock = threading.RLock()

    @contextmanager
    def tx(self) -> Iterator[Database]:
        with self.lock:
            conn = self.db.conn
            if conn.in_transaction:  # nested: a savepoint inside the caller's transaction
                with self.db.atomic():
                    yield self.db
                return
            self._begin(conn)
            try:
                yield self.db
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            self._commit(conn)

    @staticmethod
    def _begin(conn: sqlite3.Connection) -> None:
        deadline = time.monotonic() + BUSY_WAIT_S
        delay = 0.01
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() > deadline:
                    if _is_busy(exc):
                        raise StoreBusyError("security.err.store_busy") from None
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.5)

    @staticmethod
    def _commit(conn: sqlite3.Connection) -> None:
        deadline = time.monotonic() + BUSY_WAIT_S
        while True:
            try:
                conn.execute("COMMIT")
                return
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() > deadline:
                    conn.execute("ROLLBACK")
                    if _is_busy(exc):
                        raise StoreBusyError("security.err.store_busy") from None
                    raise
                time.sleep(0.05)

    def query(self, sql: str, params: list | tuple = ()) -> list[dict]:
        with self.lock:
            cur = self.db.execute(sql, params)
            cols = [c[0] for c in cur.description] if cur.description else []
            return [dict(zip(cols, row, strict=False)) for row in cur.fetchall()]

    def scalar(self, sql: str, params: list | tuple | dict = ()):
        with self.lock:
            row = self.db.execute(sql, params).fetchone()
            return row[0] if row else None
