"""Home monitoring (居家隔离 / 居家健康监测): today's due and overdue readings, alerts, release.

Keyboard first: the due list has the cursor; Enter opens the reading (temperature digits,
symptom digits, Enter). After a save the cursor goes to the next person still owed a reading
(the row that was below, not whatever slides into the measured row's place); Enter on a window
already measured asks before a second reading replaces the first. When nothing is due, the
people under monitoring with no window today yet are listed with their next one (下次 早 06:00),
and the line under the list says so and when the next window opens. An abnormal reading raises
a referral alert that holds the screen until F10. F6 acknowledges the highlighted alert, F7
releases the highlighted person when the period is over (a supervisor's name and PIN; before
the planned end also a reason). Missed windows are looked for every minute, in a worker. The
dialogs are in :mod:`.monitoring_dialogs`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from ..errors import FieldkitError
from ..ledger.monitoring import DueItem
from .monitoring_dialogs import MEASURED_KEYS, OverwriteDialog, ReadingDialog, ReleaseDialog
from .screen_entry import ScreenEntry
from .typed import fieldkit_app, store_of
from .widgets import StatusBar, translate_bindings

__all__ = [
    "MEASURED_KEYS",
    "MonitoringScreen",
    "OverwriteDialog",
    "ReadingDialog",
    "ReleaseDialog",
]

CHECK_EVERY_S = 60
OWED = ("overdue", "due")


def row_key(item: DueItem) -> tuple[str, str, bool]:
    """Which row is which across a reload: the person, the window, and whether it is the row
    of their next window (state "next") rather than one of today's."""
    return (item.member_id, item.slot, item.state == "next")


