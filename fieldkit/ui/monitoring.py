"""Home monitoring (居家隔离 / 居家健康监测): today's due and overdue readings, alerts, release.

Keyboard first: the due list has the cursor; Enter opens the reading (temperature digits,
symptom digits, Enter). An abnormal reading raises a referral alert that holds the screen until
F10. F6 acknowledges the highlighted alert, F7 releases the highlighted person when the period
is over (a supervisor's name and PIN; before the planned end also a reason). Missed windows are
looked for every minute, in a worker.
"""

from __future__ import annotations

from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Input, Label, Static

from ..errors import FieldkitError, InputError
from ..gate import parse_temperature
from ..ledger.model import parse_symptoms, symptom_legend
from .screen_entry import ScreenEntry
from .typed import fieldkit_app, store_of
from .widgets import StatusBar, translate_bindings

MEASURED_KEYS = {"d": "doctor", "s": "self", "w": "worker"}
CHECK_EVERY_S = 60


class ReadingDialog(ModalScreen[dict | None]):
    """Temperature (365 → 36.5), symptom digits, who measured (d/s/w)."""

    CSS_PATH = "patrol.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "keys.cancel", id="reading.cancel")
    ]

    def __init__(self, item) -> None:
        super().__init__()
        self.item = item

    def compose(self) -> ComposeResult:
        t = fieldkit_app(self).t
        d = self.item
        with Vertical(classes="dialog", id="reading-box"):
            yield Label(
                t(
                    "mon.reading_title",
                    name=d.name_masked or "",
                    place=d.place,
                    slot=t("mon.slot." + d.slot),
                ),
                classes="dialog-title",
            )
            yield Input(
                id="r-temp", compact=True, max_length=5, placeholder="365", restrict=r"[0-9.,]*"
            )
            yield Static(t("patrol.symptom_legend", legend=symptom_legend(t)), classes="hint")
            yield Input(
                id="r-sym",
                compact=True,
                max_length=8,
                restrict=r"[1-6 ]*",
                placeholder=t("patrol.symptoms"),
            )
            yield Input(
                id="r-by",
                compact=True,
                max_length=1,
                value="d",
                placeholder=t("mon.measured_by_hint"),
                restrict=r"[dswDSW]*",
            )
            yield Static(t("mon.measured_by_hint"), classes="hint")
            yield Static("", id="reading-message")
        yield Footer()

    def on_mount(self) -> None:
        translate_bindings(self, fieldkit_app(self).t)
        self.query_one("#r-temp", Input).focus()

    @on(Input.Submitted)
    def _next(self, event: Input.Submitted) -> None:
        event.stop()
        order = ["r-temp", "r-sym", "r-by"]
        i = order.index(event.input.id or "")
        if event.input.id == "r-temp" and not event.input.value.strip():
            return
        if i + 1 < len(order) and event.input.id != "r-sym":
            self.query_one(f"#{order[i + 1]}", Input).focus()
            return
        try:
            temp = self.query_one("#r-temp", Input).value.strip()
            by = (self.query_one("#r-by", Input).value.strip().lower() or "d")[:1]
            self.dismiss(
                {
                    "temperature": parse_temperature(temp) if temp else None,
                    "symptoms": parse_symptoms(self.query_one("#r-sym", Input).value),
                    "measured_by": MEASURED_KEYS.get(by, "doctor"),
                    "slot": self.item.slot,
                }
            )
        except InputError as exc:
            message = self.query_one("#reading-message", Static)
            message.update(fieldkit_app(self).error_text(exc))
            message.add_class("error")

    def action_cancel(self) -> None:
        self.dismiss(None)


