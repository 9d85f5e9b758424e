"""Typed modal dialogs: area-mode change with the supervisor's PIN, acknowledgements."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from ...config import AREA_MODES
from ...errors import FieldkitError
from ..typed import fieldkit_app, store_of
from . import translate_bindings


class ModeChangeScreen(ModalScreen[str | None]):
    """Pick the new area mode; a supervisor confirms with their PIN (checked, counted, audited)."""

    BINDINGS = [Binding("escape", "cancel", "keys.cancel", id="mode.cancel")]

    def compose(self) -> ComposeResult:
        t = fieldkit_app(self).t
        current = fieldkit_app(self).settings.checkpoint.area_mode
        supervisors = [o.name for o in store_of(self).keyring.list() if o.is_supervisor]
        op = store_of(self).operator
        default = op.name if op and op.is_supervisor else (supervisors[0] if supervisors else "")
        with Vertical(classes="dialog", id="mode-box"):
            yield Label(t("mode_dialog.title", mode=t("mode." + current)), classes="dialog-title")
            yield OptionList(
                *[Option(f"{t('mode.' + m)}  ({m})", id=m) for m in AREA_MODES], id="mode-list"
            )
            yield Label(t("mode_dialog.supervisor"))
            yield Input(value=default, id="mode-supervisor", compact=True)
            yield Label(t("mode_dialog.pin"))
            yield Input(password=True, id="mode-pin", compact=True)
            yield Static("", id="mode-message")
        yield Footer()

    def on_mount(self) -> None:
        translate_bindings(self, fieldkit_app(self).t)
        options = self.query_one("#mode-list", OptionList)
        options.highlighted = AREA_MODES.index(fieldkit_app(self).settings.checkpoint.area_mode)
        options.focus()

    @on(OptionList.OptionSelected)
    def _picked(self) -> None:
        self.query_one("#mode-pin", Input).focus()

    @on(Input.Submitted, "#mode-supervisor")
    def _to_pin(self) -> None:
        self.query_one("#mode-pin", Input).focus()

    @on(Input.Submitted, "#mode-pin")
    def _submit(self) -> None:
        options = self.query_one("#mode-list", OptionList)
        if options.highlighted is None:
            return
        mode = AREA_MODES[options.highlighted]
        name = self.query_one("#mode-supervisor", Input).value.strip()
        pin = self.query_one("#mode-pin", Input).value
        if not name or not pin:
            return
        self.query_one("#mode-message", Static).update(fieldkit_app(self).t("login.checking"))
        self.apply(mode, name, pin)

    @work(thread=True, exit_on_error=False, group="mode", exclusive=True)
    def apply(self, mode: str, name: str, pin: str) -> None:
        store = store_of(self)
        try:
            op = store.keyring.verify_pin(name, pin)
            if not op.is_supervisor:
                fieldkit_app(self).call_from_thread(
                    self._fail, fieldkit_app(self).t("mode_dialog.not_supervisor", name=name)
                )
                return
            store.set_area_mode(mode, op)
        except FieldkitError as exc:
            from .authtext import auth_error_text

            fieldkit_app(self).call_from_thread(
                self._fail, auth_error_text(fieldkit_app(self), exc, name)
            )
            return
        fieldkit_app(self).call_from_thread(self.dismiss, mode)

    def _fail(self, text: str) -> None:
        message = self.query_one("#mode-message", Static)
        message.update(text)
        message.add_class("error")
        pin = self.query_one("#mode-pin", Input)
        pin.value = ""
        pin.focus()

    def action_cancel(self) -> None:
        self.dismiss(None)


class AlertScreen(ModalScreen[bool]):
    """Alerts that must be acknowledged before the gate takes the next person.

    Only F10 acknowledges: a scanner's Enter or a stray key cannot. Escape does nothing for a
    referral (the person must not be let go); the screen holds.
    """

    BINDINGS = [Binding("f10", "acknowledge", "keys.acknowledge", id="alert.ack", priority=True)]

    def __init__(self, title: str, lines: list[str], steps: list[str], severity: str) -> None:
        super().__init__()
        self.title_text = title
        self.lines = lines
        self.steps = steps
        self.severity = severity

    def compose(self) -> ComposeResult:
        t = fieldkit_app(self).t
        with Vertical(classes=f"dialog alert -{self.severity}", id="alert-box"):
            yield Label(self.title_text, classes="dialog-title", id="alert-title")
            for line in self.lines:
                yield Static(f"! {line}", classes="alert-line")
            for i, step in enumerate(self.steps, 1):
                yield Static(f"{i}. {step}", classes="alert-step")
            yield Static(t("alert.press_ack"), id="alert-ack-hint")
        yield Footer()

    def on_mount(self) -> None:
        translate_bindings(self, fieldkit_app(self).t)

    def action_acknowledge(self) -> None:
        self.dismiss(True)
