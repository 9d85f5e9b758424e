"""The rows the town server's repository takes in and hands out, and the ingest rule that
decides each record's fate (stored, duplicate, conflict).

Plain data, no storage: both the repository (:mod:`.repository`) and its SQL dialects
(:mod:`.dialect`, :mod:`.pg_dialect`) import it, so neither imports the other's caller.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..protocol import CONFLICT, DUPLICATE, STORED


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

    index: int  # type: ignore[assignment]  # a field, not tuple.index
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
