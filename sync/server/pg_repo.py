"""PostgreSQL storage for the town server (psycopg 3), for a city or many devices.

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
"""

from __future__ import annotations

import json
import queue
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

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
    device_id TEXT PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL, public_key BYTEA,
    token_hash TEXT UNIQUE, token_expires DOUBLE PRECISION, created_at DOUBLE PRECISION NOT NULL,
    enrolled_at DOUBLE PRECISION, revoked_at DOUBLE PRECISION, last_seen DOUBLE PRECISION);
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY, device_id TEXT NOT NULL, created_at DOUBLE PRECISION,
    record_count INTEGER, received_at DOUBLE PRECISION NOT NULL, reply TEXT);
CREATE TABLE IF NOT EXISTS records (
    record_id TEXT PRIMARY KEY, kind TEXT NOT NULL, device_id TEXT NOT NULL,
    batch_id TEXT NOT NULL, content_hash TEXT NOT NULL, occurred_at DOUBLE PRECISION, day TEXT,
    checkpoint TEXT, direction TEXT, id_hash TEXT, name_masked TEXT, id_masked TEXT,
    body BYTEA NOT NULL, received_at DOUBLE PRECISION NOT NULL);
CREATE INDEX IF NOT EXISTS records_by_person ON records (id_hash, occurred_at);
CREATE INDEX IF NOT EXISTS records_by_checkpoint ON records (checkpoint, occurred_at);
CREATE TABLE IF NOT EXISTS conflicts (
    record_id TEXT NOT NULL, content_hash TEXT NOT NULL, kind TEXT, device_id TEXT NOT NULL,
    batch_id TEXT NOT NULL, body BYTEA NOT NULL, received_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (record_id, content_hash));
