"""Door-to-door work: the household ledger (一户一档), visits, coverage and home monitoring.

Importing this package plugs it into the store, explicitly and once: its migrations are
registered with :func:`fieldkit.store.schema.register_migrations` and :func:`attach` with
:func:`fieldkit.store.register_extension`, so every store opened afterwards gets
``store.ledger`` and ``store.monitoring`` and the event tables that sync. The entry points
(``fieldkit.cli``, ``fieldkit.ui.app``) import it; the store never imports the ledger.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..store import EventKind, register_extension
from ..store.schema import register_migrations
from .households import Ledger
from .monitoring import Monitoring
from .schema import migrations

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
    store.ledger = Ledger(store)
    store.monitoring = Monitoring(store)
    store.outbox.register(EventKind("ledger_edit", "ledger_edits", store.ledger.edit_body))
    store.outbox.register(EventKind("visit", "visits", store.ledger.visit_body))
    store.outbox.register(EventKind("reading", "readings", store.monitoring.reading_body))
    store.outbox.register(
        EventKind("monitoring_alert", "monitoring_alerts", store.monitoring.alert_body)
    )


register_migrations(migrations)
register_extension(attach)