class MonitoringScreen(Screen):
    """Due and overdue readings now, open alerts, periods that have ended."""

    CSS_PATH = "patrol.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f6", "acknowledge", "keys.mon_ack", id="mon.ack"),
        Binding("f7", "release", "keys.mon_release", id="mon.release"),
        Binding("ctrl+r", "refresh", "keys.mon_refresh", id="mon.refresh", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.due_items: list[DueItem] = []
        self.next_at: dict[str, dict[str, Any]] = {}  # member id → their next window
        self.alert_rows: list[dict[str, Any]] = []
        self.ending_rows: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        t = fieldkit_app(self).t
        yield StatusBar()
        yield Static(t("mon.title"), classes="screen-title", id="mon-title")
        yield DataTable(id="due", cursor_type="row", zebra_stripes=True)
        yield Static("", id="mon-summary")
        yield DataTable(id="alerts", cursor_type="row")
        yield Static("", id="mon-ending")
        yield Footer()

    def on_mount(self) -> None:
        translate_bindings(self, fieldkit_app(self).t)
        t = fieldkit_app(self).t
        self.query_one("#due", DataTable).add_columns(
            t("mon.col_state"),
            t("mon.col_slot"),
            t("mon.col_place"),
            t("mon.col_name"),
            t("mon.col_status"),
            t("mon.col_end"),
            t("mon.col_temp"),
        )
        self.query_one("#alerts", DataTable).add_columns(
            t("mon.col_alert"),
            t("mon.col_day"),
            t("mon.col_place"),
            t("mon.col_name"),
            t("mon.col_detail"),
        )
        self.query_one("#due", DataTable).focus()
        self.set_interval(CHECK_EVERY_S, self.action_refresh)
        self.action_refresh()

    def on_screen_resume(self) -> None:
        self.action_refresh()

    def on_store_changed(self) -> None:
        """A ledger import or a reading saved by another process: shown without a restart."""
        self.action_refresh()

    def action_refresh(self) -> None:
        self.load()

    @work(thread=True, exit_on_error=False, group="mon-load", exclusive=True)
    def load(self) -> None:
        mon = store_of(self).monitoring
        mon.check_missed()
        data = (mon.due(), mon.upcoming(), mon.alerts(), mon.ending())
        fieldkit_app(self).call_from_thread(self._show, *data)

    def _show(
        self,
        due: list[DueItem],
        upcoming: list[dict[str, Any]],
        alerts: list[dict[str, Any]],
        ending: list[dict[str, Any]],
    ) -> None:
        t = fieldkit_app(self).t
        table = self.query_one("#due", DataTable)
        keep = table.cursor_row
        current = self._cursor_item()
        # When nobody is owed a reading (between the windows), everyone under monitoring who
        # has no row today (before the morning window, or added since) gets a row with their
        # next window: the list is never empty while people are monitored.
        listed = {d.member_id for d in due}
        idle = not any(d.state in OWED for d in due)
        nexts = [u for u in upcoming if idle and u["slot"] and u["member_id"] not in listed]
        items = due + [
            DueItem(
                u["member_id"],
                u["household_id"],
                u["place"],
                u["name_masked"],
                u["id_masked"],
                u["status"],
                u["status_end"],
                u["slot"],
                "next",
                None,
            )
            for u in nexts
        ]
        self.next_at = {u["member_id"]: u for u in upcoming if u["slot"]}
        table.clear()
        for d in items:
            table.add_row(
                t("mon.state." + d.state),
                self._slot_text(d),
                d.place,
                d.name_masked or "",
                t("ledger.status." + d.status),
                d.status_end or "",
                "" if d.last_temperature is None else f"{d.last_temperature:.1f}",
            )
        self.due_items = items
        if items:
            # The same row as before (person and window), wherever the reload put it.
            keys = [row_key(d) for d in items]
            want = row_key(current) if current else None
            table.move_cursor(row=keys.index(want) if want in keys else min(keep, len(items) - 1))
        counts = {s: sum(1 for d in due if d.state == s) for s in ("overdue", "due", "done")}
        self.query_one("#mon-summary", Static).update(
            t("mon.summary", **counts, alerts=len(alerts))
            if counts["overdue"] or counts["due"]
            else t(
                "mon.idle",
                n=len(upcoming),
                next=self._next_text(upcoming),
                done=counts["done"],
                alerts=len(alerts),
            )
        )
        atable = self.query_one("#alerts", DataTable)
        atable.clear()
        for a in alerts:
            atable.add_row(
                t("mon.alert." + a["kind"]),
                f"{a['day']} " + (t("mon.slot." + a["slot"]) if a["slot"] else ""),
                a["place"],
                a["name_masked"] or "",
                self._detail(a),
            )
        self.alert_rows = alerts
        self.ending_rows = ending
        self.query_one("#mon-ending", Static).update(
            t(
                "mon.ending",
                n=len(ending),
                names=" ".join(f"{e['place']} {e['name_masked'] or ''}" for e in ending[:4]),
            )
            if ending
            else ""
        )

    def _slot_text(self, d: DueItem) -> str:
        t = fieldkit_app(self).t
        slot = t("mon.slot." + d.slot)
        if d.state != "next":
            return slot
        return self._next_text([self.next_at[d.member_id]])

    def _next_text(self, upcoming: list[dict[str, Any]]) -> str:
        """The earliest next window of anyone under monitoring (下次 晚 17:00), or "-"."""
        t = fieldkit_app(self).t
        soon = min(
            (u for u in upcoming if u["slot"]), key=lambda u: (u["day"], u["opens"]), default=None
        )
        if soon is None:
            return "-"
        key = "mon.next_at" if soon["day"] == self._today() else "mon.next_tomorrow"
        return t(key, slot=t("mon.next_slot." + soon["slot"]), opens=soon["opens"])

    def _today(self) -> str:
        from ..ledger import monitoring

        return monitoring.now_local().date().isoformat()

    def _cursor_item(self) -> DueItem | None:
        table = self.query_one("#due", DataTable)
        if not self.due_items or table.cursor_row is None or table.row_count == 0:
            return None
        return self.due_items[min(table.cursor_row, len(self.due_items) - 1)]

    def _detail(self, a: dict[str, Any]) -> str:
        d = a["detail"]
        if a["kind"] != "referral":
            return ""
        parts = [f"{d['temperature']:.1f}°C"] if d.get("temperature") is not None else []
        parts += [fieldkit_app(self).t("ledger.symptom." + s) for s in d.get("symptoms", [])]
        return " ".join(parts)

    # -- readings -----------------------------------------------------------------------------
    @on(DataTable.RowSelected, "#due")
    def _due_selected(self, event: DataTable.RowSelected) -> None:
        if event.cursor_row < len(self.due_items):
            self.enter_reading(self.due_items[event.cursor_row])

    def enter_reading(self, item: DueItem) -> None:
        """The reading for ``item``: a window not open yet says when it opens; one already
        measured asks first (a second reading replaces the first in the list)."""
        t = fieldkit_app(self).t
        if item.state == "next":
            fieldkit_app(self).notify(
                t(
                    "mon.not_open_yet",
                    name=item.name_masked or "",
                    next=self._slot_text(item),
                ),
                severity="warning",
            )
            return
        if item.state == "done":

            def answered(yes: bool | None) -> None:
                if yes:
                    self._open_reading(item)

            fieldkit_app(self).push_screen(OverwriteDialog(item, self._earlier(item)), answered)
            return
        self._open_reading(item)

    def _earlier(self, item: DueItem) -> dict[str, Any] | None:
        """The reading already stored for ``item``'s window today (the latest, as listed)."""
        today = self._today()
        for r in store_of(self).monitoring.readings(item.member_id, limit=8):
            if r["day"] == today and r["slot"] == item.slot:
                return r
        return None

    def _open_reading(self, item: DueItem) -> None:
        def done(reading: dict | None) -> None:
            if reading is not None:
                self._move_on_from(item)
                self._saved(item, reading)

        fieldkit_app(self).push_screen(ReadingDialog(item), done)

    def _move_on_from(self, item: DueItem) -> None:
        """After ``item`` is measured it drops to 已测: the cursor goes to the next row still
        owed a reading, the one below it before the save (else the first one above), so the
        worker's next Enter is the next person, not the one just measured."""
        keys = [row_key(d) for d in self.due_items]
        if row_key(item) not in keys:
            return
        i = keys.index(row_key(item))
        order = list(range(i + 1, len(keys))) + list(range(i))
        target = next((j for j in order if self.due_items[j].state in OWED), None)
        if target is not None:
            self.query_one("#due", DataTable).move_cursor(row=target)

    def _saved(self, item: DueItem, reading: dict[str, Any]) -> None:
        t = fieldkit_app(self).t
        if reading["abnormal"]:
            from .widgets.dialogs import AlertScreen

            rules = fieldkit_app(self).settings.rules
            temp = reading["temperature"]
            line = t(
                "mon.referral_line",
                name=item.name_masked or "",
                place=item.place,
                temperature="-" if temp is None else f"{temp:.1f}",
                symptoms="、".join(t("ledger.symptom." + s) for s in reading["symptoms"]),
            )
            fieldkit_app(self).push_screen(
                AlertScreen(
                    t("patrol.referral_title"),
                    [line],
                    [t("patrol.referral_step", call=rules.emergency_number)],
                    "referral",
                )
            )
        else:
            fieldkit_app(self).notify(
                t(
                    "mon.saved",
                    name=item.name_masked or "",
                    temperature=f"{reading['temperature']:.1f}"
                    if reading["temperature"] is not None
                    else "-",
                )
            )
        self.action_refresh()

    def _failed(self, exc: Exception) -> None:
        fieldkit_app(self).notify(fieldkit_app(self).error_text(exc), severity="error")

    # -- alerts and release -------------------------------------------------------------------
    def action_acknowledge(self) -> None:
        table = self.query_one("#alerts", DataTable)
        if not self.alert_rows or table.cursor_row is None:
            return
        alert = self.alert_rows[min(table.cursor_row, len(self.alert_rows) - 1)]
        try:
            store_of(self).monitoring.acknowledge(alert["id"])
        except FieldkitError as exc:
            self._failed(exc)
        self.action_refresh()

    def action_release(self) -> None:
        person = self._release_candidate()
        if person is None:
            fieldkit_app(self).notify(
                fieldkit_app(self).t("mon.nothing_to_release"), severity="warning"
            )
            return
        self.release_worker(person)

    def _release_candidate(self) -> dict[str, Any] | None:
        table = self.query_one("#due", DataTable)
        if self.due_items and table.cursor_row is not None and table.has_focus:
            item = self.due_items[min(table.cursor_row, len(self.due_items) - 1)]
            return {
                "id": item.member_id,
                "name_masked": item.name_masked,
                "place": item.place,
                "status_end": item.status_end,
            }
        return self.ending_rows[0] if self.ending_rows else None

    def release_worker(self, person: dict[str, Any]) -> None:
        def done(released: bool | None) -> None:
            if released:
                fieldkit_app(self).notify(
                    fieldkit_app(self).t("mon.released", name=person["name_masked"] or "")
                )
                self.action_refresh()

        fieldkit_app(self).push_screen(ReleaseDialog(person), done)


SCREENS = [ScreenEntry("monitoring", "mon.title", MonitoringScreen, ("patrol", "supervisor"), "f9")]
