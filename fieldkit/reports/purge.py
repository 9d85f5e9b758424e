"""Retention: delete synced events older than ``privacy.retention_days`` (PIPL: delete when the
purpose ends). Records not yet synced are never deleted, whatever their age: the town has no
copy of them yet.

Covers every event table registered with the outbox (gate passages, vehicles, and the ledger's
visits, readings … when present). The counting and deleting (secure_delete, WAL checkpoint) are
the store's: :mod:`fieldkit.store.retention`; this module is the policy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from ..errors import PermissionDenied
from ..store import retention

if TYPE_CHECKING:
    from ..store import Store


@dataclass
class PurgePlan:
    cutoff: str  # events of days before this date go
    retention_days: int
    to_delete: dict[str, int] = field(default_factory=dict)  # table → synced rows past retention
    kept_unsynced: dict[str, int] = field(default_factory=dict)  # table → old rows not synced
    done: bool = False

    @property
    def total(self) -> int:
        return sum(self.to_delete.values())

    @property
    def total_kept(self) -> int:
        return sum(self.kept_unsynced.values())

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total": self.total, "total_kept": self.total_kept}


def plan_purge(store: Store, today: date | None = None) -> PurgePlan:
    days = store.settings.privacy.retention_days
    cutoff = ((today or date.today()) - timedelta(days=days)).isoformat()
    synced, unsynced = retention.count_before(store, cutoff)
    return PurgePlan(cutoff, days, synced, unsynced)


def purge(store: Store, today: date | None = None, *, by: Any = None) -> PurgePlan:
    """Delete what :func:`plan_purge` lists; needs a supervisor (``by``, who confirmed with
    their PIN, or the logged-in operator); audited with the counts."""
    operator = by or store.require_operator()
    if not operator.is_supervisor:
        raise PermissionDenied("err.purge_needs_supervisor", name=operator.name)
    plan = plan_purge(store, today)
    deleted = retention.delete_synced_before(
        store,
        plan.cutoff,
        operator.name,
        {
            "cutoff": plan.cutoff,
            "retention_days": plan.retention_days,
            "kept_unsynced": plan.kept_unsynced,
        },
    )
    plan.to_delete = deleted
    plan.done = True
    return plan
