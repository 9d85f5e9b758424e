"""SQLite storage for the town server: one file, nothing to install.

One connection per thread (the ASGI app runs storage calls in a thread pool); WAL so readers
never wait for the writer; writes take the lock up front (``BEGIN IMMEDIATE``) so two batches
cannot both decide that a record is new.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .ledger import LedgerEdit, LedgerTx
from .ledger import schema as ledger_schema
from .repository import (
    RECORD_COLUMNS,
    BatchAlreadyIngested,
    BatchMeta,
    Change,
    Device,
    IngestOutcome,
    IngestRecord,
    Passage,
    Repository,
    RepositoryError,
    classify,
    record_row,
    reply_json,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (
    device_id TEXT PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL, public_key BLOB,
    token_hash TEXT UNIQUE, token_expires REAL, created_at REAL NOT NULL, enrolled_at REAL,
    revoked_at REAL, last_seen REAL);
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY, device_id TEXT NOT NULL, created_at REAL, record_count INTEGER,
    received_at REAL NOT NULL, reply TEXT);
CREATE TABLE IF NOT EXISTS records (
    record_id TEXT PRIMARY KEY, kind TEXT NOT NULL, device_id TEXT NOT NULL,
    batch_id TEXT NOT NULL, content_hash TEXT NOT NULL, occurred_at REAL, day TEXT,
    checkpoint TEXT, direction TEXT, id_hash TEXT, name_masked TEXT, id_masked TEXT,
    body BLOB NOT NULL, received_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS records_by_person ON records (id_hash, occurred_at);
CREATE INDEX IF NOT EXISTS records_by_checkpoint ON records (checkpoint, occurred_at);
CREATE TABLE IF NOT EXISTS conflicts (
    record_id TEXT NOT NULL, content_hash TEXT NOT NULL, kind TEXT, device_id TEXT NOT NULL,
    batch_id TEXT NOT NULL, body BLOB NOT NULL, received_at REAL NOT NULL,
    PRIMARY KEY (record_id, content_hash));
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, data TEXT NOT NULL,
    created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS keypersons (
    id_hash TEXT PRIMARY KEY, category TEXT, end_date TEXT, active INTEGER NOT NULL,
    updated_at REAL NOT NULL);
""" + ledger_schema("BLOB", "INTEGER PRIMARY KEY AUTOINCREMENT", "REAL")

_INSERT_RECORD = f"INSERT INTO records ({RECORD_COLUMNS}) VALUES ({', '.join('?' * 14)})"
_DEVICE_COLS = "device_id, name, status, public_key, created_at, enrolled_at, revoked_at, last_seen"
_PASSAGE_SELECT = (
    "SELECT r.record_id, r.kind, COALESCE(d.name, r.device_id), r.checkpoint, r.occurred_at, "
    "r.direction, r.name_masked, r.id_masked, r.id_hash FROM records r "
    "LEFT JOIN devices d ON d.device_id = r.device_id "
)


def _device(row: Any) -> Device:
    return Device(row[0], row[1], row[2], bytes(row[3]) if row[3] is not None else None, *row[4:])


