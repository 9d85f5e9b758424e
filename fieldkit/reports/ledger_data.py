"""Figures from the household ledger (一户一档) for reports, through its facade.

The ledger is a plug-in of the store (``store.ledger``, ``store.monitoring``, attached when
:mod:`fieldkit.ledger` is imported) and may be absent (a gate-only kit); every function here
answers with zeros or empty lists then, and says so through ``available``. Reports never read
the ledger's tables themselves. Only counts leave this module; no personal field is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..store import Store

OBSERVATION_STATUSES = ("central_isolation", "home_isolation", "home_monitoring")


def _ledger(store: Store) -> Any:
    return getattr(store, "ledger", None)


def has_ledger(store: Store) -> bool:
    return _ledger(store) is not None


@dataclass(frozen=True)
class LedgerDay:
    available: bool
    households_visited: int = 0
    readings_missed: int = 0
    home_referrals: int = 0


def for_day(store: Store, day: str) -> LedgerDay:
    """Households visited that day (any outcome: someone went to the door), readings
    missed (the monitoring's "missed" alerts for windows of that day) and home-monitoring
    referrals (fever or symptoms at a home reading) raised that day."""
    ledger = _ledger(store)
    if ledger is None:
        return LedgerDay(False)
    monitoring = getattr(store, "monitoring", None)
    missed = monitoring.missed_on(day) if monitoring is not None else 0
    referrals = monitoring.referrals_on(day) if monitoring is not None else 0
    return LedgerDay(True, ledger.households_visited_on(day), missed, referrals)


@dataclass(frozen=True)
class MonitoringAlert:
    """An open home-monitoring alert (referral or missed window), masked, for the handover."""

    id: str
    ts: str
    kind: str  # referral | missed
    name_masked: str | None
    id_masked: str | None


def open_monitoring_alerts(store: Store) -> list[MonitoringAlert]:
    """Home-monitoring alerts nobody has marked handled yet (F6 on the monitoring screen):
    the same list ``fieldkit ledger monitoring`` prints as outstanding."""
    monitoring = getattr(store, "monitoring", None)
    if monitoring is None:
        return []
    return [
        MonitoringAlert(a["id"], a["ts"], a["kind"], a.get("name_masked"), a.get("id_masked"))
        for a in monitoring.alerts(open_only=True)
    ]


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
    in the current screening round: the ledger's own coverage count (the patrol screen shows
    the same numbers)."""
    ledger = _ledger(store)
    if ledger is None:
        return []
    buildings = ledger.coverage()["buildings"]
    several_grids = len({b["grid"] for b in buildings}) > 1
    return [
        BuildingCoverage(
            f"{b['grid']}/{b['building']}" if several_grids and b["grid"] else b["building"] or "-",
            b["total"],
            b["visited"] or 0,
        )
        for b in buildings
    ]


def category_totals(store: Store, as_of: str) -> dict[str, int]:
    """Ledger members by category, and those still under observation on ``as_of``."""
    ledger = _ledger(store)
    if ledger is None:
        return {}
    return dict(ledger.category_counts(as_of, OBSERVATION_STATUSES))
