"""The household ledger facade (一户一档): households, members, rounds, visits, coverage.

Screens, the CLI and the importer call this; nothing else touches the ledger tables. Every
change to a household or member bumps its ``version``, records ``last_writer`` and appends a
``ledger_edits`` event (the fields that changed, encrypted) that syncs to the town server.

Why one module of ~950 lines: it is one facade (``store.ledger``) over tables that are written
together. A household save and a member save share the edit-event, versioning, blind-index and
encryption helpers at the top, and the round/visit/coverage part reads the same household rows
with the same "reached today" state. The seam, if it grows: rounds, visits and coverage (the
last third) into their own module; the tests patch ``households.now_local``, so the clock moves
with it.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from ..i18n import id_problem
from ..shared.identity import mask_id, mask_name, mask_phone, parse_identity
from .model import (
    FLAG_CATEGORIES,
    HEALTH_STATUSES,
    HOME_STATUSES,
    SYMPTOMS,
    VISIT_OUTCOMES,
    HouseholdRow,
    MemberRow,
    address_key,
    clean_text,
)

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


class Ledger:
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

    def visit_body(self, r: dict[str, Any]) -> dict[str, Any]:
        dec = self._s.cipher.decrypt
        body = {
            k: v
            for k, v in r.items()
            if not k.endswith("_enc")
            and k not in ("sync_state", "sync_reason", "synced_at", "batch_id")
        }
        body["members"] = json.loads(r["members"])
        for f in ("supply", "medical", "notes", "follow_up_note"):
            col = "follow_up_enc" if f == "follow_up_note" else f"{f}_enc"
            body[f] = dec(r["id"], f, r.get(col))
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

    def household(self, household_id: str, today: str | None = None) -> HouseholdRow | None:
        rows = self._household_rows("h.id = ?", [household_id], today)
        return rows[0] if rows else None

    def buildings(self, grid: str | None = None) -> list[dict[str, Any]]:
        """Buildings with their household count, in natural order."""
        where, params = ("WHERE grid = ?", [grid]) if grid else ("", [])
        rows = self._s.g.query(
            f"SELECT grid, building, count(*) AS households FROM households "
            f"{where} GROUP BY grid, building",
            params,
        )
        return sorted(rows, key=lambda r: (r["grid"], sort_key(r["building"])))

    def units(self, building: str) -> list[str]:
        units = [
            r["unit"]
            for r in self._s.g.query(
                "SELECT DISTINCT unit FROM households WHERE building = ?", [building]
            )
        ]
        return sorted(units, key=sort_key)

    def households_in(
        self, building: str, unit: str | None = None, today: str | None = None
    ) -> list[HouseholdRow]:
        """One building's (or unit's) households with today's state and flags."""
        if unit is None:
            return self._household_rows("h.building = ?", [building], today)
        return self._household_rows("h.building = ? AND h.unit = ?", [building, unit], today)

    def _household_rows(
        self, where: str, params: list[Any], today: str | None = None
    ) -> list[HouseholdRow]:
        today = today or now_local().date().isoformat()
        round_id = self.current_round_id() or ""
        rows = self._s.g.query(
            f"""SELECT h.id, h.grid, h.community, h.building, h.unit, h.room, h.worker,
                   h.registered_count, h.resident_count, h.tested_count, h.is_rental, h.version,
                   (SELECT count(*) FROM members m WHERE m.household_id = h.id
                        AND m.removed = 0) AS n_members,
                   (SELECT group_concat(m.categories || '|' || m.health_status, ';')
                        FROM members m WHERE m.household_id = h.id AND m.removed = 0
                        AND (m.categories != '[]' OR m.health_status != 'none')) AS member_info,
                   (SELECT v.outcome FROM visits v WHERE v.household_id = h.id AND v.day = ?
                        ORDER BY v.ts DESC LIMIT 1) AS today,
                   (SELECT v.follow_up FROM visits v WHERE v.household_id = h.id
                        ORDER BY v.ts DESC LIMIT 1) AS follow_up,
                   (SELECT v.supply_need + 2 * v.medical_need FROM visits v
                        WHERE v.household_id = h.id ORDER BY v.ts DESC LIMIT 1) AS needs,
                   (SELECT count(*) FROM visits v WHERE v.household_id = h.id
                        AND v.round_id = ? AND v.outcome = 'seen') AS seen_n,
                   (SELECT count(*) FROM visits v WHERE v.household_id = h.id
                        AND v.round_id = ? AND v.outcome = 'nobody_home') AS away_n
               FROM households h WHERE {where}
               ORDER BY h.building, h.unit, h.sort_key""",
            [today, round_id, round_id, *params],
        )
        out = []
        for r in rows:
            flags: list[str] = []
            for part in (r["member_info"] or "").split(";"):
                if not part:
                    continue
                cats, _, status = part.rpartition("|")
                for c in json.loads(cats):
                    if c in FLAG_CATEGORIES and c not in flags:
                        flags.append(c)
                if status in HOME_STATUSES + ("central_isolation",) and status not in flags:
                    flags.append(status)
            if r["is_rental"]:
                flags.append("rental")
            if r["away_n"] >= 2 and not r["seen_n"]:
                flags.append("nobody_home_twice")
            needs = r["needs"] or 0
            if needs & 1:
                flags.append("supply_need")
            if needs & 2:
                flags.append("medical_need")
            out.append(
                HouseholdRow(
                    id=r["id"],
                    grid=r["grid"],
                    community=r["community"],
                    building=r["building"],
                    unit=r["unit"],
                    room=r["room"],
                    worker=r["worker"],
                    registered_count=r["registered_count"],
                    resident_count=r["resident_count"],
                    tested_count=r["tested_count"],
                    is_rental=bool(r["is_rental"]),
                    members=r["n_members"],
                    flags=tuple(flags),
                    today=r["today"],
                    follow_up=bool(r["follow_up"]),
                    nobody_home_count=r["away_n"],
                    reached=bool(r["seen_n"]),
                    version=r["version"],
                )
            )
        return out

    def household_full(self, household_id: str, *, purpose: str) -> dict[str, Any]:
        """Decrypted household fields: audited as a full-data view."""
        row = self._s.read_full("households", household_id, entity="household", purpose=purpose)
        if row is None:
            raise InputError("err.no_household", id=household_id)
        return self.household_fields(row)

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

    def remove_member(self, member_id: str, reason: str) -> None:
        """Moved away or deceased: the record stays (with its history), hidden from lists."""
        s = self._s
        ts = now_local()
        with s.g.tx() as db:
            rows = s.g.query("SELECT * FROM members WHERE id = ?", [member_id])
            if not rows:
                raise InputError("err.no_member", id=member_id)
            cur = rows[0]
            version = cur["version"] + 1
            db.execute(
                "UPDATE members SET removed = 1, version = ?, last_writer = ?, "
                "updated_at = ? WHERE id = ?",
                [version, self.writer, _iso(ts), member_id],
            )
            db.execute(
                self._EDIT_INSERT,
                self._edit_row(
                    "member",
                    member_id,
                    cur["version"],
                    version,
                    {"removed": 1, "reason": reason},
                    "manual",
                    ts,
                ),
            )
            if cur["id_hash"]:
                s.isolation.set(cur["id_hash"], None)

    @staticmethod
    def _member_row(r: dict[str, Any]) -> MemberRow:
        return MemberRow(
            id=r["id"],
            household_id=r["household_id"],
            name_masked=r["name_masked"],
            id_masked=r["id_masked"],
            phone_masked=r["phone_masked"],
            relation=r["relation"],
            categories=tuple(json.loads(r["categories"])),
            health_status=r["health_status"],
            status_start=r["status_start"],
            status_end=r["status_end"],
            found_via=r["found_via"],
            version=r["version"],
        )

    def members(self, household_id: str) -> list[MemberRow]:
        return [
            self._member_row(r)
            for r in self._s.g.query(
                "SELECT * FROM members WHERE household_id = ? AND removed = 0 "
                "ORDER BY created_at, rowid",
                [household_id],
            )
        ]

    def member(self, member_id: str) -> MemberRow | None:
        rows = self._s.g.query("SELECT * FROM members WHERE id = ?", [member_id])
        return self._member_row(rows[0]) if rows else None

    def find_member(self, id_number: str) -> MemberRow | None:
        """The member with this ID number (scanned or typed), wherever registered."""
        number, _ = normalise_id(id_number)
        rows = self._s.g.query(
            "SELECT * FROM members WHERE id_hash = ? AND removed = 0", [self._s.index(number)]
        )
        return self._member_row(rows[0]) if rows else None

    def member_full(self, member_id: str, *, purpose: str) -> dict[str, Any]:
        """Decrypted member fields: audited as a full-data view."""
        row = self._s.read_full("members", member_id, entity="member", purpose=purpose)
        if row is None:
            raise InputError("err.no_member", id=member_id)
        return self.member_fields(row)

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

    def start_round(self, name: str | None = None) -> str:
        """A new screening round (第N轮入户排查): coverage counts from zero again."""
        s = self._s
        op = s.require_operator().name
        ts = _iso(now_local())
        rid = str(uuid.uuid4())
        n = (s.g.scalar("SELECT count(*) FROM rounds") or 0) + 1
        with s.g.tx() as db:
            db.execute("UPDATE rounds SET closed_at = ? WHERE closed_at IS NULL", [ts])
            db.execute(
                "INSERT INTO rounds(id, name, started_at, started_by) VALUES (?,?,?,?)",
                [rid, name or f"#{n}", ts, op],
            )
            s.audit.append("round_start", op, {"round": rid, "n": n})
        return rid

    def record_visit(
        self,
        household_id: str,
        outcome: str,
        *,
        members: Iterable[dict[str, Any]] = (),
        supply: str | None = None,
        medical: str | None = None,
        notes: str | None = None,
        follow_up: str | None = None,
        ts: datetime | None = None,
    ) -> dict[str, Any]:
        """One door-to-door visit (append-only). ``members``: member_id, temperature, symptoms.

        Returns the stored visit with ``abnormal``: members whose temperature reached the fever
        threshold or who have symptoms (the screen shows a referral alert for them).
        """
        s = self._s
        operator = s.require_operator().name
        if outcome not in VISIT_OUTCOMES:
            raise InputError("err.visit_outcome", allowed=", ".join(VISIT_OUTCOMES))
        if not s.g.scalar("SELECT 1 FROM households WHERE id = ?", [household_id]):
            raise InputError("err.no_household", id=household_id)
        rules = s.settings.rules
        checked: list[dict[str, Any]] = []
        abnormal: list[str] = []
        for m in members:
            temp = m.get("temperature")
            if temp is not None and not rules.temperature_min <= temp <= rules.temperature_max:
                raise InputError("err.temp_implausible", value=temp)
            symptoms = [x for x in m.get("symptoms") or ()]
            bad = [x for x in symptoms if x not in SYMPTOMS]
            if bad:
                raise InputError("err.symptom", value=bad[0])
            checked.append({"member_id": m["member_id"], "temperature": temp, "symptoms": symptoms})
            if (temp is not None and temp >= rules.fever_threshold) or symptoms:
                abnormal.append(m["member_id"])
        ts = (ts or now_local()).astimezone()
        vid = str(uuid.uuid4())
        enc = s.cipher.encrypt
        row = {
            "id": vid,
            "ts": _iso(ts),
            "day": ts.date().isoformat(),
            "checkpoint": s.settings.checkpoint.code,
            "round_id": None,
            "household_id": household_id,
            "operator": operator,
            "outcome": outcome,
            "follow_up": int(bool(follow_up) or bool(abnormal)),
            "supply_need": int(bool(supply)),
            "medical_need": int(bool(medical)),
            "supply_enc": enc(vid, "supply", supply or None),
            "medical_enc": enc(vid, "medical", medical or None),
            "notes_enc": enc(vid, "notes", notes or None),
            "follow_up_enc": enc(vid, "follow_up_note", follow_up or None),
            "members": json.dumps(checked, ensure_ascii=False),
        }
        with s.g.tx() as db:
            row["round_id"] = self.current_round_id() or self.start_round()
            db.execute(
                f"INSERT INTO visits({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                list(row.values()),
            )
        return {
            **{k: v for k, v in row.items() if not k.endswith("_enc")},
            "members": checked,
            "abnormal": abnormal,
        }

    def visits(self, household_id: str, limit: int = 20) -> list[dict[str, Any]]:
        rows = self._s.g.query(
            "SELECT * FROM visits WHERE household_id = ? ORDER BY ts DESC LIMIT ?",
            [household_id, limit],
        )
        out = []
        for r in rows:
            out.append(
                {k: v for k, v in r.items() if not k.endswith("_enc")}
                | {"members": json.loads(r["members"])}
            )
        return out

    # -- figures for reports (counts only: no personal field leaves) ---------------------------
    def households_visited_on(self, day: str) -> int:
        """Households someone went to the door of on ``day`` (any outcome)."""
        return int(
            self._s.g.scalar("SELECT count(DISTINCT household_id) FROM visits WHERE day = ?", [day])
            or 0
        )

    def category_counts(self, as_of: str, observing: Iterable[str]) -> dict[str, int]:
        """Members registered by ``as_of`` per category (``category.<code>``), and those still
        under one of the ``observing`` statuses on that day (``observing.<status>``)."""
        watched = set(observing)
        out: dict[str, int] = {}
        for r in self._s.g.query(
            "SELECT categories, health_status, status_end FROM members "
            "WHERE removed = 0 AND substr(created_at, 1, 10) <= ?",
            [as_of],
        ):
            try:
                cats = json.loads(r["categories"] or "[]")
            except ValueError:
                cats = []
            for c in cats:
                key = f"category.{c}"
                out[key] = out.get(key, 0) + 1
            status = r["health_status"]
            if status in watched and (not r["status_end"] or r["status_end"] >= as_of):
                key = f"observing.{status}"
                out[key] = out.get(key, 0) + 1
        return dict(sorted(out.items()))

    # -- coverage (不漏一户, 不漏一人) ----------------------------------------------------------
    def coverage(self, round_id: str | None = None) -> dict[str, Any]:
        """Visited (someone seen) / total households per unit, building and grid this round."""
        round_id = round_id or self.current_round_id() or ""
        # Three grouped scans instead of a sub-query per household (20k households: ~10x faster).
        q = self._s.g.query
        totals = q(
            "SELECT grid, building, unit, count(*) AS n FROM households "
            "GROUP BY grid, building, unit"
        )
        visited = {
            (r["grid"], r["building"], r["unit"]): r["n"]
            for r in q(
                "SELECT h.grid, h.building, h.unit, count(DISTINCT v.household_id) AS n "
                "FROM visits v JOIN households h ON h.id = v.household_id "
                "WHERE v.round_id = ? AND v.outcome = 'seen' GROUP BY h.grid, h.building, h.unit",
                [round_id],
            )
        }
        people = {
            (r["grid"], r["building"], r["unit"]): r["n"]
            for r in q(
                "SELECT h.grid, h.building, h.unit, sum(c.n) AS n FROM (SELECT household_id, "
                "count(*) AS n FROM members WHERE removed = 0 GROUP BY household_id) c "
                "JOIN households h ON h.id = c.household_id GROUP BY h.grid, h.building, h.unit"
            )
        }
        rows = [
            {
                "grid": r["grid"],
                "building": r["building"],
                "unit": r["unit"],
                "total": r["n"],
                "visited": visited.get(key, 0),
                "people": people.get(key, 0),
            }
            for r in totals
            for key in [(r["grid"], r["building"], r["unit"])]
        ]
        units: list[Any] = []
        buildings: dict[Any, Any] = {}
        grids: dict[Any, Any] = {}
        total = {"total": 0, "visited": 0, "people": 0}
        for r in sorted(
            rows, key=lambda r: (r["grid"], sort_key(r["building"]), sort_key(r["unit"]))
        ):
            units.append(r)
            for key, agg in (((r["grid"], r["building"]), buildings), (r["grid"], grids)):
                a = agg.setdefault(key, {"total": 0, "visited": 0, "people": 0})
                for k in ("total", "visited", "people"):
                    a[k] += r[k]
            for k in ("total", "visited", "people"):
                total[k] += r[k]
        return {
            "round_id": round_id or None,
            "units": units,
            "buildings": [{"grid": g, "building": b, **v} for (g, b), v in buildings.items()],
            "grids": [{"grid": g, **v} for g, v in grids.items()],
            "total": total,
        }

    def coverage_for(self, building: str, unit: str | None = None) -> dict[str, dict[str, int]]:
        """Visited / total for one unit, its building, its grid (``grid``: with its ``name``;
        absent when the households have no grid) and everything: what the patrol screen shows
        under the list (cheap enough to run on every refresh)."""
        round_id = self.current_round_id() or ""
        q = self._s.g.query
        seen = (
            "EXISTS (SELECT 1 FROM visits v WHERE v.household_id = h.id AND v.round_id = ? "
            "AND v.outcome = 'seen')"
        )

        def count(where: str, params: list[Any]) -> dict[str, int]:
            r = q(
                f"SELECT count(*) AS total, coalesce(sum({seen}), 0) AS visited "
                f"FROM households h WHERE {where}",
                [round_id, *params],
            )[0]
            return {"total": r["total"], "visited": r["visited"]}

        out = {"building": count("h.building = ?", [building])}
        out["unit"] = (
            count("h.building = ? AND h.unit = ?", [building, unit])
            if unit is not None
            else out["building"]
        )
        # The grid the unit belongs to (the most common one, should an import mix them).
        where = "building = ?" + (" AND unit = ?" if unit is not None else "")
        grid = self._s.g.scalar(
            f"SELECT grid FROM households WHERE {where} GROUP BY grid ORDER BY count(*) DESC, "
            "grid LIMIT 1",
            [building] + ([unit] if unit is not None else []),
        )
        if grid:
            out["grid"] = {
                "name": grid,
                "total": self._s.g.scalar("SELECT count(*) FROM households WHERE grid = ?", [grid])
                or 0,
                "visited": self._s.g.scalar(
                    "SELECT count(DISTINCT v.household_id) FROM visits v JOIN households h "
                    "ON h.id = v.household_id WHERE v.round_id = ? AND v.outcome = 'seen' "
                    "AND h.grid = ?",
                    [round_id, grid],
                )
                or 0,
            }
        out["total"] = {
            "total": self._s.g.scalar("SELECT count(*) FROM households") or 0,
            "visited": self._s.g.scalar(
                "SELECT count(DISTINCT household_id) FROM visits WHERE round_id = ? "
                "AND outcome = 'seen'",
                [round_id],
            )
            or 0,
        }
        return out

    def not_reached(self, building: str | None = None) -> list[HouseholdRow]:
        """Households nobody has been seen in yet this round (the list to go back to)."""
        if building is None:
            rows = self._household_rows("1", [])
        else:
            rows = self.households_in(building)
        return [r for r in rows if not r.reached]
