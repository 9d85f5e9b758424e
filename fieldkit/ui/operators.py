"""Operators (操作员): list with role and last login, add, remove, reset a PIN.

Only a supervisor reaches this screen; the keyring checks the role again on every change and
audits it. New PINs are typed twice; the scrypt work runs in a worker so the screen stays live.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Input, Label, RadioButton, RadioSet, Static

from ..errors import FieldkitError
from ..store.keyring import ROLES
from .supervisor_common import ConfirmDialog, run_in_thread
from .typed import fieldkit_app, operator_of, store_of
from .widgets import StatusBar, translate_bindings


def login_text(value: str | None, t) -> str:
    return value[:16].replace("T", " ") if value else t("ops.never")


class OperatorsScreen(Screen):
    CSS_PATH = "supervisor.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "add", "keys.ops_add", id="ops.add"),
        Binding("p", "reset_pin", "keys.ops_reset", id="ops.reset"),
        Binding("delete", "remove", "keys.ops_remove", id="ops.remove"),
        Binding("escape", "back", "keys.sup_back", id="ops.back"),
    ]

    def compose(self) -> ComposeResult:
        yield StatusBar()
        yield Label(fieldkit_app(self).t("ops.title"), classes="screen-title")
        yield DataTable(id="ops-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="ops-hint", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        translate_bindings(self, fieldkit_app(self).t)
        t = fieldkit_app(self).t
        table = self.query_one("#ops-table", DataTable)
        table.add_columns(
            t("ops.col_name"),
            t("ops.col_role"),
            t("ops.col_last_login"),
            t("ops.col_created"),
            t("ops.col_state"),
        )
        table.focus()
        self.reload()

    def on_screen_resume(self) -> None:
        self.reload()

    def reload(self) -> None:
        run_in_thread(self, store_of(self).keyring.list, self._show)

    def _show(self, operators) -> None:
        t = fieldkit_app(self).t
        table = self.query_one("#ops-table", DataTable)
        selected = self.selected()
        table.clear()
        now = time.time()
        for op in operators:
            if op.locked_until > now:
                state = t("ops.locked")
            elif op.failures:
                state = t("ops.failures", n=op.failures)
            else:
                state = ""
            table.add_row(
                op.name,
                t(f"ops.role.{op.role}"),
                login_text(op.last_login, t),
                op.created_at[:10],
                state,
                key=op.name,
            )
        if selected is not None and selected in [op.name for op in operators]:
            table.move_cursor(row=[op.name for op in operators].index(selected))
        self.query_one("#ops-hint", Static).update(t("ops.count", n=len(operators)))

    def selected(self) -> str | None:
        table = self.query_one("#ops-table", DataTable)
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    # -- actions ----------------------------------------------------------------------------
    def action_add(self) -> None:
        fieldkit_app(self).push_screen(OperatorDialog(), self._changed)

    def action_reset_pin(self) -> None:
        name = self.selected()
        if name:
            fieldkit_app(self).push_screen(OperatorDialog(reset=name), self._changed)

    def action_remove(self) -> None:
        name = self.selected()
        if not name:
            return
        t = fieldkit_app(self).t
        me = store_of(self).operator
        if me is not None and me.name == name:
            fieldkit_app(self).notify(t("ops.not_yourself"), severity="warning")
            return

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            store = store_of(self)
            run_in_thread(
                self,
                lambda: store.keyring.remove(operator_of(self), name),
                lambda _: self._changed(t("ops.removed", name=name)),
                lambda exc: fieldkit_app(self).notify(ops_error_text(exc, t), severity="error"),
            )

        fieldkit_app(self).push_screen(
            ConfirmDialog(t("ops.remove_title", name=name), [t("ops.remove_detail")]), answered
        )

    def _changed(self, message: str | None) -> None:
        if message:
            fieldkit_app(self).notify(message)
        self.reload()

    async def action_back(self) -> None:
        await fieldkit_app(self).open_screen("supervisor")

    def palette_commands(self) -> Iterable[SystemCommand]:
        t = fieldkit_app(self).t
        for action, key in (
            ("add", "keys.ops_add"),
            ("reset_pin", "keys.ops_reset"),
            ("remove", "keys.ops_remove"),
        ):
            yield SystemCommand(t(key), t("ops.palette_help"), lambda a=action: self.run_action(a))


class OperatorDialog(ModalScreen[str | None]):
    """Add an operator (name, role, PIN twice) or reset one's PIN (PIN twice)."""

    CSS_PATH = "supervisor.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "keys.cancel", id="opdlg.cancel"),
        Binding("f10", "submit", "keys.sup_confirm", id="opdlg.confirm", priority=True),
    ]

    def __init__(self, reset: str | None = None) -> None:
        super().__init__()
        self.reset = reset
        self.role = "gate"

    def compose(self) -> ComposeResult:
        t = fieldkit_app(self).t
        title = t("ops.reset_title", name=self.reset) if self.reset else t("ops.add_title")
        with Vertical(classes="dialog", id="operator-box"):
            yield Label(title, classes="dialog-title")
            if not self.reset:
                with Horizontal(classes="pin-row"):
                    yield Label(t("ops.col_name"), classes="field-label")
                    yield Input(id="op-name", compact=True, max_length=40)
                with Horizontal(classes="radio-row"):
                    yield Label(t("ops.col_role"), classes="field-label")
                    with RadioSet(id="op-role"):
                        for role in ROLES:
                            yield RadioButton(t(f"ops.role.{role}"), value=role == self.role)
            with Horizontal(classes="pin-row"):
                yield Label(t("ops.new_pin"), classes="field-label")
                yield Input(password=True, id="op-pin", compact=True, max_length=64)
                yield Label(t("ops.again"), classes="field-label")
                yield Input(password=True, id="op-pin2", compact=True, max_length=64)
            yield Static("", id="op-message", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        translate_bindings(self, fieldkit_app(self).t)
        self.query_one("#op-pin" if self.reset else "#op-name", Input).focus()

    @on(RadioSet.Changed, "#op-role")
    def _role(self, event: RadioSet.Changed) -> None:
        self.role = ROLES[event.index]

    def on_input_submitted(self, event: Input.Submitted) -> None:
        order = ["op-pin", "op-pin2"] if self.reset else ["op-name", "op-pin", "op-pin2"]
        if event.input.id == order[-1]:
            self.action_submit()
        elif event.input.id in order:
            self.query_one(f"#{order[order.index(event.input.id) + 1]}", Input).focus()

    def say(self, text: str) -> None:
        message = self.query_one("#op-message", Static)
        message.update(text)
        message.add_class("error")

    def action_submit(self) -> None:
        t = fieldkit_app(self).t
        pin = self.query_one("#op-pin", Input).value
        if pin != self.query_one("#op-pin2", Input).value:
            self.say(t("ops.pins_differ"))
            self.query_one("#op-pin2", Input).value = ""
            self.query_one("#op-pin2", Input).focus()
            return
        name = self.reset or self.query_one("#op-name", Input).value.strip()
        if not name:
            self.say(t("ops.name_needed"))
            return
        self.query_one("#op-message", Static).update(t("login.checking"))
        self.save(name, self.role, pin)

    @work(thread=True, exit_on_error=False, group="operator", exclusive=True)
    def save(self, name: str, role: str, pin: str) -> None:
        store = store_of(self)
        t = fieldkit_app(self).t
        try:
            if self.reset:
                store.keyring.reset_pin(operator_of(self), store.master, name, pin)
                done = t("ops.reset_done", name=name)
            else:
                store.keyring.add(operator_of(self), store.master, name, role, pin)
                done = t("ops.added", name=name, role=t(f"ops.role.{role}"))
        except FieldkitError as exc:
            fieldkit_app(self).call_from_thread(self.say, ops_error_text(exc, t))
            return
        fieldkit_app(self).call_from_thread(self.dismiss, done)

    def action_cancel(self) -> None:
        self.dismiss(None)


# Keyring error codes said in this screen's own words; any other is rendered from its code.
_OPS_KEYS = {"err.operator_exists": "ops.exists", "err.last_supervisor": "ops.last_supervisor"}


def ops_error_text(exc: FieldkitError, t: Any) -> str:
    code = getattr(exc, "code", None)
    if code is None:
        return str(exc)
    return t(_OPS_KEYS.get(code, code), **exc.params)
