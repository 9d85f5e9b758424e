"""The one storage interface of the town server, and the rows it hands out.

Two implementations: :mod:`sync.server.sqlite_repo` (default, embedded) and
:mod:`sync.server.pg_repo` (PostgreSQL through psycopg 3). The same tests run on both.

Ingest is the heart of it: within one transaction the batch id is claimed, each record is inserted
unless its UUID is already there (then the stored content hash decides: duplicate or conflict), and
the reply is saved with the batch, so a batch sent again gets the same answer and stores nothing.
"""

from __future__ import annotations

import abc
import json
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..protocol import CONFLICT, DUPLICATE, STORED
from .ledger import LedgerEdit, LedgerTx


class RepositoryError(Exception):
    """Storage cannot be used (wrong URL, missing schema ...): the message says what to do."""


class BatchAlreadyIngested(Exception):
    def __init__(self, reply: dict[str, Any]) -> None:
        super().__init__("batch already ingested")
        self.reply = reply


@dataclass(frozen=True)
class Device:
    device_id: str
    name: str
    status: str  # pending | active | revoked
    public_key: bytes | None
    created_at: float
    enrolled_at: float | None = None
    revoked_at: float | None = None
    last_seen: float | None = None


class IngestRecord(NamedTuple):
    """One record of a batch, parsed and ready for storage (body already encrypted at rest).
    A tuple: thousands are made per batch, and a frozen dataclass costs five times as much."""

    index: int
    record_id: str
    kind: str
    content_hash: str
    occurred_at: float | None
    day: str | None
    checkpoint: str | None
    direction: str | None
    id_hash: str | None
    name_masked: str | None
    id_masked: str | None
    body_enc: bytes


@dataclass(frozen=True)
class BatchMeta:
    batch_id: str
    device_id: str
    created_at: float
    count: int


@dataclass
class IngestOutcome:
    """Fate of each record by its index in the batch (records not listed are ``stored``)."""

    fates: dict[int, tuple[str, str | None]] = field(default_factory=dict)

    def counts(self, total: int) -> dict[str, int]:
        c = {STORED: total, DUPLICATE: 0, CONFLICT: 0, "rejected": 0}
        for status, _ in self.fates.values():
            c[status] = c.get(status, 0) + 1
            c[STORED] -= 1
        return c


@dataclass(frozen=True)
class Passage:
    record_id: str
    kind: str
    device: str
    checkpoint: str | None
    occurred_at: float | None
    direction: str | None
    name_masked: str | None
    id_masked: str | None
    id_hash: str | None


@dataclass(frozen=True)
class Change:
    seq: int
    kind: str  # keyperson | keyperson_removed | revocation | rules | mode
    data: dict[str, Any]
    created_at: float


RECORD_COLUMNS = (
    "record_id, kind, device_id, batch_id, content_hash, occurred_at, day, checkpoint, "
    "direction, id_hash, name_masked, id_masked, body, received_at"
)


def reply_json(reply: dict[str, Any]) -> str:
    return json.dumps(reply, separators=(",", ":"), ensure_ascii=False)