CREATE TABLE IF NOT EXISTS changes (
    seq BIGSERIAL PRIMARY KEY, kind TEXT NOT NULL, data TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS keypersons (
    id_hash TEXT PRIMARY KEY, category TEXT, end_date TEXT, active BOOLEAN NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL);
""" + ledger_schema("BYTEA", "BIGSERIAL PRIMARY KEY", "DOUBLE PRECISION")

_UNNEST_INSERT = (
    f"INSERT INTO records ({RECORD_COLUMNS}) SELECT * FROM unnest("
    "%b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::float8[], %b::text[], "
    "%b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::bytea[], %b::float8[])"
)
_COPY_RECORDS = f"COPY records ({RECORD_COLUMNS}) FROM STDIN (FORMAT BINARY)"
_RECORD_TYPES = [
    "text",
    "text",
    "text",
    "text",
    "text",
    "float8",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "bytea",
    "float8",
]
_DEVICE_COLS = "device_id, name, status, public_key, created_at, enrolled_at, revoked_at, last_seen"
_PASSAGE_SELECT = (
    "SELECT r.record_id, r.kind, COALESCE(d.name, r.device_id), r.checkpoint, r.occurred_at, "
    "r.direction, r.name_masked, r.id_masked, r.id_hash FROM records r "
    "LEFT JOIN devices d ON d.device_id = r.device_id "
)


def _device(row: Any) -> Device:
    return Device(row[0], row[1], row[2], bytes(row[3]) if row[3] is not None else None, *row[4:])


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


def _copy_records(con: psycopg.Connection, rows: list[tuple[Any, ...]]) -> None:
    with con.cursor() as cur, cur.copy(_COPY_RECORDS) as copy:
        copy.set_types(_RECORD_TYPES)
        for row in rows:
            copy.write_row(row)


class PgRepository(Repository):
    backend = "postgresql"

    def __init__(self, url: str, schema: str | None = None, pool_size: int = 8) -> None:
        self.url = url
        self.schema = schema or "public"
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", self.schema):
            raise RepositoryError(f"schema name {self.schema!r}: use lower-case letters, digits, _")
        self._pool: queue.LifoQueue[psycopg.Connection] = queue.LifoQueue()
        self._all: list[psycopg.Connection] = []
        self._slots = threading.BoundedSemaphore(pool_size)
        self._lock = threading.Lock()

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

    def close(self) -> None:
        with self._lock:
            for con in self._all:
                con.close()
            self._all.clear()
        self._pool = queue.LifoQueue()

    def create_schema(self) -> None:
        with self._conn() as con:
            con.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            for stmt in SCHEMA.split(";"):
                if stmt.strip():
                    con.execute(stmt)

    def drop_schema(self) -> None:
        """Tests only: remove every table of this schema."""
        with self._conn() as con:
            con.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')

    # devices ---------------------------------------------------------------------------------
    def add_device(self, name: str, token_hash: str, expires_at: float, now: float) -> Device:
        device_id = uuid.uuid4().hex[:16]
        with self._conn() as con:
            con.execute("LOCK TABLE devices IN SHARE ROW EXCLUSIVE MODE")
            if con.execute(
                "SELECT 1 FROM devices WHERE name = %s AND status != 'revoked'", (name,)
            ).fetchone():
                raise RepositoryError(f"a device named {name!r} exists: revoke it or pick a name")
            con.execute(
                "INSERT INTO devices (device_id, name, status, token_hash, token_expires, "
                "created_at) VALUES (%s, %s, 'pending', %s, %s, %s)",
                (device_id, name, token_hash, expires_at, now),
            )
        return Device(device_id, name, "pending", None, now)

    def enroll_device(self, token_hash: str, public_key: bytes, now: float) -> Device | None:
        with self._conn() as con:
            row = con.execute(
                "UPDATE devices SET status = 'active', public_key = %s, enrolled_at = %s, "
                "token_hash = NULL, token_expires = NULL WHERE token_hash = %s AND "
                f"status = 'pending' AND token_expires > %s RETURNING {_DEVICE_COLS}",
                (public_key, now, token_hash, now),
            ).fetchone()
        return _device(row) if row else None

    def get_device(self, device_id: str) -> Device | None:
        with self._conn(tx=False) as con:
            row = con.execute(
                f"SELECT {_DEVICE_COLS} FROM devices WHERE device_id = %s", (device_id,)
            ).fetchone()
        return _device(row) if row else None

    def list_devices(self) -> list[Device]:
        with self._conn(tx=False) as con:
            rows = con.execute(f"SELECT {_DEVICE_COLS} FROM devices ORDER BY created_at").fetchall()
        return [_device(r) for r in rows]

    def revoke_device(self, name_or_id: str, now: float) -> Device | None:
        with self._conn() as con:
            row = con.execute(
                "UPDATE devices SET status = 'revoked', revoked_at = %s, token_hash = NULL "
                "WHERE (device_id = %s OR name = %s) AND status != 'revoked' "
                f"RETURNING {_DEVICE_COLS}",
                (now, name_or_id, name_or_id),
            ).fetchone()
        return _device(row) if row else None

    # batches ---------------------------------------------------------------------------------
    def batch_reply(self, batch_id: str) -> dict[str, Any] | None:
        with self._conn(tx=False) as con:
            row = con.execute(
                "SELECT reply FROM batches WHERE batch_id = %s", (batch_id,)
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
        with self._conn() as con:
            claimed = con.execute(
                "INSERT INTO batches (batch_id, device_id, created_at, record_count, received_at)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (batch_id) DO NOTHING RETURNING 1",
                (batch.batch_id, batch.device_id, batch.created_at, batch.count, now),
            ).fetchone()
            if not claimed:
                row = con.execute(
                    "SELECT reply FROM batches WHERE batch_id = %s", (batch.batch_id,)
                ).fetchone()
                raise BatchAlreadyIngested(json.loads(row[0]))
            firsts: dict[str, IngestRecord] = {}
            for r in records:
                firsts.setdefault(r.record_id, r)
            inserted: set[str] = set()
            if firsts:
                try:
                    with con.transaction():  # a savepoint: a failed COPY leaves no trace
                        _copy_records(
                            con,
                            [
                                record_row(r, batch.device_id, batch.batch_id, now)
                                for r in firsts.values()
                            ],
                        )
                    inserted = set(firsts)
                except psycopg.errors.UniqueViolation:
                    cur = con.execute(
                        _UNNEST_INSERT + " ON CONFLICT (record_id) DO NOTHING RETURNING record_id",
                        _columns(list(firsts.values()), batch.device_id, batch.batch_id, now),
                    )
                    inserted = {row[0] for row in cur.fetchall()}
            missing = [i for i in firsts if i not in inserted]
            stored: dict[str, str] = {}
            if missing:
                stored = dict(
                    con.execute(
                        "SELECT record_id, content_hash FROM records WHERE record_id = ANY(%s)",
                        (missing,),
                    ).fetchall()
                )
            _new, conflicting, fates = classify(records, stored)
            fates.update(rejected)
            if conflicting:
                with con.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO conflicts VALUES (%s, %s, %s, %s, %s, %s, %s) "
                        "ON CONFLICT DO NOTHING",
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
            fresh = [
                e
                for e in ledger or ()
                if e.record_id in inserted and firsts[e.record_id].index == e.index
            ]
            if fresh:
                # Ledger merges are rare and read-then-write: one batch at a time.
                con.execute("LOCK TABLE ledger_fields IN EXCLUSIVE MODE")
                tx = LedgerTx(con, "%s")
                for edit in sorted(fresh, key=lambda e: e.index):
                    tx.apply(edit, batch.device_id, now)
            reply = build_reply(IngestOutcome(fates))
            con.execute(
                "UPDATE batches SET reply = %s WHERE batch_id = %s",
                (reply_json(reply), batch.batch_id),
            )
            con.execute(
                "UPDATE devices SET last_seen = %s WHERE device_id = %s", (now, batch.device_id)
            )
        return reply

    @contextmanager
    def _ledger(self, write: bool) -> Iterator[LedgerTx]:
        with self._conn() as con:
            if write:
                con.execute("LOCK TABLE ledger_fields IN EXCLUSIVE MODE")
            yield LedgerTx(con, "%s")

    def raw_insert(
        self, records: list[IngestRecord], device_id: str, batch_id: str, now: float
    ) -> None:
        with self._conn() as con:
            _copy_records(con, [record_row(r, device_id, batch_id, now) for r in records])

    def record_hashes(self) -> dict[str, str]:
        with self._conn(tx=False) as con:
            return dict(con.execute("SELECT record_id, content_hash FROM records").fetchall())

    def record_count(self) -> int:
        with self._conn(tx=False) as con:
            return con.execute("SELECT count(*) FROM records").fetchone()[0]

    def conflicts(self) -> list[dict[str, Any]]:
        keys = ("record_id", "content_hash", "kind", "device_id", "batch_id", "received_at")
        with self._conn(tx=False) as con:
            rows = con.execute(
                "SELECT record_id, content_hash, kind, device_id, batch_id, received_at "
                "FROM conflicts ORDER BY received_at"
            ).fetchall()
        return [dict(zip(keys, r, strict=True)) for r in rows]

    # changes -----------------------------------------------------------------------------------
    def add_changes(self, kind: str, items: list[dict[str, Any]], now: float) -> int:
        with self._conn() as con:
            # One writer at a time keeps seq in commit order, so a device's cursor never skips
            # a change that committed late.
            con.execute("LOCK TABLE changes IN EXCLUSIVE MODE")
            with con.cursor() as cur:
                cur.executemany(
                    "INSERT INTO changes (kind, data, created_at) VALUES (%s, %s, %s)",
                    [(kind, json.dumps(i, ensure_ascii=False), now) for i in items],
                )
                if kind == "keyperson":
                    cur.executemany(
                        "INSERT INTO keypersons VALUES (%s, %s, %s, true, %s) ON CONFLICT "
                        "(id_hash) DO UPDATE SET category = excluded.category, "
                        "end_date = excluded.end_date, active = true, "
                        "updated_at = excluded.updated_at",
                        [(i["id_hash"], i.get("category"), i.get("end_date"), now) for i in items],
                    )
                elif kind == "keyperson_removed":
                    cur.executemany(
                        "UPDATE keypersons SET active = false, updated_at = %s WHERE id_hash = %s",
                        [(now, i["id_hash"]) for i in items],
                    )
            return con.execute("SELECT COALESCE(max(seq), 0) FROM changes").fetchone()[0]

    def changes_since(self, cursor: int, limit: int) -> list[Change]:
        with self._conn(tx=False) as con:
            rows = con.execute(
                "SELECT seq, kind, data, created_at FROM changes WHERE seq > %s "
                "ORDER BY seq LIMIT %s",
                (cursor, limit),
            ).fetchall()
        return [Change(r[0], r[1], json.loads(r[2]), r[3]) for r in rows]

    def latest_change(self, kind: str) -> Change | None:
        with self._conn(tx=False) as con:
            row = con.execute(
                "SELECT seq, kind, data, created_at FROM changes WHERE kind = %s "
                "ORDER BY seq DESC LIMIT 1",
                (kind,),
            ).fetchone()
        return Change(row[0], row[1], json.loads(row[2]), row[3]) if row else None

    def keyperson_hashes(self) -> set[str]:
        with self._conn(tx=False) as con:
            return {r[0] for r in con.execute("SELECT id_hash FROM keypersons WHERE active")}

    # queries -----------------------------------------------------------------------------------
    def stats(self) -> list[dict[str, Any]]:
        with self._conn(tx=False) as con:
            rows = con.execute(
                "SELECT COALESCE(d.name, r.device_id), r.checkpoint, r.day, count(*) "
                "FROM records r LEFT JOIN devices d ON d.device_id = r.device_id "
                "GROUP BY 1, 2, 3 ORDER BY 3, 2, 1"
            ).fetchall()
        return [{"device": r[0], "checkpoint": r[1], "day": r[2], "records": r[3]} for r in rows]

    def trace_person(self, id_hash: str) -> list[Passage]:
        with self._conn(tx=False) as con:
            rows = con.execute(
                _PASSAGE_SELECT + "WHERE r.id_hash = %s ORDER BY r.occurred_at", (id_hash,)
            ).fetchall()
        return [Passage(*r) for r in rows]

    def trace_checkpoint(self, checkpoint: str, start: float, end: float) -> list[Passage]:
        with self._conn(tx=False) as con:
            rows = con.execute(
                _PASSAGE_SELECT + "WHERE r.checkpoint = %s AND r.occurred_at >= %s AND "
                "r.occurred_at < %s ORDER BY r.occurred_at",
                (checkpoint, start, end),
            ).fetchall()
        return [Passage(*r) for r in rows]
