"""The ledger's write path as it was when issue 17 was filed (fieldkit/ledger/households.py at
a5e3d45, the save methods only): bench/old_importer.py writes through it, so the "today"
baseline of bench/patrol.py stays today's code while fieldkit/ledger changes. Not used by
FieldKit. It writes the columns that code wrote (building, unit, room, masked names and health
fields in clear); the schema still has them (blank placeholders in FieldKit's own rows).
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

from bench.old_text import address_key, clean_text
from fieldkit.errors import InputError
from fieldkit.i18n import id_problem
from fieldkit.ledger.model import HEALTH_STATUSES, HOME_STATUSES
from fieldkit.shared.identity import mask_id, mask_name, mask_phone, parse_identity

if TYPE_CHECKING:
    from fieldkit.store import Store

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


def now_local() -> datetime:
    return datetime.now().astimezone()


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


class OldLedger:
    def __init__(self, store: Store) -> None:
        self._s = store
        self._batch: dict[str, list[Any]] | None = None

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
        self._index_cache: dict[str, str] = {}
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

    # -- households ---------------------------------------------------------------------------
    def _household_values(self, hid: str, f: dict[str, Any]) -> dict[str, Any]:
        enc = self._s.cipher.encrypt
        return {
            "grid": f.get("grid") or "",
            "community": f.get("community") or "",
            "building": f["building"],
            "unit": f.get("unit") or "",
            "room": f["room"],
            "sort_key": sort_key(f["room"]),
            "address_enc": enc(hid, "address", f.get("address")),
            "worker": f.get("worker"),
            "registered_count": f.get("registered_count"),
            "resident_count": f.get("resident_count"),
            "tested_count": f.get("tested_count"),
            "is_rental": int(bool(f.get("is_rental"))),
            "landlord_name_enc": enc(hid, "landlord_name", f.get("landlord_name")),
            "landlord_phone_enc": enc(hid, "landlord_phone", f.get("landlord_phone")),
            "notes_enc": enc(hid, "notes", f.get("notes")),
        }

    def household_fields(self, row: dict[str, Any]) -> dict[str, Any]:
        """Every editable field of a stored household row, decrypted."""
        dec = self._s.cipher.decrypt
        out = {f: row.get(f) for f in HOUSEHOLD_FIELDS if f not in HOUSEHOLD_SECRET}
        out["is_rental"] = bool(out["is_rental"])
        for f in HOUSEHOLD_SECRET:
            out[f] = dec(row["id"], f, row.get(f"{f}_enc"))
        return out

    def find_household(self, community: str, building: str, unit: str, room: str) -> str | None:
        return self._s.g.scalar(
            "SELECT id FROM households WHERE address_key = ?",
            [address_key(community, building, unit, room)],
        )

    def save_household(
        self,
        fields: dict[str, Any],
        *,
        household_id: str | None = None,
        source: str = "manual",
        ts: datetime | None = None,
    ) -> tuple[str, str]:
        """Create or update; returns (id, 'created' | 'updated' | 'unchanged').

        Without ``household_id`` the address finds an existing household. ``None`` values
        leave the stored value as it is.
        """
        ts = ts or now_local()
        with self._s.g.tx():
            return self._save_household(fields, household_id, source, ts)

    def _save_household(
        self,
        fields: dict[str, Any],
        household_id: str | None,
        source: str,
        ts: datetime,
        current: Any = UNKNOWN,
    ) -> tuple[str, str]:
        s = self._s
        fields = {k: v for k, v in fields.items() if k in HOUSEHOLD_FIELDS}
        if current is not UNKNOWN:
            pass  # the caller looked it up (bulk import)
        elif household_id is None and fields.get("building") and fields.get("room"):
            household_id = self.find_household(
                fields.get("community") or "",
                fields["building"],
                fields.get("unit") or "",
                fields["room"],
            )
        if current is UNKNOWN:
            current = None
            if household_id:
                rows = s.g.query("SELECT * FROM households WHERE id = ?", [household_id])
                if not rows:
                    raise InputError("err.no_household", id=household_id)
                current = rows[0]
        if current is None:
            if not fields.get("building") or not fields.get("room"):
                raise InputError("err.household_address")
            hid = str(uuid.uuid4())
            full = {f: fields.get(f) for f in HOUSEHOLD_FIELDS}
            changes = {k: v for k, v in full.items() if v not in (None, "")}
            values = self._household_values(hid, full)
            akey = address_key(
                full.get("community") or "",
                str(full["building"]),
                full.get("unit") or "",
                str(full["room"]),
            )
            self._insert(
                "INSERT INTO households(id, address_key, "
                + ", ".join(values)
                + ", created_at, updated_at, version, last_writer) VALUES ("
                + ", ".join("?" * (len(values) + 6))
                + ")",
                [hid, akey, *values.values(), _iso(ts), _iso(ts), 1, self.writer],
            )
            self._insert(
                self._EDIT_INSERT, self._edit_row("household", hid, 0, 1, changes, source, ts)
            )
            return hid, "created"
        old = self.household_fields(current)
        changes = {k: v for k, v in fields.items() if v is not None and old.get(k) != v}
        if not changes:
            return current["id"], "unchanged"
        merged = {**old, **changes}
        hid = current["id"]
        values = self._household_values(hid, merged)
        values["address_key"] = address_key(
            merged.get("community") or "",
            merged["building"],
            merged.get("unit") or "",
            merged["room"],
        )
        version = current["version"] + 1
        s.g.db.conn.execute(
            "UPDATE households SET "
            + ", ".join(f"{k} = ?" for k in values)
            + ", updated_at = ?, version = ?, last_writer = ? WHERE id = ?",
            [*values.values(), _iso(ts), version, self.writer, hid],
        )
        self._insert(
            self._EDIT_INSERT,
            self._edit_row("household", hid, current["version"], version, changes, source, ts),
        )
        return hid, "updated"

    # -- members ------------------------------------------------------------------------------
    def _member_values(self, mid: str, f: dict[str, Any]) -> dict[str, Any]:
        s = self._s
        enc = s.cipher.encrypt
        idn = f.get("id_number")
        return {
            "id_hash": self._index(idn) if idn else None,
            "id_kind": f.get("id_kind"),
            "name_masked": mask_name(f["name"]) if f.get("name") else None,
            "id_masked": mask_id(idn) if idn else None,
            "phone_masked": mask_phone(f["phone"]) if f.get("phone") else None,
            "name_enc": enc(mid, "name", f.get("name")),
            "id_number_enc": enc(mid, "id_number", idn),
            "phone_enc": enc(mid, "phone", f.get("phone")),
            "notes_enc": enc(mid, "notes", f.get("notes")),
            "relation": f.get("relation"),
            "categories": json.dumps(list(f.get("categories") or []), ensure_ascii=False),
            "health_status": f.get("health_status") or "none",
            "status_start": f.get("status_start"),
            "status_end": f.get("status_end"),
            "found_via": f.get("found_via"),
            "vaccination": f.get("vaccination"),
            "last_test_date": f.get("last_test_date"),
            "last_test_result": f.get("last_test_result"),
        }

    def member_fields(self, row: dict[str, Any]) -> dict[str, Any]:
        dec = self._s.cipher.decrypt
        out = {f: row.get(f) for f in MEMBER_FIELDS if f not in MEMBER_SECRET}
        out["categories"] = json.loads(row["categories"])
        for f in MEMBER_SECRET:
            out[f] = dec(row["id"], f, row.get(f"{f}_enc"))
        return out

    def match_key(self, household_id: str, id_number: str | None, name: str | None) -> str:
        """A person is found again by ID number; without one, by name within the household."""
        if id_number:
            return "id:" + self._index(id_number)
        if not name:
            raise InputError("err.member_needs_id_or_name")
        return "name:" + self._s.index(f"{household_id}/{name}")

    def _check_member(self, fields: dict[str, Any]) -> dict[str, Any]:
        f = {k: v for k, v in fields.items() if k in MEMBER_FIELDS or k == "id_kind"}
        if f.get("id_number"):
            f["id_number"], kind = (
                (f["id_number"], f.get("id_kind"))
                if f.get("id_kind")
                else normalise_id(f["id_number"])
            )
            f["id_kind"] = kind
        if (
            "health_status" in f
            and f["health_status"] is not None
            and f["health_status"] not in HEALTH_STATUSES
        ):
            raise InputError("err.health_status", value=f["health_status"])
        if f.get("categories") is not None:
            f["categories"] = list(f["categories"])
        return f

    def save_member(
        self,
        household_id: str,
        fields: dict[str, Any],
        *,
        member_id: str | None = None,
        source: str = "manual",
        ts: datetime | None = None,
    ) -> tuple[str, str]:
        """Add or update a member; returns (id, 'created' | 'updated' | 'unchanged').

        Without ``member_id`` the ID number (or the name inside this household) finds an
        existing member, who moves to this household if registered elsewhere.
        """
        ts = ts or now_local()
        with self._s.g.tx():
            return self._save_member(
                household_id, self._check_member(fields), member_id, source, ts
            )

    def _save_member(
        self,
        household_id: str,
        f: dict[str, Any],
        member_id: str | None,
        source: str,
        ts: datetime,
        current: Any = UNKNOWN,
    ) -> tuple[str, str]:
        s = self._s
        if current is UNKNOWN:
            if member_id:
                rows = s.g.query("SELECT * FROM members WHERE id = ?", [member_id])
            else:
                rows = s.g.query(
                    "SELECT * FROM members WHERE match_key = ?",
                    [self.match_key(household_id, f.get("id_number"), f.get("name"))],
                )
                if not rows and f.get("id_number") and f.get("name"):
                    # Registered before by name only: the ID number now joins that record.
                    rows = s.g.query(
                        "SELECT * FROM members WHERE match_key = ?",
                        [self.match_key(household_id, None, f["name"])],
                    )
            current = rows[0] if rows else None
        self._apply_status_dates(f, current)
        if current is None:
            mid = str(uuid.uuid4())
            full = {k: f.get(k) for k in MEMBER_FIELDS}
            full["id_kind"] = f.get("id_kind")
            values = self._member_values(mid, full)
            changes = {k: v for k, v in full.items() if v not in (None, "", [])}
            changes["household_id"] = household_id
            self._insert(
                "INSERT INTO members(id, household_id, match_key, "
                + ", ".join(values)
                + ", created_at, updated_at, version, last_writer) VALUES ("
                + ", ".join("?" * (len(values) + 7))
                + ")",
                [
                    mid,
                    household_id,
                    self.match_key(household_id, full["id_number"], full["name"]),
                    *values.values(),
                    _iso(ts),
                    _iso(ts),
                    1,
                    self.writer,
                ],
            )
            self._insert(
                self._EDIT_INSERT, self._edit_row("member", mid, 0, 1, changes, source, ts)
            )
            self._sync_isolation(None, values)
            return mid, "created"
        old = self.member_fields(current)
        old["id_kind"] = current["id_kind"]
        changes = {k: v for k, v in f.items() if v is not None and old.get(k) != v}
        if current["household_id"] != household_id:
            changes["household_id"] = household_id
        if current["removed"]:
            changes["removed"] = 0
        if not changes:
            return current["id"], "unchanged"
        merged = {**old, **changes}
        mid = current["id"]
        values = self._member_values(mid, merged)
        version = current["version"] + 1
        new_key = self.match_key(household_id, merged["id_number"], merged["name"])
        if new_key != current["match_key"] and s.g.scalar(
            "SELECT 1 FROM members WHERE match_key = ? AND id != ?", [new_key, mid]
        ):
            raise InputError("err.member_duplicate")
        s.g.db.conn.execute(
            "UPDATE members SET "
            + ", ".join(f"{k} = ?" for k in values)
            + ", household_id = ?, match_key = ?, removed = 0, updated_at = ?, version = ?, "
            "last_writer = ? WHERE id = ?",
            [*values.values(), household_id, new_key, _iso(ts), version, self.writer, mid],
        )
        changes.pop("id_kind", None)
        self._insert(
            self._EDIT_INSERT,
            self._edit_row("member", mid, current["version"], version, changes, source, ts),
        )
        self._sync_isolation(current, values)
        return mid, "updated"

    def _apply_status_dates(self, f: dict[str, Any], current: dict[str, Any] | None) -> None:
        """A home status without dates starts today; the end is start + configured days."""
        status = f.get("health_status")
        if status not in HOME_STATUSES:
            return
        if current is not None and current["health_status"] == status and not f.get("status_start"):
            return
        f["status_start"] = f.get("status_start") or now_local().date().isoformat()
        if not f.get("status_end"):
            f["status_end"] = end_date_for(status, f["status_start"], self._s.settings.rules)

    def _sync_isolation(self, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
        """Keep the gate's isolation index in step with the member's health status."""
        iso = self._s.isolation
        if old and old["id_hash"] and old["id_hash"] != new["id_hash"]:
            iso.set(old["id_hash"], None)
        if not new["id_hash"]:
            return
        if old is None and new["health_status"] not in HOME_STATUSES:
            return  # a new person with no home status: nothing to tell the gate
        if new["health_status"] in HOME_STATUSES:
            iso.set(new["id_hash"], new["health_status"], new["status_end"])
        elif (
            old is None or old["health_status"] in HOME_STATUSES or old["id_hash"] != new["id_hash"]
        ):
            iso.set(new["id_hash"], None)
