"""Gate dialogs: a correction that lets in someone the gate stopped (the supervisor's PIN), and
the worker's own 劝返 / 禁止通行 with a reason."""

from __future__ import annotations

from typing import Any, ClassVar

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Label, Static

from .supervisor_common import PinDialog
from .typed import fieldkit_app
from .widgets import translate_bindings


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


# The worker's reasons, in the order of their digits; the last asks for the words.
WORKER_REASONS = ("no_mask", "no_reason", "refused_registration", "outsider", "other")
WORKER_OUTCOMES = ("turn_back", "deny")


class WorkerDecisionDialog(ModalScreen[tuple[str, str] | None]):
    """The worker's own 劝返 / 禁止通行 with a reason (REQUIREMENTS §2: every decision is logged
    with its reason, turn-backs and denials too). Tab switches 劝返 ⇄ 禁止通行; a digit picks the
    reason and closes the dialog; 5 (其他) asks for the words, Enter takes them. The result is
    (outcome, why): why is the reason's catalogue key, or the words typed; None when cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "keys.cancel", id="worker.cancel"),
        Binding("tab", "switch_outcome", "keys.toggle_outcome", id="worker.toggle", priority=True),
    ]

    AUTO_FOCUS = ""  # the digits choose; the field for other words is focused at 5
    DEFAULT_CSS = "#worker-other, #worker-other-label { display: none; }"

    def __init__(self) -> None:
        super().__init__()
        self.outcome = WORKER_OUTCOMES[0]

    def compose(self) -> ComposeResult:
        t = fieldkit_app(self).t
        with Vertical(classes="dialog", id="worker-box"):
            yield Label(t("fixturnback.title"), classes="dialog-title")
            yield Static("", id="worker-outcome", markup=False)
            yield Label(t("fixturnback.choose"))
            yield Static(
                "  ".join(
                    f"{n} {t('fixturnback.why.' + w)}" for n, w in enumerate(WORKER_REASONS, 1)
                ),
                id="worker-reasons",
                markup=False,
            )
            yield Label(t("fixturnback.other_prompt"), id="worker-other-label")
            yield Input(id="worker-other", compact=True, max_length=40)
            yield Static("", id="worker-message", classes="error", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        translate_bindings(self, fieldkit_app(self).t)
        self._show_outcome()

    def _show_outcome(self) -> None:
        t = fieldkit_app(self).t
        choices = "  ".join(
            f"[{t('outcome.' + o)}]" if o == self.outcome else f" {t('outcome.' + o)} "
            for o in WORKER_OUTCOMES
        )
        self.query_one("#worker-outcome", Static).update(
            t("fixturnback.outcome_line", choices=choices)
        )

    def action_switch_outcome(self) -> None:
        i = WORKER_OUTCOMES.index(self.outcome)
        self.outcome = WORKER_OUTCOMES[(i + 1) % len(WORKER_OUTCOMES)]
        self._show_outcome()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_key(self, event: events.Key) -> None:
        other = self.query_one("#worker-other", Input)
        if self.focused is other or not event.character or not event.character.isdigit():
            return
        event.stop()
        n = int(event.character)
        if not 1 <= n <= len(WORKER_REASONS):
            return
        reason = WORKER_REASONS[n - 1]
        if reason != "other":
            self.dismiss((self.outcome, f"fixturnback.why.{reason}"))
            return
        self.query_one("#worker-other-label").display = True
        other.display = True
        other.value = ""
        other.focus()

    @on(Input.Submitted, "#worker-other")
    def _other(self, event: Input.Submitted) -> None:
        event.stop()
        words = event.value.strip()
        if not words:
            self.query_one("#worker-message", Static).update(
                fieldkit_app(self).t("fixturnback.other_missing")
            )
            return
        self.dismiss((self.outcome, words))