class ReleaseDialog(ModalScreen[bool]):
    """期满解除: a supervisor confirms with their PIN (checked, counted, audited)."""

    CSS_PATH = "patrol.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "keys.cancel", id="release.cancel")
    ]

    def __init__(self, person: dict[str, Any]) -> None:
        super().__init__()
        self.person = person

    def compose(self) -> ComposeResult:
        t = fieldkit_app(self).t
        p = self.person
        op = store_of(self).operator
        supervisors = [o.name for o in store_of(self).keyring.list() if o.is_supervisor]
        default = op.name if op and op.is_supervisor else (supervisors[0] if supervisors else "")
        with Vertical(classes="dialog", id="release-box"):
            yield Label(
                t(
                    "mon.release_title",
                    name=p["name_masked"] or "",
                    place=p["place"],
                    end=p["status_end"] or "-",
                ),
                classes="dialog-title",
            )
            yield Label(t("mode_dialog.supervisor"))
            yield Input(value=default, id="rel-supervisor", compact=True)
            yield Label(t("mode_dialog.pin"))
            yield Input(password=True, id="rel-pin", compact=True)
            yield Input(id="rel-reason", compact=True, placeholder=t("mon.early_reason"))
            yield Static("", id="release-message")
        yield Footer()

    def on_mount(self) -> None:
        translate_bindings(self, fieldkit_app(self).t)
        self.query_one("#rel-pin", Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "rel-supervisor":
            self.query_one("#rel-pin", Input).focus()
            return
        name = self.query_one("#rel-supervisor", Input).value.strip()
        pin = self.query_one("#rel-pin", Input).value
        if not name or not pin:
            return
        self.release(name, pin, self.query_one("#rel-reason", Input).value.strip() or None)

    @work(thread=True, exit_on_error=False, group="release", exclusive=True)
    def release(self, name: str, pin: str, reason: str | None) -> None:
        try:
            store_of(self).monitoring.release(self.person["id"], name, pin, early_reason=reason)
        except FieldkitError as exc:
            fieldkit_app(self).call_from_thread(self._fail, exc)
            return
        fieldkit_app(self).call_from_thread(self.dismiss, True)

    def _fail(self, exc: Exception) -> None:
        message = self.query_one("#release-message", Static)
        message.update(fieldkit_app(self).error_text(exc))
        message.add_class("error")
        if getattr(exc, "code", None) == "err.early_release_reason":
            self.query_one("#rel-reason", Input).focus()
        else:
            self.query_one("#rel-pin", Input).value = ""
            self.query_one("#rel-pin", Input).focus()

    def action_cancel(self) -> None:
        self.dismiss(False)


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
        self.due_items: list = []
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
        data = (mon.due(), mon.alerts(), mon.ending())
        fieldkit_app(self).call_from_thread(self._show, *data)

    def _show(self, due: list, alerts: list[dict[str, Any]], ending: list[dict[str, Any]]) -> None:
        t = fieldkit_app(self).t
        table = self.query_one("#due", DataTable)
        keep = table.cursor_row
        table.clear()
        for d in due:
            table.add_row(
                t("mon.state." + d.state),
                t("mon.slot." + d.slot),
                d.place,
                d.name_masked or "",
                t("ledger.status." + d.status),
                d.status_end or "",
                "" if d.last_temperature is None else f"{d.last_temperature:.1f}",
            )
        self.due_items = due
        if due:
            table.move_cursor(row=min(keep, len(due) - 1))
        counts = {s: sum(1 for d in due if d.state == s) for s in ("overdue", "due", "done")}
        self.query_one("#mon-summary", Static).update(
            t("mon.summary", **counts, alerts=len(alerts))
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

    def enter_reading(self, item) -> None:
        def done(result: dict | None) -> None:
            if result is not None:
                self.save_reading(item, result)

        fieldkit_app(self).push_screen(ReadingDialog(item), done)

    @work(thread=True, exit_on_error=False, group="mon-save")
    def save_reading(self, item, fields: dict[str, Any]) -> None:
        try:
            reading = store_of(self).monitoring.record_reading(item.member_id, **fields)
        except FieldkitError as exc:
            fieldkit_app(self).call_from_thread(self._failed, exc)
            return
        fieldkit_app(self).call_from_thread(self._saved, item, reading)

    def _saved(self, item, reading: dict[str, Any]) -> None:
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
