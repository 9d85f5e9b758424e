"""Households of the ledger: create/update (versioned, with an edit event), look-ups by
address, and the patrol lists (a building's or unit's households with today's state and flags).

Building, unit and room are sealed in ``place_enc``; SQL filters and groups on keyed hashes of
the building and unit (``building_key``, ``unit_key``) and finds an address by a keyed hash of
its normalised form (``address_key``). Natural room order is applied after decryption.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from ..errors import InputError
from ..shared.identity import mask_name, mask_phone
from .base import (
    HOUSEHOLD_FIELDS,
    HOUSEHOLD_SECRET,
    PLACE_CLEAR,
    UNKNOWN,
    LedgerBase,
    _iso,
    new_id,
    sort_key,
    to_json,
)
from .model import (
    FLAG_CATEGORIES,
    HOME_STATUSES,
    HouseholdRow,
    address_key,
)


@lru_cache(maxsize=4)
def _household_insert(*columns: str) -> str:
    return (
        "INSERT INTO households(id, address_key, "
        + ", ".join(columns)
        + ", created_at, updated_at, version, last_writer) VALUES ("
        + ", ".join("?" * (len(columns) + 6))
        + ")"
    )


def place_order(r: dict[str, Any]) -> tuple[str, str, str]:
    """The order lists had in SQL: building, unit, then natural room order."""
    return (r["building"], r["unit"], sort_key(r["room"]))


class Households(LedgerBase):
    # -- households ---------------------------------------------------------------------------
    def _household_values(self, hid: str, f: dict[str, Any]) -> dict[str, Any]:
        place = [f.get("building") or "", f.get("unit") or "", f.get("room") or ""]
        enc = self._c().encrypt_fields(
            hid,
            {
                "place": to_json(place),
                "address": f.get("address"),
                "landlord_name": f.get("landlord_name"),
                "landlord_phone": f.get("landlord_phone"),
                "notes": f.get("notes"),
            },
        )
        return {
            "grid": f.get("grid") or "",
            "community": f.get("community") or "",
            "building_key": self._key("building", place[0]),
            "unit_key": self._key("unit", place[1]),
            "place_enc": enc["place"],
            **PLACE_CLEAR,
            "address_enc": enc["address"],
            "worker": f.get("worker"),
            "registered_count": f.get("registered_count"),
            "resident_count": f.get("resident_count"),
            "tested_count": f.get("tested_count"),
            "is_rental": int(bool(f.get("is_rental"))),
            "landlord_name_enc": enc["landlord_name"],
            "landlord_phone_enc": enc["landlord_phone"],
            "notes_enc": enc["notes"],
        }

    def household_fields(self, row: dict[str, Any]) -> dict[str, Any]:
        """Every editable field of a stored household row, decrypted."""
        dec = self._c().decrypt
        out = {f: row.get(f) for f in HOUSEHOLD_FIELDS if f not in HOUSEHOLD_SECRET}
        out |= self.place(row)
        out["is_rental"] = bool(out["is_rental"])
        for f in HOUSEHOLD_SECRET:
            out[f] = dec(row["id"], f, row.get(f"{f}_enc"))
        return out

    def _address(self, f: dict[str, Any]) -> str:
        return self.address_index(
            address_key(
                f.get("community") or "", str(f["building"]), f.get("unit") or "", str(f["room"])
            )
        )

    def find_household(self, community: str, building: str, unit: str, room: str) -> str | None:
        return self._s.g.scalar(
            "SELECT id FROM households WHERE address_key = ?",
            [self.address_index(address_key(community, building, unit, room))],
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
        address: str | None = None,
    ) -> tuple[str, str]:
        """``current`` and ``address`` (its stored ``address_key``) as the bulk import already
        looked them up."""
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
            hid = new_id()
            full = {f: fields.get(f) for f in HOUSEHOLD_FIELDS}
            changes = {k: v for k, v in full.items() if v not in (None, "")}
            values = self._household_values(hid, full)
            akey = address or self._address(full)
            self._insert(
                _household_insert(*values),
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
        values["address_key"] = self._address(merged)
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

    def landlord_masked(self, household_id: str) -> dict[str, str | None]:
        """The landlord's name and phone as screens show them (张*, 139****5678; None when
        none is stored): the household form and card say whose flat it is without a full-data
        view."""
        row = self._s.g.query(
            "SELECT id, landlord_name_enc, landlord_phone_enc FROM households WHERE id = ?",
            [household_id],
        )
        if not row:
            return {"landlord_name": None, "landlord_phone": None}
        dec = self._c().decrypt
        name = dec(household_id, "landlord_name", row[0]["landlord_name_enc"])
        phone = dec(household_id, "landlord_phone", row[0]["landlord_phone_enc"])
        return {
            "landlord_name": mask_name(name) if name else None,
            "landlord_phone": mask_phone(phone) if phone else None,
        }

    def household(self, household_id: str, today: str | None = None) -> HouseholdRow | None:
        rows = self._household_rows("h.id = ?", [household_id], today)
        return rows[0] if rows else None

    def _names(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Rows of a GROUP BY over the keyed hashes, each with one household's ``id`` and
        ``place_enc`` (SQLite's bare columns of the ``min(id)`` row): the group's names."""
        return [r | self.place(r) for r in rows]

    def buildings(self, grid: str | None = None) -> list[dict[str, Any]]:
        """Buildings with their household count, in natural order."""
        where, params = ("WHERE grid = ?", [grid]) if grid else ("", [])
        self._c()
        rows = self._names(
            self._s.g.query(
                f"SELECT grid, count(*) AS households, min(id) AS id, place_enc, building, unit, "
                f"room FROM households {where} GROUP BY grid, building_key",
                params,
            )
        )
        out = [
            {"grid": r["grid"], "building": r["building"], "households": r["households"]}
            for r in rows
        ]
        return sorted(out, key=lambda r: (r["grid"], sort_key(r["building"])))

    def units(self, building: str) -> list[str]:
        rows = self._names(
            self._s.g.query(
                "SELECT min(id) AS id, place_enc, building, unit, room FROM households "
                "WHERE building_key = ? GROUP BY unit_key",
                [self._key("building", building)],
            )
        )
        return sorted((r["unit"] for r in rows), key=sort_key)

    def households_in(
        self, building: str, unit: str | None = None, today: str | None = None
    ) -> list[HouseholdRow]:
        """One building's (or unit's) households with today's state and flags."""
        if unit is None:
            return self._household_rows(
                "h.building_key = ?", [self._key("building", building)], today
            )
        return self._household_rows(
            "h.building_key = ? AND h.unit_key = ?",
            [self._key("building", building), self._key("unit", unit)],
            today,
        )

    def _household_rows(
        self, where: str, params: list[Any], today: str | None = None
    ) -> list[HouseholdRow]:
        today = today or self._now().date().isoformat()
        round_id = self.current_round_id() or ""
        self._c()
        q = self._s.g.query
        rows = q(
            f"""SELECT h.id, h.grid, h.community, h.place_enc, h.building, h.unit, h.room,
                   h.worker, h.registered_count, h.resident_count, h.tested_count, h.is_rental,
                   h.version,
                   (SELECT count(*) FROM members m WHERE m.household_id = h.id
                        AND m.removed = 0) AS n_members,
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
               FROM households h WHERE {where}""",
            [today, round_id, round_id, *params],
        )
        # Categories and health status are sealed: the flags come from the decrypted profiles.
        member_info: dict[str, list[dict[str, Any]]] = {}
        for m in q(
            "SELECT m.id, m.household_id, m.profile_enc, m.categories, m.health_status "
            f"FROM members m JOIN households h ON h.id = m.household_id "
            f"WHERE m.removed = 0 AND {where} ORDER BY m.rowid",
            params,
        ):
            member_info.setdefault(m["household_id"], []).append(self.profile(m))
        out = []
        for r in sorted((self.open_household(r) for r in rows), key=place_order):
            flags: list[str] = []
            for p in member_info.get(r["id"], ()):
                for c in p["categories"]:
                    if c in FLAG_CATEGORIES and c not in flags:
                        flags.append(c)
                status = p["health_status"]
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
