"""The store's side of retention: counting and deleting old synced events in every event table
the outbox knows (gate passages, vehicles, and the ledger's visits, readings … when attached).

The policy (how many days, who may purge, what the report says) is in
:mod:`fieldkit.reports.purge`; the SQL is here, behind the store, as for every other table.
Deleted pages are overwritten (``secure_delete``) and the write-ahead log is checkpointed, so
the personal data does not linger in the file. Rows not yet synced are never deleted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import Store


def event_tables(store: Store) -> list[str]:
    """The event tables registered with the outbox, each once, in registration order."""
    seen: list[str] = []
    for kind in store.outbox.kinds.values():
        if kind.table not in seen:
            seen.append(kind.table)
    return seen


def count_before(store: Store, cutoff: str) -> tuple[dict[str, int], dict[str, int]]:
    """(synced rows, unsynced rows) per table whose ``day`` is before ``cutoff``."""
    synced: dict[str, int] = {}
    unsynced: dict[str, int] = {}
    for table in event_tables(store):
        for r in store.g.query(
            f"SELECT sync_state = 'synced' AS synced, count(*) AS n "
            f"FROM {table} WHERE day < ? GROUP BY 1",
            [cutoff],
        ):
            (synced if r["synced"] else unsynced)[table] = r["n"]
    return synced, unsynced


def delete_synced_before(
    store: Store, cutoff: str, by: str, audit_details: dict[str, Any]
) -> dict[str, int]:
    """Delete synced rows of days before ``cutoff`` in one transaction, audited as ``purge``
    (``audit_details`` plus the deleted counts); returns the counts per table."""
    deleted: dict[str, int] = {}
    with store.g.lock:
        with store.g.tx() as db:  # the connection zeroes freed space (store/db.py)
            for table in event_tables(store):
                cur = db.execute(
                    f"DELETE FROM {table} WHERE sync_state = 'synced' AND day < ?",
                    [cutoff],
                )
                if cur.rowcount:
                    deleted[table] = cur.rowcount
            store.audit.append("purge", by, {**audit_details, "deleted": deleted})
        store.g.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return deleted
