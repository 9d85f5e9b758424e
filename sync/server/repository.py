"""The one storage of the town server: every method written once, for SQLite and PostgreSQL.

What differs between the two databases (connections, locks, column types, the fast way to write
a batch) is one dialect object: :class:`.dialect.SqliteDialect` (default, embedded) or
:class:`.pg_dialect.PgDialect` (PostgreSQL through psycopg 3). The same tests run on both.

Ingest is the heart of it: within one transaction the batch id is claimed, each record is inserted
unless its UUID is already there (then the stored content hash decides: duplicate or conflict), and
the reply is saved with the batch, so a batch sent again gets the same answer and stores nothing.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .dialect import Dialect, SqliteDialect
from .ledger import LedgerEdit, LedgerTx
from .rows import (
    CONFLICT_REASON,
    RECORD_COLUMNS,
    BatchAlreadyIngested,
    BatchMeta,
    Change,
    Device,
    IngestOutcome,
    IngestRecord,
    Passage,
    RepositoryError,
    classify,
    record_row,
    reply_json,
)

__all__ = [
    "CONFLICT_REASON",
    "RECORD_COLUMNS",
    "BatchAlreadyIngested",
    "BatchMeta",
    "Change",
    "Device",
    "IngestOutcome",
    "IngestRecord",
    "Passage",
    "Repository",
    "RepositoryError",
    "classify",
    "open_repository",
    "record_row",
]

_DEVICE_COLS = "device_id, name, status, public_key, created_at, enrolled_at, revoked_at, last_seen"
_PASSAGE_SELECT = (
    "SELECT r.record_id, r.kind, COALESCE(d.name, r.device_id), r.checkpoint, r.occurred_at, "
    "r.direction, r.name_masked, r.id_masked, r.id_hash FROM records r "
    "LEFT JOIN devices d ON d.device_id = r.device_id "
)
_CHANGE_COLS = "seq, kind, data, created_at"


def _device(row: Any) -> Device:
    return Device(row[0], row[1], row[2], bytes(row[3]) if row[3] is not None else None, *row[4:])


def _change(row: Any) -> Change:
    return Change(row[0], row[1], json.loads(row[2]), row[3])


class Repository:
    """Everything the server stores. Methods are synchronous and thread-safe."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.backend = dialect.name

    @property
    def path(self) -> str | None:
        """The database file (SQLite), else None."""
        return self.dialect.path

    @property
    def url(self) -> str | None:
        """The PostgreSQL URL, else None."""
        return getattr(self.dialect, "url", None)

    @property
    def schema(self) -> str | None:
        """The PostgreSQL schema the tables live in, else None."""
        return getattr(self.dialect, "schema", None)

    def _x(self, con: Any, query: str, params: Any = ()) -> Any:
        return con.execute(self.dialect.sql(query), params)

    def _one(self, query: str, params: Any = ()) -> Any:
        with self.dialect.read() as con:
            return self._x(con, query, params).fetchone()

    def _all(self, query: str, params: Any = ()) -> list[Any]:
        with self.dialect.read() as con:
            return list(self._x(con, query, params).fetchall())

    def create_schema(self) -> None:
        self.dialect.create_schema()

    def drop_schema(self) -> None:
        """Tests only: remove every table of a PostgreSQL schema."""
        self.dialect.drop_schema()

    def close(self) -> None:
        self.dialect.close()

    # devices ---------------------------------------------------------------------------------
    def add_device(self, name: str, token_hash: str, expires_at: float, now: float) -> Device:
        device_id = uuid.uuid4().hex[:16]
        with self.dialect.write() as con:
            self.dialect.lock(con, "devices", "SHARE ROW EXCLUSIVE")
            if self._x(
                con, "SELECT 1 FROM devices WHERE name = ? AND status != 'revoked'", (name,)
            ).fetchone():
                raise RepositoryError(f"a device named {name!r} exists: revoke it or pick a name")
            self._x(
                con,
                "INSERT INTO devices (device_id, name, status, token_hash, token_expires, "
                "created_at) VALUES (?, ?, 'pending', ?, ?, ?)",
                (device_id, name, token_hash, expires_at, now),
            )
        return Device(device_id, name, "pending", None, now)

    def enroll_device(self, token_hash: str, public_key: bytes, now: float) -> Device | None:
        """Consume a pending token (once, before it expires); None if no such token."""
        with self.dialect.write() as con:
            rows = self._x(
                con,
                "UPDATE devices SET status = 'active', public_key = ?, enrolled_at = ?, "
                "token_hash = NULL, token_expires = NULL WHERE token_hash = ? AND "
                f"status = 'pending' AND token_expires > ? RETURNING {_DEVICE_COLS}",
                (public_key, now, token_hash, now),
            ).fetchall()
        return _device(rows[0]) if rows else None

    def get_device(self, device_id: str) -> Device | None:
        row = self._one(f"SELECT {_DEVICE_COLS} FROM devices WHERE device_id = ?", (device_id,))
        return _device(row) if row else None

    def list_devices(self) -> list[Device]:
        return [
            _device(r) for r in self._all(f"SELECT {_DEVICE_COLS} FROM devices ORDER BY created_at")
        ]

    def revoke_device(self, name_or_id: str, now: float) -> Device | None:
        with self.dialect.write() as con:
            rows = self._x(
                con,
                "UPDATE devices SET status = 'revoked', revoked_at = ?, token_hash = NULL "
                "WHERE (device_id = ? OR name = ?) AND status != 'revoked' "
                f"RETURNING {_DEVICE_COLS}",
                (now, name_or_id, name_or_id),
            ).fetchall()
        return _device(rows[0]) if rows else None

    def mark_seen(self, device_id: str, now: float) -> None:
        """A device made a signed contact (a sync that had nothing to send still asks for
        updates): the console's and `device list`'s last-contact time moves with it."""
        with self.dialect.write() as con:
            self._x(
                con,
                "UPDATE devices SET last_seen = ? WHERE device_id = ? AND "
                "(last_seen IS NULL OR last_seen < ?)",
                (now, device_id, now - 30),
            )

    # batches and records ---------------------------------------------------------------------
    def batch_reply(self, batch_id: str) -> dict[str, Any] | None:
        row = self._one("SELECT reply FROM batches WHERE batch_id = ?", (batch_id,))
        return json.loads(row[0]) if row and row[0] else None

    def ingest(
        self,
        batch: BatchMeta,
        records: list[IngestRecord],
        rejected: dict[int, tuple[str, str]],
        build_reply: Callable[[IngestOutcome], dict[str, Any]],
        now: float,
        ledger: list[LedgerEdit] | None = None,
    ) -> dict[str, Any]:
        """Store a batch atomically; returns the reply (built by ``build_reply(outcome)``).

        ``ledger``: the batch's ``ledger_edit`` records, parsed; each one stored for the first
        time is merged into the ledger state in the same transaction (:mod:`.ledger`).
        Raises :class:`BatchAlreadyIngested` (with the saved reply) if the batch id is known.
        """
        d = self.dialect
        with d.write() as con:
            claimed = self._x(
                con,
                "INSERT INTO batches (batch_id, device_id, created_at, record_count, received_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (batch_id) DO NOTHING RETURNING 1",
                (batch.batch_id, batch.device_id, batch.created_at, batch.count, now),
            ).fetchall()
            if not claimed:
                row = self._x(
                    con, "SELECT reply FROM batches WHERE batch_id = ?", (batch.batch_id,)
                ).fetchone()
                raise BatchAlreadyIngested(json.loads(row[0]))
            firsts: dict[str, IngestRecord] = {}
            for r in records:
                firsts.setdefault(r.record_id, r)
            stored = d.insert_records(
                con, list(firsts.values()), batch.device_id, batch.batch_id, now
            )
            new, conflicting, fates = classify(records, stored)
            fates.update(rejected)
            d.executemany(
                con,
                "INSERT INTO conflicts VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [
                    (r.record_id, r.content_hash, r.kind, batch.device_id, batch.batch_id)
                    + (r.body_enc, now)
                    for r in conflicting
                ],
            )
            fresh = {r.index for r in new}
            edits = [e for e in ledger or () if e.index in fresh]
            if edits:
                # Ledger merges are rare and read-then-write: one batch at a time.
                d.lock(con, "ledger_fields")
                tx = LedgerTx(con, d.ph)
                for edit in sorted(edits, key=lambda e: e.index):
                    tx.apply(edit, batch.device_id, now)
            reply = build_reply(IngestOutcome(fates))
            self._x(
                con,
                "UPDATE batches SET reply = ? WHERE batch_id = ?",
                (reply_json(reply), batch.batch_id),
            )
            self._x(
                con, "UPDATE devices SET last_seen = ? WHERE device_id = ?", (now, batch.device_id)
            )
        return reply

    def raw_insert(
        self, records: list[IngestRecord], device_id: str, batch_id: str, now: float
    ) -> None:
        """Plain bulk insert, no checks: the baseline of ``bench/sync.py``."""
        with self.dialect.write() as con:
            self.dialect.bulk_insert(
                con, [record_row(r, device_id, batch_id, now) for r in records]
            )

    def record_hashes(self) -> dict[str, str]:
        """record id → content hash of everything stored (for tests and audits)."""
        return dict(self._all("SELECT record_id, content_hash FROM records"))

    def record_count(self) -> int:
        return int(self._one("SELECT count(*) FROM records")[0])

    def conflicts(self) -> list[dict[str, Any]]:
        keys = ("record_id", "content_hash", "kind", "device_id", "batch_id", "received_at")
        rows = self._all(f"SELECT {', '.join(keys)} FROM conflicts ORDER BY received_at")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    # household ledger (state merged from ledger_edit records; see sync.server.ledger) -------
    @contextmanager
    def _ledger(self, write: bool) -> Iterator[LedgerTx]:
        """The ledger tables inside one transaction (a write transaction if ``write``)."""
        d = self.dialect
        with d.write() if write else d.snapshot() as con:
            if write:
                d.lock(con, "ledger_fields")
            yield LedgerTx(con, d.ph)

    def ledger_conflicts(self, include_resolved: bool = False) -> list[dict[str, Any]]:
        with self._ledger(False) as tx:
            return tx.conflicts(include_resolved)

    def ledger_open_conflicts(self) -> int:
        with self._ledger(False) as tx:
            return tx.open_count()

    def resolve_ledger_conflict(
        self, conflict_id: int, keep: str, by: str, now: float
    ) -> dict[str, Any]:
        with self._ledger(True) as tx:
            return tx.resolve(conflict_id, keep, by, now)

    def ledger_state(self, entity_key: str | None = None) -> list[dict[str, Any]]:
        with self._ledger(False) as tx:
            return tx.state(entity_key)

    def ledger_alias(self, entity: str, entity_id: str) -> str | None:
        """The town-wide entity key a device's household or member id is filed under."""
        with self._ledger(False) as tx:
            return tx.alias(entity, entity_id)

    # updates to devices ----------------------------------------------------------------------
    def add_changes(self, kind: str, items: list[dict[str, Any]], now: float) -> int:
        d = self.dialect
        with d.write() as con:
            # One writer at a time keeps seq in commit order, so a device's cursor never skips
            # a change that committed late.
            d.lock(con, "changes")
            d.executemany(
                con,
                "INSERT INTO changes (kind, data, created_at) VALUES (?, ?, ?)",
                [(kind, json.dumps(i, ensure_ascii=False), now) for i in items],
            )
            if kind == "keyperson":
                d.executemany(
                    con,
                    "INSERT INTO keypersons VALUES (?, ?, ?, TRUE, ?) ON CONFLICT (id_hash) DO "
                    "UPDATE SET category = excluded.category, end_date = excluded.end_date, "
                    "active = TRUE, updated_at = excluded.updated_at",
                    [(i["id_hash"], i.get("category"), i.get("end_date"), now) for i in items],
                )
            elif kind == "keyperson_removed":
                d.executemany(
                    con,
                    "UPDATE keypersons SET active = FALSE, updated_at = ? WHERE id_hash = ?",
                    [(now, i["id_hash"]) for i in items],
                )
            return int(self._x(con, "SELECT COALESCE(max(seq), 0) FROM changes").fetchone()[0])

    def changes_since(self, cursor: int, limit: int) -> list[Change]:
        rows = self._all(
            f"SELECT {_CHANGE_COLS} FROM changes WHERE seq > ? ORDER BY seq LIMIT ?",
            (cursor, limit),
        )
        return [_change(r) for r in rows]

    def changes_of(self, kind: str) -> list[Change]:
        """Every change of one kind, newest first (the checkpoint-scoped mode and rules)."""
        rows = self._all(
            f"SELECT {_CHANGE_COLS} FROM changes WHERE kind = ? ORDER BY seq DESC", (kind,)
        )
        return [_change(r) for r in rows]

    def latest_change(self, kind: str) -> Change | None:
        """The newest change of one kind (the rules in force, the mode), or None."""
        row = self._one(
            f"SELECT {_CHANGE_COLS} FROM changes WHERE kind = ? ORDER BY seq DESC LIMIT 1",
            (kind,),
        )
        return _change(row) if row else None

    def keyperson_hashes(self) -> set[str]:
        """Hashes currently on the key-person list (added and not removed since)."""
        return {r[0] for r in self._all("SELECT id_hash FROM keypersons WHERE active")}

    # queries -----------------------------------------------------------------------------------
    def stats(self) -> list[dict[str, Any]]:
        """Rows of {device, checkpoint, day, records}."""
        rows = self._all(
            "SELECT COALESCE(d.name, r.device_id), r.checkpoint, r.day, count(*) FROM records r "
            "LEFT JOIN devices d ON d.device_id = r.device_id "
            "GROUP BY 1, 2, 3 ORDER BY 3, 2, 1"
        )
        return [{"device": r[0], "checkpoint": r[1], "day": r[2], "records": r[3]} for r in rows]

    def trace_person(self, id_hash: str) -> list[Passage]:
        rows = self._all(_PASSAGE_SELECT + "WHERE r.id_hash = ? ORDER BY r.occurred_at", (id_hash,))
        return [Passage(*r) for r in rows]

    def trace_checkpoint(self, checkpoint: str, start: float, end: float) -> list[Passage]:
        rows = self._all(
            _PASSAGE_SELECT + "WHERE r.checkpoint = ? AND r.occurred_at >= ? AND "
            "r.occurred_at < ? ORDER BY r.occurred_at",
            (checkpoint, start, end),
        )
        return [Passage(*r) for r in rows]


def open_repository(
    database_url: str | None, data_dir: str | None = None, schema: str | None = None
) -> Repository:
    """SQLite file in the data dir by default; ``postgresql://…`` for PostgreSQL."""
    if database_url and database_url.startswith(("postgresql://", "postgres://")):
        # Plain import, late on purpose: an SQLite town never loads psycopg.
        from .pg_dialect import PgDialect

        return Repository(PgDialect(database_url, schema=schema))
    if database_url and database_url.startswith("sqlite:///"):
        return Repository(SqliteDialect(database_url.removeprefix("sqlite:///")))
    if database_url:
        raise RepositoryError(
            f"database URL {database_url!r} is not supported: use postgresql://… or sqlite:///path"
        )
    if not data_dir:
        raise RepositoryError("no database: give --data-dir or --database-url")
    return Repository(SqliteDialect(os.path.join(data_dir, "town.sqlite3")))
