"""The monitoring screen's dialogs: one reading (temperature, symptoms, who measured), and a
release (解除) confirmed by a supervisor's name and PIN. The patrol card opens the release too.
"""

from __future__ import annotations

from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Label, Static

from ..errors import FieldkitError, InputError
from ..gate import parse_temperature
from ..ledger.model import parse_symptoms, symptom_legend
from .typed import fieldkit_app, store_of
from .widgets import translate_bindings

MEASURED_KEYS = {"d": "doctor", "s": "self", "w": "worker"}


class ReadingDialog(ModalScreen[dict | None]):
    """Temperature (365 → 36.5), symptom digits, who measured (d/s/w). The dialog saves the
    reading itself and closes only when it is stored (the stored reading is its result): a
    reading the store refuses (no temperature, an implausible one) is said under the
    temperature field, with the cursor there and everything typed kept."""

    CSS_PATH = "patrol.tcss"
    DEFAULT_CSS = "#r-temp-message { height: auto; }"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "keys.cancel", id="reading.cancel")
    ]
    # Refusals about the temperature: said next to that field, which gets the cursor.
    TEMPERATURE_CODES = ("err.reading_needs_temperature", "err.temp_implausible")

    def __init__(self, item) -> None:
        super().__init__()
        self.item = item
        self._saving = False

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
            yield Static("", id="r-temp-message", classes="error", markup=False)
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
        self.query_one("#r-temp-message", Static).display = False
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
        if self._saving:
            return
        try:
            temp = self.query_one("#r-temp", Input).value.strip()
            by = (self.query_one("#r-by", Input).value.strip().lower() or "d")[:1]
            fields = {
                "temperature": parse_temperature(temp) if temp else None,
                "symptoms": parse_symptoms(self.query_one("#r-sym", Input).value),
                "measured_by": MEASURED_KEYS.get(by, "doctor"),
                "slot": self.item.slot,
            }
        except InputError as exc:
            self._refused(exc, temperature=True)
            return
        self._saving = True
        self.save(fields)

    @work(thread=True, exit_on_error=False, group="reading-save", exclusive=True)
    def save(self, fields: dict[str, Any]) -> None:
        app = fieldkit_app(self)
        try:
            reading = store_of(self).monitoring.record_reading(self.item.member_id, **fields)
        except FieldkitError as exc:
            app.call_from_thread(self._refused, exc)
            return
        app.call_from_thread(self.dismiss, reading)

    def _refused(self, exc: Exception, *, temperature: bool = False) -> None:
        self._saving = False
        text = fieldkit_app(self).error_text(exc)
        near_temp = temperature or getattr(exc, "code", None) in self.TEMPERATURE_CODES
        temp_message = self.query_one("#r-temp-message", Static)
        message = self.query_one("#reading-message", Static)
        temp_message.update(text if near_temp else "")
        temp_message.display = near_temp
        message.update("" if near_temp else text)
        message.set_class(not near_temp, "error")
        if near_temp:
            self.query_one("#r-temp", Input).focus()

    def action_cancel(self) -> None:
        if not self._saving:  # a reading being stored is not taken back by Esc
            self.dismiss(None)


class OverwriteDialog(ModalScreen[bool]):
    """已测过 … 是否覆盖？ Asked before a second reading of a window that already has one:
    Enter or Y goes on to the reading, Esc (or N) leaves the first reading as it is."""

    CSS_PATH = "patrol.tcss"
    DEFAULT_CSS = "#overwrite-box { width: 72; }"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,n", "answer(False)", "keys.cancel", id="overwrite.no"),
        Binding("enter,y", "answer(True)", "keys.mon_overwrite", id="overwrite.yes"),
    ]

    def __init__(self, item, earlier: dict[str, Any] | None) -> None:
        super().__init__()
        self.item = item
        self.earlier = earlier or {}

    def compose(self) -> ComposeResult:
        t = fieldkit_app(self).t
        d, e = self.item, self.earlier
        slot = t("mon.slot." + d.slot)
        temp = e.get("temperature", d.last_temperature)
        with Vertical(classes="dialog", id="overwrite-box"):
            yield Label(
                t("mon.overwrite_title", name=d.name_masked or "", place=d.place, slot=slot),
                classes="dialog-title",
            )
            yield Static(
                t(
                    "mon.overwrite_line",
                    slot=slot,
                    temperature="-" if temp is None else f"{temp:.1f}",
                    measured_by=t("mon.measured." + (e.get("measured_by") or "doctor")),
                ),
                markup=False,
            )
            yield Static(t("mon.overwrite_hint"), classes="hint")
        yield Footer()

    def on_mount(self) -> None:
        translate_bindings(self, fieldkit_app(self).t)

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


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
