"""The status bar every screen shows: checkpoint, mode, shift, operator, camera, sync, key list."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.cells import cell_len
from textual import events
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


def fit_parts(parts: list[str], width: int) -> str:
    """The parts on one line of ``width`` cells, the last ones (sync, key list) never cut:
    first with roomy separators, then tight ones, then without the checkpoint's code, then
    with the checkpoint's name shortened (it is the part a person at the gate knows anyway)."""
    parts = [p for p in parts if p]
    if not parts:
        return ""
    first, rest = parts[0], parts[1:]
    name = first.split(" ")[0]
    for sep, head in ((" │ ", first), ("│", first), ("│", name)):
        line = sep.join([head, *rest])
        if cell_len(line) <= width:
            return line
    tail = "│" + "│".join(rest)
    room = width - cell_len(tail)
    if room <= 1:
        return "│".join(rest)
    cut = ""
    for ch in name:
        if cell_len(cut + ch) > room - 1:
            break
        cut += ch
    return cut + "…" + tail


class StatusBar(Static):
    """One line, docked at the top; values come from ``app.status`` (refreshed by a worker).
    At 80 columns everything fits (:func:`fit_parts`): the last parts are never cut."""

    DEFAULT_CSS = """
    StatusBar { dock: top; height: 1; width: 100%; background: $panel; color: $text; }
    StatusBar.-stale { background: $warning 40%; }
    StatusBar.-camera-down { background: $error 30%; }
    """

    values: dict[str, Any] | None = None

    def on_mount(self) -> None:
        self.watch(self.app, "status", self._show, init=True)

    def on_resize(self, event: events.Resize) -> None:
        if self.values is not None:
            self._show(self.values)

    def _show(self, values: dict[str, Any]) -> None:
        self.values = values
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
        width = self.size.width or fieldkit_app(self).size.width
        self.update(fit_parts(parts, width))
        self.set_class(bool(values.get("keylist_stale")), "-stale")
        self.set_class(values.get("camera") in ("missing", "reconnecting"), "-camera-down")
