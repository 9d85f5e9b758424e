"""Retention: delete synced events older than ``privacy.retention_days`` (PIPL: delete when the
purpose ends). Records not yet synced are never deleted, whatever their age: the town has no
copy of them yet.

Covers every event table registered with the outbox (gate passages, vehicles, and the ledger's
visits, readings … when present). Deleted pages are overwritten (``secure_delete``) and the
write-ahead log is checkpointed, so the personal data does not linger in the file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from ..errors import PermissionDenied

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


def _tables(store: Store) -> list[str]:
    seen: list[str] = []
    for kind in store.outbox.kinds.values():
        if kind.table not in seen:
            seen.append(kind.table)
    return seen


def plan_purge(store: Store, today: date | None = None) -> PurgePlan:
    days = store.settings.privacy.retention_days
    cutoff = ((today or date.today()) - timedelta(days=days)).isoformat()
    plan = PurgePlan(cutoff, days)
    for table in _tables(store):
        for r in store.g.query(
            f"SELECT sync_state = 'synced' AS synced, count(*) AS n "
            f"FROM {table} WHERE day < ? GROUP BY 1",
            [cutoff],
        ):
            target = plan.to_delete if r["synced"] else plan.kept_unsynced
            target[table] = r["n"]
    return plan


def purge(store: Store, today: date | None = None, *, by: Any = None) -> PurgePlan:
    """Delete what :func:`plan_purge` lists; needs a supervisor (``by``, who confirmed with
    their PIN, or the logged-in operator); audited with the counts."""
    operator = by or store.require_operator()
    if not operator.is_supervisor:
        raise PermissionDenied(
            f"{operator.name} is not a supervisor: purging old records needs the supervisor's PIN"
        )
    plan = plan_purge(store, today)
    deleted: dict[str, int] = {}
    with store.g.lock:
        store.g.db.execute("PRAGMA secure_delete = ON")
        try:
            with store.g.tx() as db:
                for table in _tables(store):
                    cur = db.execute(
                        f"DELETE FROM {table} WHERE sync_state = 'synced' AND day < ?",
                        [plan.cutoff],
                    )
                    if cur.rowcount:
                        deleted[table] = cur.rowcount
                store.audit.append(
                    "purge",
                    operator.name,
                    {
                        "cutoff": plan.cutoff,
                        "retention_days": plan.retention_days,
                        "deleted": deleted,
                        "kept_unsynced": plan.kept_unsynced,
                    },
                )
        finally:
            store.g.db.execute("PRAGMA secure_delete = OFF")
        store.g.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    plan.to_delete = deleted
    plan.done = True
    return plan
