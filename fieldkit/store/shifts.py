"""Shifts: opened and closed by a supervisor; gate records carry the open shift's id."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..errors import InputError

if TYPE_CHECKING:
    from . import Store


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


class Shifts:
    def __init__(self, store: "Store") -> None:
        self._s = store

    def current(self) -> dict[str, Any] | None:
        rows = self._s.g.query("SELECT * FROM shifts WHERE closed_at IS NULL "
                               "ORDER BY opened_at DESC LIMIT 1")
        return rows[0] if rows else None

    def current_id(self) -> str | None:
        return self._s.g.scalar("SELECT id FROM shifts WHERE closed_at IS NULL "
                                "ORDER BY opened_at DESC LIMIT 1")

    def last_closed(self) -> dict[str, Any] | None:
        rows = self._s.g.query("SELECT * FROM shifts WHERE closed_at IS NOT NULL "
                               "ORDER BY closed_at DESC LIMIT 1")
        return rows[0] if rows else None

    def open(self, supervisor: str) -> str:
        if self.current():
            raise InputError("a shift is already open: close it before opening the next")
        sid = str(uuid.uuid4())
        with self._s.g.tx() as db:
            db.execute("INSERT INTO shifts(id, opened_at, opened_by) VALUES (?,?,?)",
                       [sid, _now(), supervisor])
            self._s.audit.append("shift_open", supervisor, {"shift": sid})
        return sid

    def close(self, supervisor: str, handover_note: str, summary: dict[str, Any]) -> str:
        shift = self.current()
        if not shift:
            raise InputError("no shift is open")
        with self._s.g.tx() as db:
            db.execute("UPDATE shifts SET closed_at=?, closed_by=?, handover_note=?, summary=? "
                       "WHERE id=?", [_now(), supervisor, handover_note,
                                      json.dumps(summary, ensure_ascii=False), shift["id"]])
            self._s.audit.append("shift_close", supervisor, {"shift": shift["id"]})
        return shift["id"]
