"""Households of the ledger: create/update (versioned, with an edit event), look-ups by
address, and the patrol lists (a building's or unit's households with today's state and flags)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from .model import (
    FLAG_CATEGORIES,
    HOME_STATUSES,
    HouseholdRow,
    address_key,
)

if TYPE_CHECKING:
    pass

from .base import HOUSEHOLD_FIELDS, HOUSEHOLD_SECRET, UNKNOWN, LedgerBase, _iso, sort_key


class Households(LedgerBase):
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
        ts = ts or self._now()
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
        today = today or self._now().date().isoformat()
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
