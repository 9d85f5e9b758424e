"""Door-to-door work: the household ledger (一户一档), visits, coverage and home monitoring.

``attach(store)`` is called on every opened store (``STORE_EXTENSIONS``): it adds
``store.ledger`` and ``store.monitoring`` and registers the event tables that sync.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .households import Ledger
from .monitoring import Monitoring

if TYPE_CHECKING:
    from ..store import Store

__all__ = ["Ledger", "Monitoring", "attach"]

# Kind on the wire → table. Visits and readings are append-only; household and member edits
# travel as ``ledger_edit`` events carrying (entity, entity_id, base_version, version, changes).
EVENT_KINDS = {
    "visit": "visits",
    "reading": "readings",
    "ledger_edit": "ledger_edits",
    "monitoring_alert": "monitoring_alerts",
}


def attach(store: Store) -> None:
    from ..store import EventKind

    store.ledger = Ledger(store)
    store.monitoring = Monitoring(store)
    store.outbox.register(EventKind("ledger_edit", "ledger_edits", store.ledger.edit_body))
    store.outbox.register(EventKind("visit", "visits", store.ledger.visit_body))
    store.outbox.register(EventKind("reading", "readings", store.monitoring.reading_body))
    store.outbox.register(
        EventKind("monitoring_alert", "monitoring_alerts", store.monitoring.alert_body)
    )
