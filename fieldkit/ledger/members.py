"""Members of the ledger's households: add/update/move/remove (versioned, with an edit event),
the blind-indexed match key, home-status dates and the gate's isolation index."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from ..errors import InputError
from ..shared.identity import mask_id, mask_name, mask_phone
from .base import (
    MEMBER_FIELDS,
    MEMBER_SECRET,
    PROFILE_CLEAR,
    UNKNOWN,
    LedgerBase,
    _iso,
    end_date_for,
    new_id,
    normalise_id,
    to_json,
)
from .model import HEALTH_STATUSES, HOME_STATUSES, MEMBER_ORDER, MemberRow

_KEYS = frozenset((*MEMBER_FIELDS, "id_kind"))  # what a member's edit event may carry


@lru_cache(maxsize=4)
def _member_insert(*columns: str) -> str:
    return (
        "INSERT INTO members(id, household_id, match_key, "
        + ", ".join(columns)
        + ", created_at, updated_at, version, last_writer) VALUES ("
        + ", ".join("?" * (len(columns) + 7))
        + ")"
    )


def _gate_state(values: dict[str, Any], f: dict[str, Any]) -> dict[str, Any]:
    """What the gate's isolation index needs of a member as written."""
    return {
        "id_hash": values["id_hash"],
        "health_status": f.get("health_status") or "none",
        "status_end": f.get("status_end"),
    }


class Members(LedgerBase):
    # -- members ------------------------------------------------------------------------------
    def _member_values(self, mid: str, f: dict[str, Any], clear: bool = True) -> dict[str, Any]:
        """The columns of a member; ``clear``: with the placeholders of the sealed clear columns
        (an INSERT leaves them to their defaults, which are the same)."""
        idn = f.get("id_number")
        name, phone, status = f.get("name"), f.get("phone"), f.get("health_status")
        # The profile as sealed (base.PROFILE order; profile_json's form, built in place).
        profile = [
            mask_name(name) if name else None,
            mask_id(idn) if idn else None,
            mask_phone(phone) if phone else None,
            list(f.get("categories") or ()) or None,
            status if status and status != "none" else None,
            f.get("status_start") or None,
            f.get("status_end") or None,
            f.get("found_via") or None,
            f.get("vaccination") or None,
            f.get("last_test_date") or None,
            f.get("last_test_result") or None,
        ]
        while profile and profile[-1] is None:
            profile.pop()
        enc = self._c().encrypt_fields(
            mid,
            {
                "name": name,
                "id_number": idn,
                "phone": phone,
                "notes": f.get("notes"),
                "profile": to_json(profile),
            },
        )
        values = {
            "id_hash": self._index(idn) if idn else None,
            "id_kind": f.get("id_kind"),
            "name_enc": enc["name"],
            "id_number_enc": enc["id_number"],
            "phone_enc": enc["phone"],
            "notes_enc": enc["notes"],
            "relation": f.get("relation"),
            "profile_enc": enc["profile"],
        }
        if clear:
            values.update(PROFILE_CLEAR)
        return values

    def member_fields(self, row: dict[str, Any]) -> dict[str, Any]:
        dec = self._c().decrypt
        profile = self.profile(row)
        out = {
            f: profile[f] if f in profile else row.get(f)
            for f in MEMBER_FIELDS
            if f not in MEMBER_SECRET
        }
        out["categories"] = list(profile["categories"])
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
        ts = ts or self._now()
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
        match: str | None = None,
    ) -> tuple[str, str]:
        """``current`` and ``match`` (the person's match key) as a bulk import looked them up."""
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
        if current is not None:
            current = self.open_member(current)
        self._apply_status_dates(f, current)
        if current is None:
            mid = new_id()
            # f as given (a field it lacks is None): no copy per person in a bulk import
            values = self._member_values(mid, f, clear=False)
            changes = {k: v for k, v in f.items() if k in _KEYS and v not in (None, "", [])}
            changes["household_id"] = household_id
            self._insert(
                _member_insert(*values),
                [
                    mid,
                    household_id,
                    match or self.match_key(household_id, f.get("id_number"), f.get("name")),
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
            if values["id_hash"] and f.get("health_status") in HOME_STATUSES:
                self._sync_isolation(None, _gate_state(values, f))  # else: nothing to tell
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
        self._sync_isolation(current, _gate_state(values, merged))
        return mid, "updated"

    def _apply_status_dates(self, f: dict[str, Any], current: dict[str, Any] | None) -> None:
        """A home status without dates starts today; the end is start + configured days."""
        status = f.get("health_status")
        if status not in HOME_STATUSES:
            return
        if current is not None and current["health_status"] == status and not f.get("status_start"):
            return
        f["status_start"] = f.get("status_start") or self._now().date().isoformat()
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
        ts = self._now()
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

    def _member_row(self, row: dict[str, Any]) -> MemberRow:
        r = self.open_member(row)
        return MemberRow(
            id=r["id"],
            household_id=r["household_id"],
            name_masked=r["name_masked"],
            id_masked=r["id_masked"],
            phone_masked=r["phone_masked"],
            relation=r["relation"],
            categories=tuple(r["categories"]),
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
                f"ORDER BY {MEMBER_ORDER}",
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
            # match_key is "id:" + the ID's blind index (id_hash) for everyone with an ID
            "SELECT * FROM members WHERE match_key = ? AND removed = 0",
            ["id:" + self._s.index(number)],
        )
        return self._member_row(rows[0]) if rows else None

    def member_full(self, member_id: str, *, purpose: str) -> dict[str, Any]:
        """Decrypted member fields: audited as a full-data view."""
        row = self._s.read_full("members", member_id, entity="member", purpose=purpose)
        if row is None:
            raise InputError("err.no_member", id=member_id)
        return self.member_fields(row)