class SqliteRepository(Repository):
    backend = "sqlite"

    def __init__(self, path: str) -> None:
        self.path = path
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise RepositoryError(f"directory {parent} does not exist: run fieldkit-server init")
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    # connections -----------------------------------------------------------------------------
    @property
    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
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
        self._con.executescript(SCHEMA)

    def _write(self):  # a context manager for one write transaction
        return _Immediate(self._con)

    # devices ---------------------------------------------------------------------------------
    def add_device(self, name: str, token_hash: str, expires_at: float, now: float) -> Device:
        device_id = uuid.uuid4().hex[:16]
        with self._write() as con:
            if con.execute(
                "SELECT 1 FROM devices WHERE name = ? AND status != 'revoked'", (name,)
            ).fetchone():
                raise RepositoryError(f"a device named {name!r} exists: revoke it or pick a name")
            con.execute(
                "INSERT INTO devices (device_id, name, status, token_hash, token_expires, "
                "created_at) VALUES (?, ?, 'pending', ?, ?, ?)",
                (device_id, name, token_hash, expires_at, now),
            )
        return Device(device_id, name, "pending", None, now)

    def enroll_device(self, token_hash: str, public_key: bytes, now: float) -> Device | None:
        with self._write() as con:
            row = con.execute(
                "UPDATE devices SET status = 'active', public_key = ?, enrolled_at = ?, "
                "token_hash = NULL, token_expires = NULL WHERE token_hash = ? AND "
                f"status = 'pending' AND token_expires > ? RETURNING {_DEVICE_COLS}",
                (public_key, now, token_hash, now),
            ).fetchone()
        return _device(row) if row else None

    def get_device(self, device_id: str) -> Device | None:
        row = self._con.execute(
            f"SELECT {_DEVICE_COLS} FROM devices WHERE device_id = ?", (device_id,)
        ).fetchone()
        return _device(row) if row else None

    def list_devices(self) -> list[Device]:
        rows = self._con.execute(f"SELECT {_DEVICE_COLS} FROM devices ORDER BY created_at")
        return [_device(r) for r in rows]

    def revoke_device(self, name_or_id: str, now: float) -> Device | None:
        with self._write() as con:
            row = con.execute(
                "UPDATE devices SET status = 'revoked', revoked_at = ?, token_hash = NULL "
                "WHERE (device_id = ? OR name = ?) AND status != 'revoked' "
                f"RETURNING {_DEVICE_COLS}",
                (now, name_or_id, name_or_id),
            ).fetchone()
        return _device(row) if row else None

    # batches ---------------------------------------------------------------------------------
    def batch_reply(self, batch_id: str) -> dict[str, Any] | None:
        row = self._con.execute(
            "SELECT reply FROM batches WHERE batch_id = ?", (batch_id,)
        ).fetchone()
        return json.loads(row[0]) if row and row[0] else None

    def ingest(
        self,
        batch: BatchMeta,
        records: list[IngestRecord],
        rejected: dict[int, tuple[str, str]],
        build_reply: Any,
        now: float,
        ledger: list[LedgerEdit] | None = None,
    ) -> dict[str, Any]:
        with self._write() as con:
            row = con.execute(
                "SELECT reply FROM batches WHERE batch_id = ?", (batch.batch_id,)
            ).fetchone()
            if row:
                raise BatchAlreadyIngested(json.loads(row[0]))
            stored: dict[str, str] = {}
            ids = list({r.record_id for r in records})
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                q = (
                    "SELECT record_id, content_hash FROM records WHERE record_id IN "
                    f"({','.join('?' * len(chunk))})"
                )
                stored.update(con.execute(q, chunk).fetchall())
            new, conflicting, fates = classify(records, stored)
            fates.update(rejected)
            con.executemany(
                _INSERT_RECORD, [record_row(r, batch.device_id, batch.batch_id, now) for r in new]
            )
            con.executemany(
                "INSERT OR IGNORE INTO conflicts VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        r.record_id,
                        r.content_hash,
                        r.kind,
                        batch.device_id,
                        batch.batch_id,
                        r.body_enc,
                        now,
                    )
                    for r in conflicting
                ],
            )
            if ledger:
                fresh = {r.index for r in new}
                tx = LedgerTx(con, "?")
                for edit in sorted(ledger, key=lambda e: e.index):
                    if edit.index in fresh:
                        tx.apply(edit, batch.device_id, now)
            reply = build_reply(IngestOutcome(fates))
            con.execute(
                "INSERT INTO batches VALUES (?, ?, ?, ?, ?, ?)",
                (
                    batch.batch_id,
                    batch.device_id,
                    batch.created_at,
                    batch.count,
                    now,
                    reply_json(reply),
                ),
            )
            con.execute(
                "UPDATE devices SET last_seen = ? WHERE device_id = ?", (now, batch.device_id)
            )
        return reply

    @contextmanager
    def _ledger(self, write: bool) -> Iterator[LedgerTx]:
        if write:
            with self._write() as con:
                yield LedgerTx(con, "?")
        else:
            yield LedgerTx(self._con, "?")

    def raw_insert(
        self, records: list[IngestRecord], device_id: str, batch_id: str, now: float
    ) -> None:
        with self._write() as con:
            con.executemany(
                _INSERT_RECORD, [record_row(r, device_id, batch_id, now) for r in records]
            )

    def record_hashes(self) -> dict[str, str]:
        return dict(self._con.execute("SELECT record_id, content_hash FROM records").fetchall())

    def record_count(self) -> int:
        return self._con.execute("SELECT count(*) FROM records").fetchone()[0]

    def conflicts(self) -> list[dict[str, Any]]:
        rows = self._con.execute(
            "SELECT record_id, content_hash, kind, device_id, batch_id, received_at "
            "FROM conflicts ORDER BY received_at"
        )
        keys = ("record_id", "content_hash", "kind", "device_id", "batch_id", "received_at")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    # changes -----------------------------------------------------------------------------------
    def add_changes(self, kind: str, items: list[dict[str, Any]], now: float) -> int:
        with self._write() as con:
            con.executemany(
                "INSERT INTO changes (kind, data, created_at) VALUES (?, ?, ?)",
                [(kind, json.dumps(i, ensure_ascii=False), now) for i in items],
            )
            if kind == "keyperson":
                con.executemany(
                    "INSERT INTO keypersons VALUES (?, ?, ?, 1, ?) ON CONFLICT (id_hash) DO "
                    "UPDATE SET category = excluded.category, end_date = excluded.end_date, "
                    "active = 1, updated_at = excluded.updated_at",
                    [(i["id_hash"], i.get("category"), i.get("end_date"), now) for i in items],
                )
            elif kind == "keyperson_removed":
                con.executemany(
                    "UPDATE keypersons SET active = 0, updated_at = ? WHERE id_hash = ?",
                    [(now, i["id_hash"]) for i in items],
                )
            return con.execute("SELECT COALESCE(max(seq), 0) FROM changes").fetchone()[0]

    def changes_since(self, cursor: int, limit: int) -> list[Change]:
        rows = self._con.execute(
            "SELECT seq, kind, data, created_at FROM changes WHERE seq > ? ORDER BY seq LIMIT ?",
            (cursor, limit),
        )
        return [Change(r[0], r[1], json.loads(r[2]), r[3]) for r in rows]

    def latest_change(self, kind: str) -> Change | None:
        row = self._con.execute(
            "SELECT seq, kind, data, created_at FROM changes WHERE kind = ? "
            "ORDER BY seq DESC LIMIT 1",
            (kind,),
        ).fetchone()
        return Change(row[0], row[1], json.loads(row[2]), row[3]) if row else None

    def keyperson_hashes(self) -> set[str]:
        return {r[0] for r in self._con.execute("SELECT id_hash FROM keypersons WHERE active = 1")}

    # queries -----------------------------------------------------------------------------------
    def stats(self) -> list[dict[str, Any]]:
        rows = self._con.execute(
            "SELECT COALESCE(d.name, r.device_id), r.checkpoint, r.day, count(*) FROM records r "
            "LEFT JOIN devices d ON d.device_id = r.device_id "
            "GROUP BY 1, 2, 3 ORDER BY 3, 2, 1"
        )
        return [{"device": r[0], "checkpoint": r[1], "day": r[2], "records": r[3]} for r in rows]

    def trace_person(self, id_hash: str) -> list[Passage]:
        rows = self._con.execute(
            _PASSAGE_SELECT + "WHERE r.id_hash = ? ORDER BY r.occurred_at", (id_hash,)
        )
        return [Passage(*r) for r in rows]

    def trace_checkpoint(self, checkpoint: str, start: float, end: float) -> list[Passage]:
        rows = self._con.execute(
            _PASSAGE_SELECT + "WHERE r.checkpoint = ? AND r.occurred_at >= ? AND "
            "r.occurred_at < ? ORDER BY r.occurred_at",
            (checkpoint, start, end),
        )
        return [Passage(*r) for r in rows]


class _Immediate:
    def __init__(self, con: sqlite3.Connection) -> None:
        self.con = con

    def __enter__(self) -> sqlite3.Connection:
        self.con.execute("BEGIN IMMEDIATE")
        return self.con

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.con.execute("COMMIT")
        else:
            self.con.execute("ROLLBACK")
