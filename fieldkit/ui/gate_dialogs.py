"""Gate dialogs that need a supervisor: a correction that lets in someone the gate stopped."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, Label, Static

from .supervisor_common import PinDialog
from .typed import fieldkit_app


class CorrectionOverrideDialog(PinDialog):
    """Ctrl+R turned a turn-back, denial or referral into an admit: the supervisor's PIN.

    The dialog's result is what :meth:`GateService.correct` returned (the correction is
    recorded with the supervisor and audited), or None when cancelled."""

    def __init__(self, service, passage_id: str, entry, was: str) -> None:
        super().__init__()
        self.service, self.passage_id, self.entry, self.was = service, passage_id, entry, was

    def compose(self) -> ComposeResult:
        t = fieldkit_app(self).t
        with Vertical(classes="dialog", id="override-box"):
            yield Label(t("gate.override_title"), classes="dialog-title")
            yield Static(
                t("gate.override_explain", was=t(f"outcome.{self.was}")),
                markup=False,
            )
            yield from self.pin_fields()
        yield from self.footer()

    def on_mount(self) -> None:
        super().on_mount()
        name = self.query_one("#pin-name", Input)
        self.query_one("#pin-pin" if name.value else "#pin-name", Input).focus()

    def perform(self, supervisor, values: dict[str, Any]):
        ev, row = self.service.correct(self.passage_id, self.entry, supervisor=supervisor)
        return ev, row
