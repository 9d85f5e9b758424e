"""The household ledger facade (一户一档): ``store.ledger``.

Screens, the CLI and the importer call this; nothing else touches the ledger tables. Every
change to a household or member bumps its ``version``, records ``last_writer`` and appends a
``ledger_edits`` event (the fields that changed, encrypted) that syncs to the town server.

The facade is assembled here from its parts, one module each:

- :mod:`.base`: field lists, the edit event, bulk-import batching, blind-index cache;
- :mod:`.homes`: households and the patrol lists;
- :mod:`.members`: members, their match key, home-status dates, the gate's isolation index;
- :mod:`.visits`: rounds, visits, report figures and coverage.

``now_local`` lives here: the facade's clock reads it at each call, so tests that set
``households.now_local`` move every part's clock.
"""

from __future__ import annotations

from datetime import datetime

from .base import (
    HOUSEHOLD_FIELDS,
    HOUSEHOLD_SECRET,
    MEMBER_FIELDS,
    MEMBER_SECRET,
    UNKNOWN,
    _iso,
    end_date_for,
    normalise_id,
    sort_key,
)
from .members import Members
from .visits import Visits

__all__ = [
    "HOUSEHOLD_FIELDS",
    "HOUSEHOLD_SECRET",
    "MEMBER_FIELDS",
    "MEMBER_SECRET",
    "UNKNOWN",
    "Ledger",
    "_iso",
    "end_date_for",
    "normalise_id",
    "now_local",
    "sort_key",
]


def now_local() -> datetime:
    return datetime.now().astimezone()


class Ledger(Members, Visits):
    """``store.ledger``: households, members, rounds, visits and coverage."""

    def _now(self) -> datetime:
        return now_local()
