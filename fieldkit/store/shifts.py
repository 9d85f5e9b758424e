"""Shifts: opened and closed by a supervisor; gate records carry the open shift's id.

The summary (JSON) and the handover note are encrypted (``summary_enc``,
``handover_note_enc``) and read back decrypted under their old keys. The summary holds, at
opening, which handover the shift started from and the opening note; at closing, the
reconciliation and counts worked out by ``fieldkit.reports`` are merged in. The handover note
of a closed shift is what the next shift sees first.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..errors import InputError, PermissionDenied

if TYPE_CHECKING:
    from . import Store


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="milliseconds")


def _meta(row: dict[str, Any] | None) -> dict[str, Any]:
    try:
        meta = json.loads((row or {}).get("summary") or "{}")
    except ValueError:
        return {}
    return meta if isinstance(meta, dict) else {}


_SEALED = ("handover_note", "summary")


class Shifts:
    def __init__(self, store: Store) -> None:
        self._s = store

    def _open(self, row: dict[str, Any]) -> dict[str, Any]:
        """The row with its handover note and summary decrypted (``*_enc`` popped). While the
        store is locked they read as None: only the ids and times are in clear."""
        for f in _SEALED:
            blob = row.pop(f"{f}_enc", None)
            if blob is not None:
                row[f] = self._s.cipher.decrypt(row["id"], f, blob) if self._s.is_unlocked else None
        return row

    def _query(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        return [self._open(r) for r in self._s.g.query(sql, params)]

    def current(self) -> dict[str, Any] | None:
        rows = self._query(
            "SELECT * FROM shifts WHERE closed_at IS NULL ORDER BY opened_at DESC LIMIT 1"
        )
        return rows[0] if rows else None

    def current_id(self) -> str | None:
        return self._s.g.scalar(
            "SELECT id FROM shifts WHERE closed_at IS NULL ORDER BY opened_at DESC LIMIT 1"
        )

    def last_closed(self) -> dict[str, Any] | None:
        rows = self._query(
            "SELECT * FROM shifts WHERE closed_at IS NOT NULL ORDER BY closed_at DESC LIMIT 1"
        )
        return rows[0] if rows else None

    def get(self, shift_id: str) -> dict[str, Any] | None:
        rows = self._query("SELECT * FROM shifts WHERE id = ?", [shift_id])
        return rows[0] if rows else None

    def find(self, shift_id: str) -> list[dict[str, Any]]:
        """Shifts whose id is ``shift_id`` or starts with it (newest first)."""
        return self._query(
            "SELECT * FROM shifts WHERE id = ? OR id LIKE ? ORDER BY opened_at DESC",
            [shift_id, f"{shift_id}%"],
        )

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        return self._query("SELECT * FROM shifts ORDER BY opened_at DESC LIMIT ?", [limit])

    def handover(self) -> dict[str, Any] | None:
        """What the previous shift left for the next one: note, closing figures, who and when."""
        row = self.last_closed()
        if row is None:
            return None
        return {
            "shift_id": row["id"],
            "closed_at": row["closed_at"],
            "closed_by": row["closed_by"],
            "note": row["handover_note"] or "",
            "summary": _meta(row),
        }

    def open(self, supervisor: str, note: str | None = None) -> str:
        if self.current():
            raise InputError("err.shift_already_open")
        sid = str(uuid.uuid4())
        previous = self.last_closed()
        meta = {
            "handover_from": previous["id"] if previous else None,
            "open_note": (note or "").strip() or None,
        }
        summary = self._s.cipher.encrypt(sid, "summary", json.dumps(meta, ensure_ascii=False))
        with self._s.g.tx() as db:
            db.execute(
                "INSERT INTO shifts(id, opened_at, opened_by, summary_enc) VALUES (?,?,?,?)",
                [sid, _now(), supervisor, summary],
            )
            self._s.audit.append(
                "shift_open", supervisor, {"shift": sid, "handover_from": meta["handover_from"]}
            )
        return sid

    def close(self, supervisor: str, handover_note: str, summary: dict[str, Any]) -> str:
        shift = self.current()
        if not shift:
            raise InputError("err.no_shift_open")
        merged = {**_meta(shift), **summary}
        sealed = self._s.cipher.encrypt_fields(
            shift["id"],
            {"handover_note": handover_note, "summary": json.dumps(merged, ensure_ascii=False)},
        )
        with self._s.g.tx() as db:
            db.execute(
                "UPDATE shifts SET closed_at=?, closed_by=?, handover_note=NULL, summary=NULL, "
                "handover_note_enc=?, summary_enc=? WHERE id=?",
                [_now(), supervisor, sealed["handover_note"], sealed["summary"], shift["id"]],
            )
            self._s.audit.append("shift_close", supervisor, {"shift": shift["id"]})
        return shift["id"]

    def seal_plaintext(self) -> int:
        """Encrypt the handover notes and summaries of shifts from before schema m005."""
        s = self._s
        rows = s.g.query(
            "SELECT id, handover_note, summary FROM shifts "
            "WHERE handover_note IS NOT NULL OR summary IS NOT NULL"
        )
        if rows:
            with s.g.tx() as db:
                db.conn.executemany(
                    "UPDATE shifts SET handover_note_enc = coalesce(?, handover_note_enc), "
                    "summary_enc = coalesce(?, summary_enc), handover_note = NULL, "
                    "summary = NULL WHERE id = ?",
                    [
                        (
                            s.cipher.encrypt(r["id"], "handover_note", r["handover_note"]),
                            s.cipher.encrypt(r["id"], "summary", r["summary"]),
                            r["id"],
                        )
                        for r in rows
                    ],
                )
        return len(rows)

    @staticmethod
    def require_supervisor(operator: Any) -> None:
        if operator is None or not getattr(operator, "is_supervisor", False):
            name = getattr(operator, "name", "nobody")
            raise PermissionDenied("err.shift_needs_supervisor", name=name)
