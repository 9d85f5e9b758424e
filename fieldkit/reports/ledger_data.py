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
    """Households visited that day (any outcome: someone went to the door) and readings
    missed (the monitoring's "missed" alerts for windows of that day)."""
    names = tables(store)
    if not {"households", "visits"} <= names:
        return LedgerDay(False)
    visited = (
        store.g.scalar("SELECT count(DISTINCT household_id) FROM visits WHERE day = ?", [day]) or 0
    )
    missed = 0
    if "monitoring_alerts" in names:
        missed = (
            store.g.scalar(
                "SELECT count(*) FROM monitoring_alerts WHERE kind = 'missed' AND day = ?", [day]
            )
            or 0
        )
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
    """Households where someone was seen, out of households registered, per building (楼栋),
    in the current screening round: the ledger's own coverage count when its facade is there
    (the patrol screen shows the same numbers), else the same rule over its tables."""
    ledger = getattr(store, "ledger", None)
    if ledger is not None and hasattr(ledger, "coverage"):
        buildings = ledger.coverage()["buildings"]
        several_grids = len({b["grid"] for b in buildings}) > 1
        return [
            BuildingCoverage(
                f"{b['grid']}/{b['building']}"
                if several_grids and b["grid"]
                else b["building"] or "-",
                b["total"],
                b["visited"] or 0,
            )
            for b in buildings
        ]
    names = tables(store)
    if not {"households", "visits"} <= names:
        return []
    round_id = None
    if "rounds" in names:
        round_id = store.g.scalar(
            "SELECT id FROM rounds WHERE closed_at IS NULL ORDER BY started_at DESC LIMIT 1"
        )
    rows = store.g.query(
        "SELECT h.building AS building, count(*) AS households, "
        "sum(EXISTS (SELECT 1 FROM visits v WHERE v.household_id = h.id AND v.round_id IS ? "
        "AND v.outcome = 'seen')) AS visited FROM households h GROUP BY h.building "
        "ORDER BY h.building",
        [round_id],
    )
    return [
        BuildingCoverage(r["building"] or "-", r["households"], r["visited"] or 0) for r in rows
    ]


def category_totals(store: Store, as_of: str) -> dict[str, int]:
    """Ledger members by category, and those still under observation on ``as_of``."""
    if "members" not in tables(store):
        return {}
    out: dict[str, int] = {}
    for r in store.g.query(
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
        if status in OBSERVATION_STATUSES and (not r["status_end"] or r["status_end"] >= as_of):
            key = f"observing.{status}"
            out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items()))
