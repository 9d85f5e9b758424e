"""The gate duty screen (卡口登记): scan, temperature, Enter.

The common path is a scan (camera or keyboard-wedge scanner, whatever has focus), the
temperature digits (``365`` → 36.5) and Enter: one key beyond the digits. Code colour, direction,
test result and category are single function keys. The decision shows in a large banner with
every reason; alerts hold the screen until F10 acknowledges them (stored with the record). After
a commit the form is empty again, focus on the temperature, ready for the next person.

Personal data is shown masked everywhere (张*, 110105********1234); the full values live only
in this screen's memory until committed (encrypted by the store).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from textual import events, on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Label, Static

from scanners.idnumber import mask_id, mask_name, parse_identity
from scanners.words import result_problem

from ..errors import FieldkitError, InputError
from ..gate import (
    Evaluation,
    GateEntry,
    GateService,
    is_id_shaped,
    looks_like_id,
    parse_day,
    parse_temperature,
    scrub_ids,
)
from ..i18n import outcome_text, reason_text, word
from .messages import RecordCommitted, ScanRead
from .registry import ScreenEntry
from .widgets import StatusBar, translate_bindings
from .widgets.dialogs import AlertScreen

COLOURS = (None, "green", "yellow", "red")
TEST_RESULTS = (None, "negative", "positive", "pending")
CATEGORIES = ("resident", "outsider", "worker", "delivery", "repair", "visitor")
REFERRAL_CODES = ("fever", "test_positive", "keyperson_hit")
DCC_NEGATIVE, DCC_POSITIVE = "260415000", "260373001"


# -- pure helpers (tested without a screen) --------------------------------------------------


def parse_test_date(text: str, today: date | None = None) -> date | None:
    """'' → none; '0'..'99' → that many days ago; 'MMDD' → this year; else YYYY-MM-DD/YYYYMMDD."""
    text = text.strip()
    today = today or date.today()
    if not text:
        return None
    if text.isdigit() and len(text) <= 2:
        return today - timedelta(days=int(text))
    if text.isdigit() and len(text) == 4:
        try:
            day = date(today.year, int(text[:2]), int(text[2:]))
        except ValueError:
            raise InputError("err.date", what=word("test date"), value=text) from None
        return day if day <= today else date(today.year - 1, day.month, day.day)
    return parse_day(text, "test date")


# Core error codes the gate screen says in its own words (with its keys: Ctrl+Y, Ctrl+T …);
# every other coded error is rendered from the catalogue as it is.
_UI_KEYS = {
    "err.temp_missing": "gate.err.temp_missing",
    "err.temp_is_id": "gate.err.temp_is_id",
    "err.temp_nan": "gate.err.temp_nan",
    "err.temp_range": "gate.err.temp_range",
    "err.id_check_digit": "gate.err.check_digit",
    "err.id_invalid": "gate.err.id_invalid",
    "err.test_future": "gate.err.test_future",
    "err.date": "gate.err.date",
    "err.plate_missing": "vehicle.err.plate",
}
# Which field an error is about (focus goes there).
_ERROR_FIELDS = {
    "err.temp_missing": "#f-temp",
    "err.temp_missing_reason": "#f-temp",
    "err.temp_is_id": "#f-temp",
    "err.temp_nan": "#f-temp",
    "err.temp_range": "#f-temp",
    "err.id_check_digit": "#f-id",
    "err.id_invalid": "#f-id",
    "err.test_future": "#f-test-date",
    "err.date": "#f-test-date",
}


def translate_id_problem(ident, t) -> str:
    """What ``parse_identity`` found wrong with a number, in the UI language."""
    from ..i18n import id_problem

    msg = id_problem(ident)
    return t(msg.key, **msg.params)


def translate_error(exc: BaseException, t) -> str:
    """The core's one-line errors in the UI language, from their codes."""
    code = getattr(exc, "code", None)
    if code is None:
        return str(exc)
    return t(_UI_KEYS.get(code, code), **getattr(exc, "params", {}))


def masked_identity(number: str | None) -> str:
    return mask_id(number) if number else ""


@dataclass
class Captured:
    """What a scan put into the form; the full values never reach a widget."""

    id_number: str | None = None
    id_kind: str | None = None
    name: str | None = None
    raw_scan: str | None = None
    pass_id: str | None = None
    pass_problem: str | None = None
    source: str = "manual"
    shown_id: str = ""  # what the ID field shows (masked)
    shown_name: str = ""


