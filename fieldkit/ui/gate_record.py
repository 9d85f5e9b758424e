"""Recording at the gate: the decision previewed, Enter records it, alerts held until F10.

:class:`GateRecording` is the part of the gate screen (:mod:`.gate`) that talks to the
:class:`~fieldkit.gate.GateService`: the preview as soon as a scan arrives, the commit (or a
correction, with a supervisor's PIN when it admits someone the gate stopped) in a worker, the
banner after it, alerts that hold the screen until they are acknowledged, and the list of
recent records with the day's counters.

The person a scan put into the form is "presented" (``--images``: the folder's next image waits
for them). They are dealt with when their record is saved or the form is cleared of them (Esc):
only then is :class:`~fieldkit.ui.messages.RecordCommitted` posted, which lets the image queue
read the next image. A correction is not the presented person's record: it posts nothing, and a
person who was waiting in the form when Ctrl+R was pressed is set aside (:class:`Waiting`) and
put back once the correction is saved or left.

When the next person arrives in the form (a scan, or the person set aside coming back) the
decision just recorded leaves the large banner but stays under the prompt as one labelled line
(上一位：放行 110105********1234 36.5 °C 绿码, and its reasons when it did not admit), until
the new person's own decision is previewed.

The worker's own 劝返 / 禁止通行 (Ctrl+N, :class:`~.gate_dialogs.WorkerDecisionDialog`) is
recorded here too, with the form, as one more reason the rules weigh (the strongest wins).

One piece (~430 lines): preview, commit, correction, the worker's decision and the alerts all
read and reset the same form state, in the order a person at the gate goes through them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import date
from typing import TYPE_CHECKING

from textual import on, work
from textual.visual import VisualType
from textual.widgets import DataTable, Input, Static

from ..errors import FieldkitError, InputError
from ..gate import Evaluation, GateEntry
from ..i18n import outcome_text, reason_text
from .gate_form import REFERRAL_CODES, Captured, GateForm
from .messages import RecordCommitted, ScanRead
from .typed import fieldkit_app, store_of
from .widgets.banner import decision_lines
from .widgets.dialogs import push_alert

FORM_FIELDS = ("#f-id", "#f-name", "#f-phone", "#f-temp", "#f-test-date", "#f-reason", "#f-escort")


@dataclass
class Waiting:
    """The person in the form when a correction was opened: all they had, to put back."""

    captured: Captured
    values: dict[str, str]
    direction: str
    colour: str | None
    test_result: str | None
    category: str
    skipping: bool
    check_digit_confirmed: bool
    scan_line: VisualType


class GateRecording(GateForm):
    """Preview, commit, correction and alerts of the gate screen."""

    def __init__(self) -> None:
        super().__init__()
        self.set_aside: Waiting | None = None  # the person waiting while a correction is open
        self.last_lines: list[str] = []  # the decision just recorded, under the next person

    if TYPE_CHECKING:  # the gate screen's own (:mod:`.gate`)

        def handle_scan(self, message: ScanRead) -> None: ...

    def commit(self, worker: tuple[str, str] | None = None) -> None:
        """Record the person in the form; ``worker`` is the worker's own (outcome, why)."""
        if self.busy or self.holding:
            return
        try:
            entry = self.build_entry() if worker is None else self.worker_entry(*worker)
        except InputError as exc:
            self.show_error(exc)
            return
        self.busy = True
        self._scan_t0 = None
        self.save(entry, self.correcting, time.perf_counter())

    # -- the worker's own 劝返 / 禁止通行 ------------------------------------------------------
    def ask_worker_decision(self) -> None:
        """The worker turns the person in the form back, or denies them, with a reason: the
        dialog's choice is recorded with the form as a reason among the rules' reasons (the
        strongest wins, so it can only make the decision stricter)."""
        if self.busy or self.holding:
            return
        from .gate_dialogs import WorkerDecisionDialog

        def done(result: tuple[str, str] | None) -> None:
            self.query_one("#f-temp", Input).focus()
            if result is not None:
                self.commit(worker=result)

        fieldkit_app(self).push_screen(WorkerDecisionDialog(), done)

    def worker_entry(self, outcome: str, why: str) -> GateEntry:
        """The form with the worker's decision. A person turned away before a reading was
        taken needs none (the service says why)."""
        entry = self.build_entry(reading_required=False)
        return replace(entry, worker_outcome=outcome, worker_reason=why)

    @work(thread=True, exit_on_error=False, group="gate-commit")
    def save(self, entry: GateEntry, correcting: str | None, t0: float) -> None:
        try:
            # the store files a record under the open shift, or none: say so when none
            self.no_shift = store_of(self).shifts.current_id() is None
            if correcting:
                ev, row = self.service.correct(correcting, entry)
            else:
                ev, row = self.service.commit(entry)
            matched = None
            if row.entry_id:
                entry_row = store_of(self).passages.get(row.entry_id)
                matched = entry_row.ts if entry_row else None
        except FieldkitError as exc:
            if correcting and getattr(exc, "code", None) == "gate.err.correction_needs_supervisor":
                fieldkit_app(self).call_from_thread(self._ask_supervisor, entry, correcting, t0)
                return
            fieldkit_app(self).call_from_thread(self._save_failed, exc)
            return
        except Exception:
            fieldkit_app(self).call_from_thread(self._save_failed, None)
            raise
        committed = time.perf_counter()
        fieldkit_app(self).call_from_thread(
            self._saved, entry, ev, row, matched, correcting, t0, committed
        )

    def _ask_supervisor(self, entry: GateEntry, correcting: str, t0: float) -> None:
        """A correction to admit someone the gate stopped: the supervisor's PIN first."""
        from .gate_dialogs import CorrectionOverrideDialog

        was = self.last[0].decision if self.last else "deny"

        def done(result) -> None:
            if result is None:  # cancelled: the form stays as it was, nothing recorded
                self.busy = False
                self.banner("none", fieldkit_app(self).t("gate.override_cancelled"), [])
                return
            ev, row = result
            self._saved(entry, ev, row, None, correcting, t0, time.perf_counter())

        fieldkit_app(self).push_screen(
            CorrectionOverrideDialog(self.service, correcting, entry, was), done
        )

    def _save_failed(self, exc: Exception | None) -> None:
        self.busy = False
        if exc is not None:
            self.show_error(exc)

    def _saved(
        self,
        entry: GateEntry,
        ev: Evaluation,
        row,
        matched: str | None,
        correcting: str | None,
        t0: float,
        committed: float,
    ) -> None:
        t, lang = fieldkit_app(self).t, fieldkit_app(self).lang
        decision = ev.decision
        lines = decision_lines(decision, t, lang)
        who = " ".join(x for x in (row.name_masked, row.id_masked) if x)
        if who:
            lines.insert(0, who)
        if entry.direction == "out" and entry.id_number:
            lines.append(
                t("gate.exit_matched", time=matched[11:16]) if matched else t("gate.exit_unmatched")
            )
        if correcting:
            lines.append(t("gate.corrected"))
        if self.no_shift:
            lines.append(t("gate.no_shift_mark"))
            if not fieldkit_app(self).warned_no_shift:  # once per session: the banner line stays
                fieldkit_app(self).warned_no_shift = True
                fieldkit_app(self).notify(
                    t("gate.no_shift_warning"), severity="warning", timeout=10
                )
        self.banner(decision.outcome.value, outcome_text(decision.outcome.value, lang), lines)
        shown = time.perf_counter()
        self.timings.append({"committed": committed - t0, "shown": shown - t0})
        self.last = (row, entry)
        self.last_lines = self._last_person_lines(entry, decision, row, correcting)
        self.reset_form()
        self.showing_last = True  # until the next person's scan or first key
        self.busy = False
        if not correcting:  # the presented person is recorded: the next may come
            self.post_message(RecordCommitted(row.id))
        fieldkit_app(self).refresh_status()
        self.refresh_lists()
        if correcting:
            self.bring_back()
        if decision.alerts:
            self.hold(row.id, decision)
        elif self.queued_scan is not None:
            queued, self.queued_scan = self.queued_scan, None
            self.handle_scan(queued)

    def _last_person_lines(self, entry: GateEntry, decision, row, correcting) -> list[str]:
        """The decision just recorded in one line (and its reasons when it did not admit),
        shown under the prompt once the next person is in the form."""
        t, lang = fieldkit_app(self).t, fieldkit_app(self).lang
        outcome = decision.outcome.value
        if entry.temperature is not None:
            reading = f"{entry.temperature:.1f} °C"
        else:
            reading = t("fixscanflow.not_measured")
        line = t(
            "fixscanflow.last_person",
            outcome=outcome_text(outcome, lang),
            who=" ".join(x for x in (row.name_masked, row.id_masked) if x) or "-",
            temperature=reading,
            colour=t(f"colour.{entry.code_colour}") if entry.code_colour else t("gate.none"),
        )
        lines = [line]
        if outcome != "admit":
            lines += ["  " + x for x in decision_lines(decision, t, lang)]
        if correcting:
            lines.append("  " + t("gate.corrected"))
        return lines

    def next_person_shown(self) -> None:
        """The next person is in the form: the last decision leaves the large banner and stays
        as a labelled line under the prompt, until this person's own decision is previewed."""
        if self.showing_last:
            self.showing_last = False
            self.banner("none", fieldkit_app(self).t("gate.ready"), self.last_lines)

    # -- the person waiting while the last record is corrected ---------------------------------
    def form_holds_someone(self) -> bool:
        """Anything of a person in the form (a scan, a typed field, a key pressed for them)."""
        cap = self.captured
        return bool(
            cap.id_number
            or cap.raw_scan
            or cap.pass_id
            or cap.name
            or any(self._value(w) for w in FORM_FIELDS)
            or self.colour
            or self.test_result
            or self.category != "resident"
            or self.skipping
        )

    def set_aside_waiting(self) -> None:
        """Ctrl+R with the next person in the form: keep all they had, to put back."""
        if self.correcting or not self.form_holds_someone():
            return
        self.set_aside = Waiting(
            captured=replace(self.captured),
            values={w: self.query_one(w, Input).value for w in FORM_FIELDS},
            direction=self.direction,
            colour=self.colour,
            test_result=self.test_result,
            category=self.category,
            skipping=self.skipping,
            check_digit_confirmed=self.check_digit_confirmed,
            scan_line=self.query_one("#scan-line", Static).content,
        )

    def bring_back(self) -> bool:
        """The person set aside at Ctrl+R back in the form, as they were (True if one was)."""
        waiting, self.set_aside = self.set_aside, None
        if waiting is None:
            return False
        self.reset_form()
        if waiting.skipping != self.skipping:
            self.action_not_measured()
        for widget_id, text in waiting.values.items():
            self.query_one(widget_id, Input).value = text
        self.captured = waiting.captured
        self.direction = waiting.direction
        self.colour = waiting.colour
        self.test_result = waiting.test_result
        self.category = waiting.category
        self.check_digit_confirmed = waiting.check_digit_confirmed
        self.query_one("#scan-line", Static).update(waiting.scan_line)
        temp = self.query_one("#f-temp", Input)
        temp.focus()
        temp.cursor_position = len(temp.value)
        self.next_person_shown()  # the correction's result stays, labelled, above them
        return True

    def presented_cleared(self, cap: Captured) -> None:
        """The form was cleared of a person read by the camera (``--images``: the folder's
        next image waits for them): they are dealt with, the next may come."""
        if cap.source == "scan":
            self.post_message(RecordCommitted("", "cleared"))

    def _next_person_started(self) -> None:
        """The last person's decision leaves the banner once the next person's typing starts:
        it is never read as the new person's (a scan: :meth:`next_person_shown`)."""
        if self.showing_last:
            self.showing_last = False
            self.banner("none", fieldkit_app(self).t("gate.ready"), [])

    @on(Input.Changed)
    def _typing(self, event: Input.Changed) -> None:
        if event.value and event.input.value == event.value:  # not one from before a reset
            self._next_person_started()

    # -- alerts -----------------------------------------------------------------------------
    def hold(self, record_id: str, decision) -> None:
        t, lang = fieldkit_app(self).t, fieldkit_app(self).lang
        alerts = decision.alerts
        codes = [r.code for r in alerts]
        referral = any(c in REFERRAL_CODES for c in codes)
        steps: list[str] = []
        if "fever" in codes or "test_positive" in codes:
            call = fieldkit_app(self).settings.rules.emergency_number
            steps = [
                t("alert.step_isolate"),
                t("alert.step_call", call=call),
                t("alert.step_hold"),
                t("alert.step_report"),
            ]
        elif "keyperson_hit" in codes:
            steps = [t("alert.step_hold"), t("alert.step_report")]
        title = t("alert.title_referral") if referral else t("alert.title")
        self.holding = True

        def acknowledged(ok: bool | None) -> None:
            # F10 releases the gate at once: an Enter for the next person is not dropped
            # while the acknowledgement is written. The write follows in a worker (it
            # updates the referred person's own row) and a failure is reported as any is.
            self._released()
            self.acknowledge(record_id, codes)

        push_alert(
            fieldkit_app(self),
            "gate-alert",
            title,
            [reason_text(r.code, r.params, lang) for r in alerts],
            steps,
            "referral" if referral else "warning",
            acknowledged,
        )

    @work(thread=True, exit_on_error=False, group="gate-ack")
    def acknowledge(self, record_id: str, codes: list[str]) -> None:
        store_of(self).passages.acknowledge(record_id, codes)

    def _released(self) -> None:
        self.holding = False
        self.banner_note(fieldkit_app(self).t("alert.acknowledged"))
        self.query_one("#f-temp", Input).focus()
        if self.queued_scan is not None:
            queued, self.queued_scan = self.queued_scan, None
            self.handle_scan(queued)

    # -- preview: the decision as soon as a scan arrives -----------------------------------
    def preview(self) -> None:
        if self.busy or self.holding or not self._value("#f-temp") and not self.skipping:
            return
        try:
            entry = self.build_entry()
        except InputError:
            return
        self.evaluate_preview(entry)

    @work(thread=True, exit_on_error=False, group="gate-preview", exclusive=True)
    def evaluate_preview(self, entry: GateEntry) -> None:
        try:
            ev = self.service.evaluate(entry)
        except FieldkitError:
            return
        fieldkit_app(self).call_from_thread(self._previewed, ev)

    def _previewed(self, ev: Evaluation) -> None:
        if self.busy or self.holding:
            return
        t, lang = fieldkit_app(self).t, fieldkit_app(self).lang
        outcome = ev.decision.outcome.value
        self.banner(
            outcome,
            t("gate.preview", outcome=outcome_text(outcome, lang)),
            [*decision_lines(ev.decision, t, lang), t("gate.enter_to_commit")],
        )
        if self._scan_t0 is not None:
            self.timings.append({"preview": time.perf_counter() - self._scan_t0})
            self._scan_t0 = None

    # -- lists --------------------------------------------------------------------------------
    @work(thread=True, exit_on_error=False, group="gate-lists", exclusive=True)
    def refresh_lists(self) -> None:
        store = store_of(self)
        if not store.is_unlocked:
            return
        rows = store.passages.recent(8)
        counters = store.passages.counters(date.today().isoformat())
        fieldkit_app(self).call_from_thread(self._show_lists, rows, counters)

    def _show_lists(self, rows, counters: dict[str, int]) -> None:
        t, lang = fieldkit_app(self).t, fieldkit_app(self).lang
        self.query_one("#counters", Static).update(t("gate.counters", **counters))
        table = self.query_one("#recent", DataTable)
        table.clear()
        for r in rows:
            table.add_row(
                r.ts[11:16],
                t(f"direction.{r.direction}"),
                r.name_masked or "-",
                r.id_masked or "-",
                f"{r.temperature:.1f}" if r.temperature is not None else "-",
                t(f"colour.{r.code_colour}") if r.code_colour else "-",
                outcome_text(r.decision, lang),
                key=r.id,
            )
