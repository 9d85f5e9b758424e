"""Opening the local store safely: never overwrite a file that is not ours."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlite_utils import Database

from ..errors import NotInitialisedError, StoreError
from .schema import SCHEMA_MARKER, all_migration_sets

SQLITE_HEADER = b"SQLite format 3\x00"


def _inspect_existing(path: Path) -> None:
    """Refuse a corrupt or foreign file before anything writes to it (WAL changes the header)."""
    try:
        with open(path, "rb") as fh:
            header = fh.read(16)
    except OSError as exc:
        raise StoreError(f"{path}: cannot read the database ({exc.strerror})") from None
    if header != SQLITE_HEADER:
        raise StoreError(
            f"{path}: not a FieldKit database (not SQLite at all); the file was left untouched. "
            "Move it away or choose another --data-dir."
        )
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
        raise StoreError(
            f"{path}: the database file is damaged ({exc}); it was left untouched. "
            "Restore it from a backup or choose another --data-dir."
        ) from None
    if marker != SCHEMA_MARKER:
        raise StoreError(
            f"{path}: this SQLite file is not a FieldKit store; it was left untouched. "
            "Choose another --data-dir."
        )
    if check != "ok":
        raise StoreError(
            f"{path}: the database failed its integrity check ({check}); "
            "it was left untouched. Restore it from a backup."
        )


def connect(path: Path, *, create: bool) -> Database:
    if path.exists() and path.stat().st_size > 0:
        _inspect_existing(path)
    elif not create:
        raise NotInitialisedError(
            f"no FieldKit store at {path}: run `fieldkit init` or start `fieldkit` for first-run set-up"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(str(path), check_same_thread=False, timeout=10)
        # Autocommit at the driver: transactions are explicit, through ``db.atomic()``.
        conn.isolation_level = None
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before we say so (events must survive a power cut).
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        db = Database(conn)
        for migrations in all_migration_sets():
            applied = {m.name for m in migrations.applied(db)}
            known = {m.name for m in migrations._migrations}
            if applied - known:
                raise StoreError(
                    f"{path}: made by a newer FieldKit (schema "
                    f"{sorted(applied - known)[-1]}); update FieldKit before opening it"
                )
            migrations.apply(db)
        db.execute(
            "INSERT OR IGNORE INTO fieldkit_meta(key, value) VALUES ('schema', ?)", [SCHEMA_MARKER]
        )
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: cannot open the database ({exc})") from None
    return db


class Guarded:
    """One connection shared by the UI thread and workers, serialised by a lock."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.lock = threading.RLock()

    @contextmanager
    def tx(self) -> Iterator[Database]:
        with self.lock, self.db.atomic():
            yield self.db

    def query(self, sql: str, params: list | tuple = ()) -> list[dict]:
        with self.lock:
            cur = self.db.execute(sql, params)
            cols = [c[0] for c in cur.description] if cur.description else []
            return [dict(zip(cols, row, strict=False)) for row in cur.fetchall()]

    def scalar(self, sql: str, params: list | tuple = ()):
        with self.lock:
            row = self.db.execute(sql, params).fetchone()
            return row[0] if row else None
