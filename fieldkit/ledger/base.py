"""What every part of the ledger facade shares: the field lists, the edit event (versioned,
encrypted ``ledger_edits`` rows), bulk-import batching, the blind index cache and the clock.

The facade (``store.ledger``, :class:`fieldkit.ledger.households.Ledger`) is assembled from
:mod:`.homes` (households), :mod:`.members` and :mod:`.visits` (rounds, visits, coverage), each a
class over :class:`LedgerBase`.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from ..i18n import id_problem
from ..shared.identity import mask_id, parse_identity
from .model import clean_text

if TYPE_CHECKING:
    from ..store import Store


HOUSEHOLD_FIELDS = (
    "grid",
    "community",
    "building",
    "unit",
    "room",
    "address",
    "worker",
    "registered_count",
    "resident_count",
    "tested_count",
    "is_rental",
    "landlord_name",
    "landlord_phone",
    "notes",
)
HOUSEHOLD_SECRET = ("address", "landlord_name", "landlord_phone", "notes")
MEMBER_FIELDS = (
    "name",
    "id_number",
    "phone",
    "relation",
    "categories",
    "health_status",
    "status_start",
    "status_end",
    "found_via",
    "vaccination",
    "last_test_date",
    "last_test_result",
    "notes",
)
MEMBER_SECRET = ("name", "id_number", "phone", "notes")


UNKNOWN: Any = object()  # "not looked up yet" (None means: looked up, not there)


@lru_cache(maxsize=16)
def _iso(ts: datetime) -> str:
    return ts.isoformat(timespec="milliseconds")


def sort_key(room: str) -> str:
    """Natural order of room numbers: 2 < 10 < 101, '3-201' by its parts."""
    return re.sub(r"\d+", lambda m: m.group().zfill(8), clean_text(room).upper())


def normalise_id(text: str) -> tuple[str, str]:
    """(normalised number, kind); raises InputError with the parser's reason when unusable."""
    ident = parse_identity(text)
    if ident.problem or not ident.number:
        raise InputError("err.id_invalid", id=mask_id(text or ""), problem=id_problem(ident))
    return ident.number, ident.kind


def end_date_for(status: str, start: str | date, rules) -> str | None:
    """Planned end of home isolation / monitoring: start + configured days."""
    days = {
        "home_isolation": rules.isolation_days,
        "home_monitoring": rules.health_monitoring_days,
    }.get(status)
    if days is None:
        return None
    start_d = date.fromisoformat(start) if isinstance(start, str) else start
    return (start_d + timedelta(days=days)).isoformat()


class LedgerBase:
    def __init__(self, store: Store) -> None:
        self._s = store
        self._batch: dict[str, list[Any]] | None = None
        self._index_cache: dict[str, str] = {}

    def _now(self) -> datetime:
        """The clock (the assembled facade reads ``households.now_local``, which tests set)."""
        return datetime.now().astimezone()

    # -- helpers ----------------------------------------------------------------------------
    def _insert(self, sql: str, params: Any) -> None:
        """INSERT now, or (inside :meth:`batched`) collect for one ``executemany``."""
        if self._batch is None:
            self._s.g.db.conn.execute(sql, params)
        else:
            self._batch.setdefault(sql, []).append(params)

    def _index(self, value: str) -> str:
        """The blind index; remembered during a bulk import (each ID is needed 2-3 times)."""
        if self._batch is None:
            return self._s.index(value)
        cache = self._index_cache
        if value not in cache:
            cache[value] = self._s.index(value)
        return cache[value]

    @contextmanager
    def batched(self) -> Iterator[None]:
        """Bulk import: new rows are inserted with executemany when the block ends (households
        before members: statements run in the order first seen). Caller holds the transaction."""
        self._batch = {}
        self._index_cache = {}
        try:
            yield
            for sql, rows in self._batch.items():
                self._s.g.db.conn.executemany(sql, rows)
        finally:
            self._batch = None
            self._index_cache = {}

    @property
    def writer(self) -> str:
        op = self._s.require_operator()
        return f"{op.name}@{self._s.settings.checkpoint.code}"

    def _edit_row(
        self,
        entity: str,
        entity_id: str,
        base: int,
        version: int,
        changes: dict[str, Any],
        source: str,
        ts: datetime,
    ) -> tuple:
        rid = str(uuid.uuid4())
        blob = self._s.cipher.encrypt(
            rid, "changes", json.dumps(changes, ensure_ascii=False, sort_keys=True)
        )
        return (
            rid,
            _iso(ts),
            _iso(ts)[:10],
            self._s.settings.checkpoint.code,
            entity,
            entity_id,
            base,
            version,
            self.writer,
            source,
            blob,
        )

    _EDIT_INSERT = (
        "INSERT INTO ledger_edits(id, ts, day, checkpoint, entity, entity_id, "
        "base_version, version, writer, source, changes_enc) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?)"
    )

    def edit_body(self, r: dict[str, Any]) -> dict[str, Any]:
        """A ledger edit as it goes to the town server."""
        changes = json.loads(self._s.cipher.decrypt(r["id"], "changes", r["changes_enc"]) or "{}")
        body = {
            k: r[k]
            for k in (
                "id",
                "ts",
                "day",
                "checkpoint",
                "entity",
                "entity_id",
                "base_version",
                "version",
                "writer",
                "source",
            )
        }
        body["changes"] = changes
        if changes.get("id_number"):
            body["id_number"] = changes["id_number"]
        return body

    # -- rounds and visits ------------------------------------------------------------------
    def current_round_id(self) -> str | None:
        return self._s.g.scalar(
            "SELECT id FROM rounds WHERE closed_at IS NULL ORDER BY started_at DESC LIMIT 1"
        )

    def current_round(self) -> dict[str, Any] | None:
        rows = self._s.g.query(
            "SELECT * FROM rounds WHERE closed_at IS NULL ORDER BY started_at DESC LIMIT 1"
        )
        return rows[0] if rows else None