def decision_lines(decision, t, lang: str) -> list[str]:
    return [
        ("! " if r.alert else "· ") + reason_text(r.code, r.params, lang) for r in decision.reasons
    ]


class FormInput(Input):
    """A field of the gate form that passes an ID typed into it on to the ID field.

    An ID typed by hand goes to the ID field wherever focus is: once the field's text can only
    be the start of an ID (``id_digits`` digits, or digits and an X), the text moves to the ID
    field and the focus follows. Keys that arrive before the focus has moved go after it, so
    nothing is lost and none of it is ever read as a temperature, a date or a phone number."""

    def __init__(self, *args, id_digits: int = 5, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.id_digits = id_digits
        self.redirecting = False

    async def _on_key(self, event: events.Key) -> None:
        if event.is_printable and event.character and self._route(event.character):
            event.stop()
            event.prevent_default()
            return
        await super()._on_key(event)

    def _route(self, ch: str) -> bool:
        screen = self.screen
        if not isinstance(screen, GateScreen):
            return False
        if self.redirecting:
            screen.type_into_id(ch)
            return True
        sel = self.selection
        start, end = (self.cursor_position,) * 2 if sel.is_empty else sorted(sel)
        candidate = self.value[:start] + ch + self.value[end:]
        if not looks_like_id(candidate, self.id_digits):
            return False
        self.redirecting = True
        self.value = ""
        screen.type_into_id(candidate)
        return True

    def on_blur(self) -> None:
        self.redirecting = False


class IdInput(Input):
    """The ID field: a key typed over a masked (scanned or confirmed) number starts afresh."""

    async def _on_key(self, event: events.Key) -> None:
        if event.is_printable and event.character and "*" in self.value:
            self.value = ""
        await super()._on_key(event)


class DecisionBanner(Static):
    """The large decision: outcome word and every reason; colour by outcome."""

    outcome: reactive[str] = reactive("none")

    def watch_outcome(self, old: str, new: str) -> None:
        self.remove_class(f"-{old}")
        self.add_class(f"-{new}")

    def show(self, outcome: str, title: str, lines: list[str]) -> None:
        self.outcome = outcome
        self.title_text, self.lines = title, list(lines)
        spaced = " ".join(title) if len(title) <= 4 else title
        shown = [escape(scrub_ids(x)) for x in lines]
        self.update("\n".join([f"[b]{escape(scrub_ids(spaced))}[/b]", *shown]))

    def note(self, text: str) -> None:
        self.show(
            self.outcome, getattr(self, "title_text", ""), [*getattr(self, "lines", []), text]
        )


class GateScreen(Screen):
    """One person at a time: scan or type, temperature, Enter."""

    BINDINGS = [
        Binding("f4", "toggle_direction", "keys.direction", id="gate.direction"),
        Binding("f5", "colour('green')", "keys.green", id="gate.green"),
        Binding("f6", "colour('yellow')", "keys.yellow", id="gate.yellow"),
        Binding("f7", "colour('red')", "keys.red", id="gate.red"),
        Binding("f8", "cycle_test", "keys.test", id="gate.test"),
        Binding("f9", "cycle_category", "keys.category", id="gate.category"),
        Binding("escape", "clear", "keys.clear", id="gate.clear"),
        Binding("ctrl+r", "correct_last", "keys.correct", id="gate.correct", show=False),
        Binding("ctrl+t", "not_measured", "keys.not_measured", id="gate.not_measured", show=False),
        Binding(
            "ctrl+y",
            "confirm_check_digit",
            "keys.confirm_digit",
            id="gate.confirm_digit",
            show=False,
        ),
    ]

    direction: reactive[str] = reactive("in")
    colour: reactive[str | None] = reactive(None)
    test_result: reactive[str | None] = reactive(None)
    category: reactive[str] = reactive("resident")
    skipping: reactive[bool] = reactive(False)

    def __init__(self) -> None:
        super().__init__()
        self.captured = Captured()
        self.correcting: str | None = None  # passage id being corrected
        self.last: tuple[Any, GateEntry] | None = None  # (row, entry) of the last commit
        self.holding = False  # an alert waits for acknowledgement
        self.queued_scan: ScanRead | None = None
        self.busy = False
        self.check_digit_confirmed = False
        self.showing_last = False  # the banner shows the person just recorded
        self.no_shift = False  # the last record was filed under no shift
        self.service = GateService(self.app.store)
        # benchmark: scan → decision shown ("preview"); Enter → committed / banner ("shown")
        self.timings: list[dict[str, float]] = []
        self._scan_t0: float | None = None

    # -- layout -----------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        t = self.app.t
        yield StatusBar()
        with Vertical(id="gate-form"):
            yield Static(t("gate.scan_idle"), id="scan-line", markup=False)
            with Horizontal(classes="form-row"):
                yield Label(t("gate.id"), classes="field-label")
                yield IdInput(
                    id="f-id",
                    compact=True,
                    max_length=40,
                    placeholder=t("gate.id_hint"),
                    select_on_focus=False,  # keys handed over go after, not over, the text
                )
                yield Label(t("gate.name"), classes="field-label")
                yield FormInput(id="f-name", compact=True, max_length=40)
                yield Label(t("gate.phone"), classes="field-label")
                yield FormInput(
                    id="f-phone",
                    compact=True,
                    max_length=20,
                    restrict=r"[0-9+\- xX]*",
                    id_digits=12,
                )
            with Horizontal(classes="form-row"):
                yield Label(t("gate.temperature"), classes="field-label", id="temp-label")
                yield FormInput(id="f-temp", compact=True, max_length=40, placeholder="365")
                yield Label(t("gate.code"), classes="field-label")
                yield Static("", id="v-colour", classes="toggle")
                yield Label(t("gate.direction"), classes="field-label")
                yield Static("", id="v-direction", classes="toggle")
                yield Label(t("gate.category"), classes="field-label")
                yield Static("", id="v-category", classes="toggle")
            with Horizontal(classes="form-row"):
                yield Label(t("gate.test_date"), classes="field-label")
                yield FormInput(
                    id="f-test-date",
                    compact=True,
                    max_length=10,
                    placeholder=t("gate.test_date_hint"),
                    id_digits=9,
                )
                yield Label(t("gate.test_result"), classes="field-label")
                yield Static("", id="v-test", classes="toggle")
                yield Label(t("gate.reason"), classes="field-label")
                yield FormInput(id="f-reason", compact=True, max_length=60)
                yield Label(t("gate.escort"), classes="field-label")
                yield FormInput(id="f-escort", compact=True, max_length=40)
        yield DecisionBanner(t("gate.ready"), id="banner")
        yield Static("", id="counters")
        yield DataTable(id="recent", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        translate_bindings(self, self.app.t)
        t = self.app.t
        table = self.query_one("#recent", DataTable)
        table.add_columns(
            t("gate.col_time"),
            t("gate.col_dir"),
            t("gate.col_name"),
            t("gate.col_id"),
            t("gate.col_temp"),
            t("gate.col_code"),
            t("gate.col_outcome"),
        )
        table.can_focus = False
        self._show_toggles()
        self.query_one("#f-temp", Input).focus()
        self.refresh_lists()
        self._take_held_scan()

    def on_screen_resume(self) -> None:
        self.service = GateService(self.app.store)
        self.refresh_lists()
        self._take_held_scan()

    def _take_held_scan(self) -> None:
        """A code read while another screen was open is used here, once."""
        take = getattr(self.app, "take_held_scan", None)
        held = take() if take else None
        if held is not None:
            self.handle_scan(held)

    # -- reactive toggles -------------------------------------------------------------------
    def _show_toggles(self) -> None:
        t = self.app.t
        colour = self.query_one("#v-colour", Static)
        colour.update(t(f"colour.{self.colour}") if self.colour else t("gate.none"))
        for c in ("green", "yellow", "red"):
            colour.set_class(self.colour == c, f"-{c}")
        self.query_one("#v-direction", Static).update(t(f"direction.{self.direction}"))
        self.query_one("#v-direction", Static).set_class(self.direction == "out", "-out")
        self.query_one("#v-category", Static).update(t(f"category.{self.category}"))
        self.query_one("#v-test", Static).update(
            t(f"test.{self.test_result}") if self.test_result else t("gate.none")
        )
        self.query_one("#temp-label", Label).update(
            t("gate.not_measured_reason") if self.skipping else t("gate.temperature")
        )

    def watch_direction(self) -> None:
        if self.is_mounted:
            self._show_toggles()

    watch_colour = watch_test_result = watch_category = watch_skipping = watch_direction

    def action_toggle_direction(self) -> None:
        self.direction = "out" if self.direction == "in" else "in"
        self.preview()

    def action_colour(self, colour: str) -> None:
        self.colour = None if self.colour == colour else colour
        self.preview()

    def action_cycle_test(self) -> None:
        self.test_result = TEST_RESULTS[
            (TEST_RESULTS.index(self.test_result) + 1) % len(TEST_RESULTS)
        ]
        self.preview()

    def action_cycle_category(self) -> None:
        self.category = CATEGORIES[(CATEGORIES.index(self.category) + 1) % len(CATEGORIES)]
        self.preview()

    def action_not_measured(self) -> None:
        self.skipping = not self.skipping
        temp = self.query_one("#f-temp", Input)
        temp.value = ""
        temp.placeholder = self.app.t("gate.not_measured_hint") if self.skipping else "365"
        temp.focus()

    def action_confirm_check_digit(self) -> None:
        self.check_digit_confirmed = True
        self.banner("none", self.app.t("gate.check_digit_confirmed"), [])

    # -- scans ------------------------------------------------------------------------------
    def handle_scan(self, message: ScanRead) -> None:
        """A code from the camera or a wedge scanner: fill the identity, ready for the reading."""
        if self.holding or self.busy:
            self.queued_scan = message
            if self.holding:
                self.app.notify(self.app.t("gate.ack_first"), severity="warning")
            return
        self._next_person_started()
        t = self.app.t
        result = message.result
        parsed = result.parsed or {}
        cap = Captured(
            raw_scan=message.text or None, source="wedge" if message.source == "wedge" else "scan"
        )
        what = t(f"scan.kind.{result.kind}")
        detail = ""
        if result.kind == "resident_id":
            cap.id_number, cap.id_kind = parsed.get("number"), "resident_id"
            detail = mask_id(cap.id_number or "")
            self.check_digit_confirmed = False
        elif result.kind == "pass":
            cap.pass_id = parsed.get("pass_id")
            cap.pass_problem = None if result.ok else (result.problem_code or "why.pass.invalid")
            holder = mask_name(parsed.get("holder") or "")
            detail = f"{holder} {cap.pass_id or ''}".strip()
        elif result.kind == "health_code":
            detail = masked_identity(parsed.get("resident_id")) or parsed.get("system") or ""
        elif result.kind == "dcc":
            self._fill_from_dcc(result, cap)
            detail = t("scan.valid") if result.ok else t("scan.invalid")
        cap.shown_id = mask_id(cap.id_number) if cap.id_number else ""
        cap.shown_name = mask_name(cap.name) if cap.name else ""
        self.captured = cap
        self.correcting = None
        self.query_one("#f-id", Input).value = cap.shown_id
        self.query_one("#f-name", Input).value = cap.shown_name
        shown = result_problem(result, self.app.lang)  # coded problems in the screen language
        problem = "" if result.ok else f" — {shown}"
        source = t("scan.source_wedge") if message.source == "wedge" else t("scan.source_camera")
        self.query_one("#scan-line", Static).update(
            scrub_ids(t("gate.scan_read", what=what, detail=detail, source=source) + problem)
        )
        self._scan_t0 = message.t0 or time.perf_counter()
        self.query_one("#f-temp", Input).focus()
        self.preview()

    def _fill_from_dcc(self, result, cap: Captured) -> None:
        cert = (result.parsed or {}).get("certificate") or {}
        names = cert.get("nam") or {}
        full = " ".join(p for p in (names.get("gn"), names.get("fn")) if p)
        cap.name = full or None
        tests = cert.get("t") or []
        if tests:
            test = tests[0]
            sc = str(test.get("sc", ""))[:10]
            try:
                self.query_one("#f-test-date", Input).value = date.fromisoformat(sc).isoformat()
            except ValueError:
                pass
            self.test_result = {
                DCC_NEGATIVE: "negative",
                "260415006": "negative",
                DCC_POSITIVE: "positive",
            }.get(str(test.get("tr")))

    def type_into_id(self, text: str) -> None:
        """Hand-typed ID characters that reached another field: into the ID field, focus there.

        Over a scanned (masked) number they start a new one."""
        field = self.query_one("#f-id", Input)
        if "*" in field.value or field.value == self.captured.shown_id and field.value:
            field.value = ""
        field.value += text
        field.cursor_position = len(field.value)
        if self.focused is not field:
            field.focus()

    # -- reading the form -------------------------------------------------------------------
    def _value(self, widget_id: str) -> str:
        return self.query_one(widget_id, Input).value.strip()

    def build_entry(self) -> GateEntry:
        """The form as a GateEntry; InputError (translated by the caller) when it cannot be."""
        cap = self.captured
        id_text = self._value("#f-id")
        id_number, id_kind, source = cap.id_number, cap.id_kind, cap.source
        if id_text != cap.shown_id:  # typed or edited by hand
            id_number, id_kind, source = (id_text or None), None, "manual"
        name_text = self._value("#f-name")
        name = cap.name if name_text == cap.shown_name and cap.name else (name_text or None)
        temp_text = self._value("#f-temp")
        temperature = skipped = None
        if self.skipping:
            if not temp_text:
                raise InputError(
                    "temperature missing: type it, or mark it not measured with a reason"
                )
            skipped = temp_text
        else:
            temperature = parse_temperature(temp_text)
        reason = self._value("#f-reason") or None
        return GateEntry(
            direction=self.direction,
            id_number=id_number,
            id_kind=id_kind,
            name=name,
            phone=self._value("#f-phone") or None,
            raw_scan=cap.raw_scan,
            temperature=temperature,
            temperature_skipped=skipped,
            code_colour=self.colour,
            test_date=parse_test_date(self._value("#f-test-date")),
            test_result=self.test_result,
            category=self.category,
            trip_reason=reason,
            approval_ref=reason if self.category == "repair" else None,
            escort=self._value("#f-escort") or None,
            pass_id=cap.pass_id,
            pass_problem=cap.pass_problem,
            source=source,
            check_digit_confirmed=self.check_digit_confirmed,
        )

    # -- Enter --------------------------------------------------------------------------------
    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        field = event.input.id
        temp = self.query_one("#f-temp", Input)
        if field == "f-id":
            if self._check_id():
                self._take_typed_id()
                temp.focus()
            return
        if field in ("f-name", "f-phone") and not temp.value.strip():
            (self.query_one("#f-phone", Input) if field == "f-name" else temp).focus()
            return
        self.commit()

    def _take_typed_id(self) -> None:
        """A typed ID, once checked, is held like a scanned one: the field shows it masked."""
        text = self._value("#f-id")
        if not text or text == self.captured.shown_id or not is_id_shaped(text):
            return
        number = text.upper()
        shown = mask_id(number)
        self.captured = replace(
            self.captured, id_number=number, id_kind=None, source="manual", shown_id=shown
        )
        self.query_one("#f-id", Input).value = shown

    def _check_id(self) -> bool:
        """A hand-typed ID is checked at once (check digit), so a typo is caught here."""
        text = self._value("#f-id")
        if not text or text == self.captured.shown_id:
            return True
        ident = parse_identity(text)
        if ident.problem and not self.check_digit_confirmed:
            confirmable = ident.kind == "resident_id" and not ident.check_ok and ident.birth_date
            key = "gate.err.check_digit_confirm" if confirmable else "gate.err.id_invalid"
            problem = translate_id_problem(ident, self.app.t)
            self.banner(
                "error",
                self.app.t("gate.check_id"),
                [self.app.t(key, id=mask_id(ident.number), problem=problem)],
            )
            return False
        return True

    def commit(self) -> None:
        if self.busy or self.holding:
            return
        try:
            entry = self.build_entry()
        except InputError as exc:
            self.show_error(exc)
            return
        self.busy = True
        self._scan_t0 = None
        self.save(entry, self.correcting, time.perf_counter())

    @work(thread=True, exit_on_error=False, group="gate-commit")
    def save(self, entry: GateEntry, correcting: str | None, t0: float) -> None:
        try:
            # the store files a record under the open shift, or none: say so when none
            self.no_shift = self.app.store.shifts.current_id() is None
            if correcting:
                ev, row = self.service.correct(correcting, entry)
            else:
                ev, row = self.service.commit(entry)
            matched = None
            if row.entry_id:
                entry_row = self.app.store.passages.get(row.entry_id)
                matched = entry_row.ts if entry_row else None
        except FieldkitError as exc:
            if correcting and getattr(exc, "code", None) == "gate.err.correction_needs_supervisor":
                self.app.call_from_thread(self._ask_supervisor, entry, correcting, t0)
                return
            self.app.call_from_thread(self._save_failed, exc)
            return
        except Exception:
            self.app.call_from_thread(self._save_failed, None)
            raise
        committed = time.perf_counter()
        self.app.call_from_thread(self._saved, entry, ev, row, matched, correcting, t0, committed)

    def _ask_supervisor(self, entry: GateEntry, correcting: str, t0: float) -> None:
        """A correction to admit someone the gate stopped: the supervisor's PIN first."""
        from .gate_dialogs import CorrectionOverrideDialog

        was = self.last[0].decision if self.last else "deny"

        def done(result) -> None:
            if result is None:  # cancelled: the form stays as it was, nothing recorded
                self.busy = False
                self.banner("none", self.app.t("gate.override_cancelled"), [])
                return
            ev, row = result
            self._saved(entry, ev, row, None, correcting, t0, time.perf_counter())

        self.app.push_screen(CorrectionOverrideDialog(self.service, correcting, entry, was), done)

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
        t, lang = self.app.t, self.app.lang
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
            if not self.app.warned_no_shift:  # once per session: the banner line stays
                self.app.warned_no_shift = True
                self.app.notify(t("gate.no_shift_warning"), severity="warning", timeout=10)
        self.banner(decision.outcome.value, outcome_text(decision.outcome.value, lang), lines)
        shown = time.perf_counter()
        self.timings.append({"committed": committed - t0, "shown": shown - t0})
        self.last = (row, entry)
        self.reset_form()
        self.showing_last = True  # until the next person's scan or first key
        self.busy = False
        self.post_message(RecordCommitted(row.id))
        self.app.refresh_status()
        self.refresh_lists()
        if decision.alerts:
            self.hold(row.id, decision)
        elif self.queued_scan is not None:
            queued, self.queued_scan = self.queued_scan, None
            self.handle_scan(queued)

    def _next_person_started(self) -> None:
        """The last person's decision leaves the banner once the next person's scan or
        typing starts: it is never read as the new person's."""
        if self.showing_last:
            self.showing_last = False
            self.banner("none", self.app.t("gate.ready"), [])

    @on(Input.Changed)
    def _typing(self, event: Input.Changed) -> None:
        if event.value and event.input.value == event.value:  # not one from before a reset
            self._next_person_started()

    # -- alerts -----------------------------------------------------------------------------
    def hold(self, record_id: str, decision) -> None:
        t, lang = self.app.t, self.app.lang
        alerts = decision.alerts
        codes = [r.code for r in alerts]
        referral = any(c in REFERRAL_CODES for c in codes)
        steps: list[str] = []
        if "fever" in codes or "test_positive" in codes:
            call = self.app.settings.rules.emergency_number
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
        screen = AlertScreen(
            title,
            [reason_text(r.code, r.params, lang) for r in alerts],
            steps,
            "referral" if referral else "warning",
        )
        self.app.push_screen(screen, lambda ok: self.acknowledge(record_id, codes))

    @work(thread=True, exit_on_error=False, group="gate-ack")
    def acknowledge(self, record_id: str, codes: list[str]) -> None:
        self.app.store.passages.acknowledge(record_id, codes)
        self.app.call_from_thread(self._released)

    def _released(self) -> None:
        self.holding = False
        self.banner_note(self.app.t("alert.acknowledged"))
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
        self.app.call_from_thread(self._previewed, ev)

    def _previewed(self, ev: Evaluation) -> None:
        if self.busy or self.holding:
            return
        t, lang = self.app.t, self.app.lang
        outcome = ev.decision.outcome.value
        self.banner(
            outcome,
            t("gate.preview", outcome=outcome_text(outcome, lang)),
            [*decision_lines(ev.decision, t, lang), t("gate.enter_to_commit")],
        )
        if self._scan_t0 is not None:
            self.timings.append({"preview": time.perf_counter() - self._scan_t0})
            self._scan_t0 = None

    # -- banner, errors ---------------------------------------------------------------------
    def banner(self, outcome: str, title: str, lines: list[str]) -> None:
        self.query_one("#banner", DecisionBanner).show(outcome, title, lines)

    def banner_note(self, text: str) -> None:
        self.query_one("#banner", DecisionBanner).note(text)

    def show_error(self, exc: BaseException) -> None:
        self.banner("error", self.app.t("gate.problem"), [self.app.error_text(exc)])
        target = _ERROR_FIELDS.get(getattr(exc, "code", None) or "")
        if target:
            self.query_one(target, Input).focus()

    # -- next person ------------------------------------------------------------------------
    def reset_form(self) -> None:
        for widget_id in (
            "#f-id",
            "#f-name",
            "#f-phone",
            "#f-temp",
            "#f-test-date",
            "#f-reason",
            "#f-escort",
        ):
            self.query_one(widget_id, Input).value = ""
        self.captured = Captured()
        self.correcting = None
        self.colour = None
        self.test_result = None
        self.category = "resident"
        self.check_digit_confirmed = False
        if self.skipping:
            self.action_not_measured()
        self.query_one("#scan-line", Static).update(self.app.t("gate.scan_idle"))
        self.query_one("#f-temp", Input).focus()

    def action_clear(self) -> None:
        if self.holding:
            return
        self.reset_form()
        self.banner("none", self.app.t("gate.ready"), [])

    def action_correct_last(self) -> None:
        """Load the last record back into the form; Enter records the corrected version."""
        if self.last is None or self.holding:
            self.app.notify(self.app.t("gate.nothing_to_correct"), severity="warning")
            return
        row, entry = self.last
        self.reset_form()
        self.showing_last = False  # the fields filled below are the last person's own
        cap = Captured(
            id_number=entry.id_number,
            id_kind=entry.id_kind,
            name=entry.name,
            raw_scan=entry.raw_scan,
            pass_id=entry.pass_id,
            pass_problem=entry.pass_problem,
            source=entry.source,
            shown_id=masked_identity(entry.id_number),
            shown_name=mask_name(entry.name) if entry.name else "",
        )
        self.captured = cap
        self.correcting = row.id
        self.query_one("#f-id", Input).value = cap.shown_id
        self.query_one("#f-name", Input).value = cap.shown_name
        self.query_one("#f-phone", Input).value = entry.phone or ""
        if entry.temperature is not None:
            self.query_one("#f-temp", Input).value = f"{entry.temperature:.1f}"
        self.direction = entry.direction
        self.colour = entry.code_colour
        self.test_result = entry.test_result
        self.category = entry.category
        if entry.test_date:
            self.query_one("#f-test-date", Input).value = entry.test_date.isoformat()
        self.query_one("#f-reason", Input).value = entry.trip_reason or ""
        self.query_one("#f-escort", Input).value = entry.escort or ""
        self.check_digit_confirmed = entry.check_digit_confirmed
        self.banner("none", self.app.t("gate.correcting", time=row.ts[11:16]), [])
        self.query_one("#f-temp", Input).focus()

    # -- lists --------------------------------------------------------------------------------
    @work(thread=True, exit_on_error=False, group="gate-lists", exclusive=True)
    def refresh_lists(self) -> None:
        store = self.app.store
        if not store.is_unlocked:
            return
        rows = store.passages.recent(8)
        counters = store.passages.counters(date.today().isoformat())
        self.app.call_from_thread(self._show_lists, rows, counters)

    def _show_lists(self, rows, counters: dict[str, int]) -> None:
        t, lang = self.app.t, self.app.lang
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

    def on_mode_changed(self) -> None:
        self.preview()

    def on_store_changed(self) -> None:
        """Another process recorded or changed something: the lists and counters follow."""
        self.refresh_lists()

    # -- command palette ----------------------------------------------------------------------
    def palette_commands(self) -> Iterable[SystemCommand]:
        t = self.app.t
        for action, key in (
            ("toggle_direction", "keys.direction"),
            ("colour('green')", "keys.green"),
            ("colour('yellow')", "keys.yellow"),
            ("colour('red')", "keys.red"),
            ("cycle_test", "keys.test"),
            ("cycle_category", "keys.category"),
            ("clear", "keys.clear"),
            ("correct_last", "keys.correct"),
            ("not_measured", "keys.not_measured"),
            ("confirm_check_digit", "keys.confirm_digit"),
        ):
            yield SystemCommand(
                t(key), t("palette.gate_action"), lambda a=action: self.run_action(a)
            )


SCREENS = [ScreenEntry("gate", "gate.title", GateScreen, ("gate", "supervisor"), "f2")]
