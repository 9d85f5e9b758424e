"""Opening and closing shifts with handover and reconciliation (交接班).

Closing works out the shift summary (counts, entries − exits against the people inside, open
alerts, records not yet synced) and stores it with the handover note; opening the next shift
hands that back, so the incoming supervisor sees it before anything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .builders import ShiftSummary, shift_summary

if TYPE_CHECKING:
    from ..store import Store


@dataclass(frozen=True)
class OpenedShift:
    shift_id: str
    handover: dict[str, Any] | None  # the previous shift's note and closing figures


def open_shift(store: Store, note: str | None = None, *, by: Any = None) -> OpenedShift:
    """``by``: the supervisor who confirmed with their PIN (default: the logged-in operator)."""
    operator = by or store.require_operator()
    store.shifts.require_supervisor(operator)
    handover = store.shifts.handover()
    sid = store.shifts.open(operator.name, note)
    return OpenedShift(sid, handover)


def close_shift(store: Store, note: str, *, by: Any = None) -> ShiftSummary:
    """Close the open shift; the returned summary is what was stored for the handover."""
    operator = by or store.require_operator()
    store.shifts.require_supervisor(operator)
    current = store.shifts.current()
    if current is None:
        from ..errors import InputError

        raise InputError("err.no_shift_to_close")
    summary = shift_summary(store, current["id"])
    data = summary.to_dict()
    stored = {
        "counts": data["counts"],
        "reconciliation": data["reconciliation"],
        "open_alerts": [
            {"record_id": a["record_id"], "codes": a["codes"]} for a in data["open_alerts"]
        ],
        "unsynced": data["unsynced"],
    }
    store.shifts.close(operator.name, note.strip(), stored)
    return shift_summary(store, current["id"])
