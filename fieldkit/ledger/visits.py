"""Rounds, door-to-door visits, the report figures and coverage (不漏一户, 不漏一人)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from ..errors import InputError
from .base import _iso, sort_key
from .homes import Households
from .model import (
    SYMPTOMS,
    VISIT_OUTCOMES,
    HouseholdRow,
)


class Visits(Households):
    def _visit_members(self, r: dict[str, Any]) -> list[dict[str, Any]]:
        """A visit's members with their temperatures and symptoms (``members_enc``)."""
        if r.get("members_enc") is None:
            return json.loads(r["members"])
        return json.loads(self._c().decrypt(r["id"], "members", r["members_enc"]) or "[]")

    def visit_body(self, r: dict[str, Any]) -> dict[str, Any]:
        dec = self._c().decrypt
        body = {
            k: v
            for k, v in r.items()
            if not k.endswith("_enc")
            and k not in ("sync_state", "sync_reason", "synced_at", "batch_id")
        }
        body["members"] = self._visit_members(r)
        for f in ("supply", "medical", "notes", "follow_up_note"):
            col = "follow_up_enc" if f == "follow_up_note" else f"{f}_enc"
            body[f] = dec(r["id"], f, r.get(col))
        return body

    def start_round(self, name: str | None = None) -> str:
        """A new screening round (第N轮入户排查): coverage counts from zero again."""
        s = self._s
        op = s.require_operator().name
        ts = _iso(self._now())
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
        ts = (ts or self._now()).astimezone()
        vid = str(uuid.uuid4())
        enc = self._c().encrypt
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
            "members": "[]",  # sealed: members_enc (temperatures and symptoms)
            "members_enc": enc(vid, "members", json.dumps(checked, ensure_ascii=False)),
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
                | {"members": self._visit_members(r)}
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
        for row in self._s.g.query(
            "SELECT id, profile_enc, categories, health_status, status_start, status_end "
            "FROM members WHERE removed = 0 AND substr(created_at, 1, 10) <= ?",
            [as_of],
        ):
            r = self.profile(row)
            for c in r["categories"]:
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
        # Building and unit are sealed: groups by their keyed hashes, named from one household.
        self._c()
        q = self._s.g.query
        totals = self._names(
            q(
                "SELECT grid, building_key, unit_key, count(*) AS n, min(id) AS id, place_enc, "
                "building, unit, room FROM households GROUP BY grid, building_key, unit_key"
            )
        )
        visited = {
            (r["grid"], r["building_key"], r["unit_key"]): r["n"]
            for r in q(
                "SELECT h.grid, h.building_key, h.unit_key, count(DISTINCT v.household_id) AS n "
                "FROM visits v JOIN households h ON h.id = v.household_id "
                "WHERE v.round_id = ? AND v.outcome = 'seen' "
                "GROUP BY h.grid, h.building_key, h.unit_key",
                [round_id],
            )
        }
        people = {
            (r["grid"], r["building_key"], r["unit_key"]): r["n"]
            for r in q(
                "SELECT h.grid, h.building_key, h.unit_key, sum(c.n) AS n FROM (SELECT "
                "household_id, count(*) AS n FROM members WHERE removed = 0 "
                "GROUP BY household_id) c "
                "JOIN households h ON h.id = c.household_id "
                "GROUP BY h.grid, h.building_key, h.unit_key"
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
            for key in [(r["grid"], r["building_key"], r["unit_key"])]
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

        bkey = self._key("building", building)
        ukey = self._key("unit", unit) if unit is not None else None
        out = {"building": count("h.building_key = ?", [bkey])}
        out["unit"] = (
            count("h.building_key = ? AND h.unit_key = ?", [bkey, ukey])
            if unit is not None
            else out["building"]
        )
        # The grid the unit belongs to (the most common one, should an import mix them).
        where = "building_key = ?" + (" AND unit_key = ?" if unit is not None else "")
        grid = self._s.g.scalar(
            f"SELECT grid FROM households WHERE {where} GROUP BY grid ORDER BY count(*) DESC, "
            "grid LIMIT 1",
            [bkey] + ([ukey] if unit is not None else []),
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
