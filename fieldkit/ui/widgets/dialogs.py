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
from ..fields import SteadyFooter
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

    A screen that raises alerts often (the gate, the vehicle lane) keeps one installed and
    :meth:`show` the next alert in it: the dialog and its footer are built once, not for
    every referral (building them was most of an alert's time at a busy gate).
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
            yield Static(self._lines_text(), classes="alert-line", id="alert-lines")
            steps = Static(self._steps_text(), classes="alert-step", id="alert-steps")
            steps.display = bool(self.steps)
            yield steps
            yield Static(t("alert.press_ack"), id="alert-ack-hint")
        yield SteadyFooter()

    def _lines_text(self) -> str:
        return "\n".join(f"! {line}" for line in self.lines)

    def _steps_text(self) -> str:
        return "\n".join(f"{i}. {step}" for i, step in enumerate(self.steps, 1))

    def show(self, title: str, lines: list[str], steps: list[str], severity: str) -> None:
        """The next alert in this (installed) screen, before it is pushed again."""
        old, self.severity = self.severity, severity
        self.title_text, self.lines, self.steps = title, lines, steps
        if not self.is_mounted:
            return  # composed from these when first pushed
        box = self.query_one("#alert-box", Vertical)
        box.set_class(False, f"-{old}")
        box.set_class(True, f"-{severity}")
        self.query_one("#alert-title", Label).update(title)
        self.query_one("#alert-lines", Static).update(self._lines_text())
        steps_widget = self.query_one("#alert-steps", Static)
        steps_widget.update(self._steps_text())
        steps_widget.display = bool(steps)

    def on_mount(self) -> None:
        translate_bindings(self, fieldkit_app(self).t)

    def action_acknowledge(self) -> None:
        self.dismiss(True)


def push_alert(
    app, name: str, title: str, lines: list[str], steps: list[str], severity: str, done
) -> None:
    """Push an alert in the screen installed as ``name`` (made the first time): built once
    per app, shown again for each alert; ``done`` is called when it is acknowledged."""
    if app.is_screen_installed(name):
        screen = app.get_screen(name)
        screen.show(title, lines, steps, severity)
    else:
        app.install_screen(AlertScreen(title, lines, steps, severity), name)
    app.push_screen(name, done)
