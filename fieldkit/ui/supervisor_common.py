"""Pieces shared by the supervisor screens: today's date (frozen in tests), the supervisor-PIN
block of confirmation dialogs, a yes/no dialog, and compact figure lines."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import date
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Label, Static

from ..errors import FieldkitError, PermissionDenied
from .typed import fieldkit_app, store_of
from .widgets import translate_bindings


def today() -> date:
    """The reports' "today" (tests freeze it for deterministic snapshots)."""
    return date.today()


def display_width(text: str) -> int:
    """Terminal columns: CJK and full-width characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def figure_lines(
    values: dict[str, Any], t, rows: tuple[tuple[str, ...], ...], cell: int = 16
) -> list[str]:
    """Aligned "label  n" cells for narrow panels, short labels, ``cell`` columns each."""
    lines = []
    for row in rows:
        cells = []
        for key in row:
            label, value = t(f"report.short.{key}"), str(values.get(key, 0))
            pad = max(1, cell - display_width(label) - len(value))
            cells.append(f"{label}{' ' * pad}{value}")
        lines.append("  ".join(cells))
    return lines


def abnormal_text(abnormal: dict[str, int], t, lang: str) -> str:
    sep = "，" if lang == "zh" else ", "
    return t(
        "report.abnormal_line",
        items=sep.join(f"{t(f'report.field.{k}')} {v}" for k, v in abnormal.items()),
    )


class PinDialog(ModalScreen[Any]):
    """A dialog that does something only once a supervisor has typed their PIN.

    Subclasses compose their own fields, then ``yield from self.pin_fields()``; Enter in the
    PIN field (or F10) calls :meth:`perform` in a worker thread with the verified supervisor.
    Whatever ``perform`` returns is the dialog's result.
    """

    CSS_PATH = "supervisor.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "keys.cancel", id="sup.cancel"),
        Binding("f10", "submit", "keys.sup_confirm", id="sup.confirm", priority=True),
    ]

    def pin_fields(self) -> ComposeResult:
        t = fieldkit_app(self).t
        op = store_of(self).operator
        with Horizontal(classes="pin-row"):
            yield Label(t("sup.supervisor"), classes="field-label")
            yield Input(
                value=op.name if op and op.is_supervisor else "",
                id="pin-name",
                compact=True,
                max_length=40,
            )
            yield Label(t("sup.pin"), classes="field-label")
            yield Input(password=True, id="pin-pin", compact=True, max_length=64)
        yield Static("", id="dialog-message", markup=False)

    def on_mount(self) -> None:
        translate_bindings(self, fieldkit_app(self).t)

    def footer(self) -> ComposeResult:
        yield Footer()

    @on(Input.Submitted, "#pin-name")
    def _to_pin(self) -> None:
        self.query_one("#pin-pin", Input).focus()

    @on(Input.Submitted, "#pin-pin")
    def _pin_entered(self) -> None:
        self.action_submit()

    def ready(self) -> str | None:
        """A message when something else must be filled in first, else None."""
        return None

    def values(self) -> dict[str, Any]:
        """The form's values, read on the UI thread for :meth:`perform`."""
        return {}

    def action_submit(self) -> None:
        problem = self.ready()
        if problem:
            self.say(problem, error=True)
            return
        name = self.query_one("#pin-name", Input).value.strip()
        pin = self.query_one("#pin-pin", Input).value
        if not name or not pin:
            self.say(fieldkit_app(self).t("sup.pin_needed"), error=True)
            self.query_one("#pin-pin" if name else "#pin-name", Input).focus()
            return
        self.say(fieldkit_app(self).t("login.checking"))
        self._confirm(name, pin, self.values())

    @work(thread=True, exit_on_error=False, group="pin-dialog", exclusive=True)
    def _confirm(self, name: str, pin: str, values: dict[str, Any]) -> None:
        store = store_of(self)
        try:
            op = store.keyring.verify_pin(name, pin)
            if not op.is_supervisor:
                raise PermissionDenied(fieldkit_app(self).t("sup.not_supervisor", name=name))
            result = self.perform(op, values)
        except PermissionDenied as exc:
            fieldkit_app(self).call_from_thread(self._failed, str(exc))
            return
        except FieldkitError as exc:
            from .login import auth_error_text

            fieldkit_app(self).call_from_thread(
                self._failed, auth_error_text(fieldkit_app(self), exc, name)
            )
            return
        fieldkit_app(self).call_from_thread(self.dismiss, result)

    def perform(self, supervisor, values: dict[str, Any]) -> Any:
        """The work, in a worker thread; raise a FieldkitError to show a line and stay open."""
        raise NotImplementedError

    def _failed(self, text: str) -> None:
        self.say(text, error=True)
        pin = self.query_one("#pin-pin", Input)
        pin.value = ""
        pin.focus()

    def say(self, text: str, *, error: bool = False) -> None:
        message = self.query_one("#dialog-message", Static)
        message.update(text)
        message.set_class(error, "error")

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmDialog(ModalScreen[bool]):
    """Yes or no; only F10 or "y" says yes (a stray Enter says nothing)."""

    CSS_PATH = "supervisor.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,n", "answer(False)", "keys.cancel", id="confirm.no"),
        Binding("f10,y", "answer(True)", "keys.sup_confirm", id="confirm.yes"),
    ]

    def __init__(self, title: str, lines: list[str], hint: str | None = None) -> None:
        """``hint``: the line that says the keys (default: F10 or y confirms, Esc or n not);
        a dialog that names its keys its own way gives it here, so they are said once."""
        super().__init__()
        self.title_text = title
        self.lines = lines
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="confirm-box"):
            yield Label(self.title_text, classes="dialog-title")
            for line in self.lines:
                yield Static(line, markup=False)
            yield Static(self.hint or fieldkit_app(self).t("sup.confirm_hint"), classes="hint")
        yield Footer()

    def on_mount(self) -> None:
        translate_bindings(self, fieldkit_app(self).t)

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


def run_in_thread(
    screen,
    fn: Callable[[], Any],
    done: Callable[[Any], None],
    failed: Callable[[FieldkitError], None] | None = None,
) -> None:
    """Database work off the UI thread; the result (or the user error) comes back on it.

    Without ``failed``, an error goes to the app's one handler for worker failures."""
    app = screen.app

    def job() -> None:
        try:
            result = fn()
        except FieldkitError as exc:
            if failed is None:
                raise
            app.call_from_thread(failed, exc)
            return
        app.call_from_thread(done, result)

    screen.run_worker(job, thread=True, exit_on_error=False, group="db")