class Repository(abc.ABC):
    """Everything the server stores. Methods are synchronous and thread-safe."""

    backend = "?"

    @abc.abstractmethod
    def create_schema(self) -> None: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    # devices
    @abc.abstractmethod
    def add_device(self, name: str, token_hash: str, expires_at: float, now: float) -> Device: ...

    @abc.abstractmethod
    def enroll_device(self, token_hash: str, public_key: bytes, now: float) -> Device | None:
        """Consume a pending token (once, before it expires); None if no such token."""

    @abc.abstractmethod
    def get_device(self, device_id: str) -> Device | None: ...

    @abc.abstractmethod
    def list_devices(self) -> list[Device]: ...

    @abc.abstractmethod
    def revoke_device(self, name_or_id: str, now: float) -> Device | None: ...

    # batches and records
    @abc.abstractmethod
    def batch_reply(self, batch_id: str) -> dict[str, Any] | None: ...

    @abc.abstractmethod
    def ingest(
        self,
        batch: BatchMeta,
        records: list[IngestRecord],
        rejected: dict[int, tuple[str, str]],
        build_reply: Any,
        now: float,
        ledger: list[LedgerEdit] | None = None,
    ) -> dict[str, Any]:
        """Store a batch atomically; returns the reply (built by ``build_reply(outcome)``).

        ``ledger``: the batch's ``ledger_edit`` records, parsed; each one stored for the first
        time is merged into the ledger state in the same transaction (:mod:`.ledger`).
        Raises :class:`BatchAlreadyIngested` (with the saved reply) if the batch id is known.
        """

    # household ledger (state merged from ledger_edit records; see sync.server.ledger)
    @abc.abstractmethod
    def _ledger(self, write: bool) -> AbstractContextManager[LedgerTx]:
        """The ledger tables inside one transaction (a write transaction if ``write``)."""

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

    @abc.abstractmethod
    def raw_insert(
        self, records: list[IngestRecord], device_id: str, batch_id: str, now: float
    ) -> None:
        """Plain bulk insert, no checks: the baseline of ``bench/sync.py``."""

    @abc.abstractmethod
    def record_hashes(self) -> dict[str, str]:
        """record id → content hash of everything stored (for tests and audits)."""

    @abc.abstractmethod
    def record_count(self) -> int: ...

    @abc.abstractmethod
    def conflicts(self) -> list[dict[str, Any]]: ...

    # updates to devices
    @abc.abstractmethod
    def add_changes(self, kind: str, items: list[dict[str, Any]], now: float) -> int: ...

    @abc.abstractmethod
    def changes_since(self, cursor: int, limit: int) -> list[Change]: ...

    @abc.abstractmethod
    def latest_change(self, kind: str) -> Change | None:
        """The newest change of one kind (the rules in force, the mode), or None."""

    @abc.abstractmethod
    def keyperson_hashes(self) -> set[str]:
        """Hashes currently on the key-person list (added and not removed since)."""

    # queries
    @abc.abstractmethod
    def stats(self) -> list[dict[str, Any]]:
        """Rows of {device, checkpoint, day, records}."""

    @abc.abstractmethod
    def trace_person(self, id_hash: str) -> list[Passage]: ...

    @abc.abstractmethod
    def trace_checkpoint(self, checkpoint: str, start: float, end: float) -> list[Passage]: ...


def open_repository(
    database_url: str | None, data_dir: str | None = None, schema: str | None = None
) -> Repository:
    """SQLite file in the data dir by default; ``postgresql://…`` for PostgreSQL."""
    if database_url and database_url.startswith(("postgresql://", "postgres://")):
        from .pg_repo import PgRepository

        return PgRepository(database_url, schema=schema)
    from .sqlite_repo import SqliteRepository

    if database_url and database_url.startswith("sqlite:///"):
        return SqliteRepository(database_url.removeprefix("sqlite:///"))
    if database_url:
        raise RepositoryError(
            f"database URL {database_url!r} is not supported: use postgresql://… or sqlite:///path"
        )
    if not data_dir:
        raise RepositoryError("no database: give --data-dir or --database-url")
    import os

    return SqliteRepository(os.path.join(data_dir, "town.sqlite3"))


CONFLICT_REASON = (
    "conflict: a record with this id is already on the server with different content; "
    "both are kept for review by the town office"
)


def classify(
    records: list[IngestRecord], stored_hashes: dict[str, str]
) -> tuple[list[IngestRecord], list[IngestRecord], dict[int, tuple[str, str | None]]]:
    """Split a batch into (new records, conflicting records, fates of the non-new ones).

    ``stored_hashes`` maps the ids already on the server to their content hash. A record id that
    appears twice in one batch is judged against its first occurrence.
    """
    new: list[IngestRecord] = []
    conflicting: list[IngestRecord] = []
    fates: dict[int, tuple[str, str | None]] = {}
    seen = dict(stored_hashes)
    for r in records:
        known = seen.get(r.record_id)
        if known is None:
            new.append(r)
            seen[r.record_id] = r.content_hash
        elif known == r.content_hash:
            fates[r.index] = (DUPLICATE, None)
        else:
            fates[r.index] = (CONFLICT, CONFLICT_REASON)
            conflicting.append(r)
    return new, conflicting, fates


def record_row(r: IngestRecord, device_id: str, batch_id: str, now: float) -> tuple[Any, ...]:
    return (
        r.record_id,
        r.kind,
        device_id,
        batch_id,
        r.content_hash,
        r.occurred_at,
        r.day,
        r.checkpoint,
        r.direction,
        r.id_hash,
        r.name_masked,
        r.id_masked,
        r.body_enc,
        now,
    )
