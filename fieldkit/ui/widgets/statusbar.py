"""The status bar every screen shows: checkpoint, mode, shift, operator, camera, sync, key list."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from textual.widgets import Static

from ..typed import fieldkit_app


def age_text(updated_at: str | None, t, now: datetime | None = None) -> str:
    """How old the key-person list is, short: "3分钟" / "2h" / "never"."""
    if not updated_at:
        return t("status.never")
    try:
        then = datetime.fromisoformat(updated_at)
    except ValueError:
        return t("status.never")
    now = now or datetime.now(then.tzinfo)
    minutes = max(0, int((now - then).total_seconds() // 60))
    if minutes < 60:
        return t("status.age_min", n=minutes)
    if minutes < 48 * 60:
        return t("status.age_hours", n=minutes // 60)
    return t("status.age_days", n=minutes // 1440)


class StatusBar(Static):
    """One line, docked at the top; values come from ``app.status`` (refreshed by a worker)."""

    DEFAULT_CSS = """
    StatusBar { dock: top; height: 1; width: 100%; background: $panel; color: $text; }
    StatusBar.-stale { background: $warning 40%; }
    StatusBar.-camera-down { background: $error 30%; }
    """

    def on_mount(self) -> None:
        self.watch(self.app, "status", self._show, init=True)

    def _show(self, values: dict[str, Any]) -> None:
        app = fieldkit_app(self)
        t = app.t
        parts = [
            f"{values.get('checkpoint', '')}",
            t("mode." + values.get("mode", "normal")),
            t("status.shift_open") if values.get("shift") else t("status.shift_none"),
            values.get("operator") or t("status.nobody"),
            t("status.camera", state=t("camera." + values.get("camera", "off"))),
            t("status.pending", n=values.get("pending", 0)),
            t("status.keylist", age=age_text(values.get("keylist_at"), t)),
        ]
        self.update(" │ ".join(p for p in parts if p))
        self.set_class(bool(values.get("keylist_stale")), "-stale")
        self.set_class(values.get("camera") in ("missing", "reconnecting"), "-camera-down")
