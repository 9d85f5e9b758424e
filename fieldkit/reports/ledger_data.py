"""Figures from the household ledger (一户一档) for reports, when its tables exist.

The ledger is written by another part of FieldKit and may be absent from a store (a gate-only
kit); every function here answers with zeros or empty lists then, and says so through
``available``. Only counts leave this module; no personal field is read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..store import Store

OBSERVATION_STATUSES = ("central_isolation", "home_isolation", "home_monitoring")


def tables(store: Store) -> set[str]:
    return {r["name"] for r in store.g.query("SELECT name FROM sqlite_master WHERE type='table'")}


def has_ledger(store: Store) -> bool:
    return {"households", "visits"} <= tables(store)


@dataclass(frozen=True)
class LedgerDay:
    available: bool
    households_visited: int = 0
    readings_missed: int = 0


def for_day(store: Store, day: str) -> LedgerDay:
    names = tables(store)
    if not {"households", "visits"} <= names:
        return LedgerDay(False)
    visited = store.g.scalar("SELECT count(DISTINCT household_id) FROM visits WHERE day = ?",
                             [day]) or 0
    missed = 0
    if "monitoring_alerts" in names:
        missed = store.g.scalar("SELECT count(*) FROM monitoring_alerts WHERE kind = 'missed' "
                                "AND day = ?", [day]) or 0
    return LedgerDay(True, visited, missed)


@dataclass(frozen=True)
class BuildingCoverage:
    building: str
    households: int
    visited: int

    @property
    def percent(self) -> float:
        return 100.0 * self.visited / self.households if self.households else 0.0


def coverage_per_building(store: Store) -> list[BuildingCoverage]:
    """Households visited out of households registered, per building (楼栋).

    Within the latest screening round when rounds are used, else over every visit recorded.
    """
    names = tables(store)
    if not {"households", "visits"} <= names:
        return []
    round_id = None
    if "rounds" in names:
        round_id = store.g.scalar("SELECT id FROM rounds ORDER BY (closed_at IS NULL) DESC, "
                                  "started_at DESC LIMIT 1")
    visit_filter, params = ("AND v.round_id = ?", [round_id]) if round_id else ("", [])
    rows = store.g.query(
        f"SELECT h.building AS building, count(*) AS households, "
        f"sum(EXISTS (SELECT 1 FROM visits v WHERE v.household_id = h.id {visit_filter})) "
        f"AS visited FROM households h GROUP BY h.building ORDER BY h.building", params)
    return [BuildingCoverage(r["building"] or "-", r["households"], r["visited"] or 0)
            for r in rows]


def category_totals(store: Store, as_of: str) -> dict[str, int]:
    """Ledger members by category, and those still under observation on ``as_of``."""
    if "members" not in tables(store):
        return {}
    out: dict[str, int] = {}
    for r in store.g.query("SELECT categories, health_status, status_end FROM members "
                           "WHERE removed = 0 AND substr(created_at, 1, 10) <= ?", [as_of]):
        try:
            cats = json.loads(r["categories"] or "[]")
        except ValueError:
            cats = []
        for c in cats:
            key = f"category.{c}"
            out[key] = out.get(key, 0) + 1
        status = r["health_status"]
        if status in OBSERVATION_STATUSES and (not r["status_end"] or r["status_end"] >= as_of):
            key = f"observing.{status}"
            out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items()))
