"""The gate duty screen (卡口登记): scan, temperature, Enter.

The common path is a scan (camera or keyboard-wedge scanner, whatever has focus), the
temperature digits (``365`` → 36.5) and Enter: one key beyond the digits. Code colour, direction,
test result and category are single function keys. The decision shows in a large banner with
every reason; alerts hold the screen until F10 acknowledges them (stored with the record). After
a commit the form is empty again, focus on the temperature, ready for the next person.

Personal data is shown masked everywhere (张*, 110105********1234); the full values live only
in this screen's memory until committed (encrypted by the store).

The screen is built in three layers: the form and reading it (:mod:`.gate_form`), recording and
alerts (:mod:`.gate_record`), and here the layout, scans, corrections, lists and the palette.
The decision banner is a widget (:mod:`.widgets.banner`), shared with the vehicle screen.

One piece (~400 lines): the screen's layout, scan handling and keys; the form, the recording and
the banner already live in gate_form, gate_record and widgets/banner.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import date

from textual import on
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Input, Label, Static

from scanners.idnumber import RESIDENT_ID_IN_TEXT, mask_id, mask_name, normalise_id_text
from scanners.words import result_problem

from ..gate import GateService, scrub_ids
from .errortext import translate_error, translate_id_problem
from .fields import SteadyFooter, prepare_identity
from .gate_form import (
    CATEGORIES,
    COLOURS,
    TEST_RESULTS,
    Captured,
    FormInput,
    IdInput,
    masked_identity,
    parse_test_date,
)
from .gate_record import REFERRAL_CODES, GateRecording
from .keyhelp import KeyHint, footer_bindings
from .messages import ScanRead
from .screen_entry import ScreenEntry
from .typed import fieldkit_app, store_of
from .widgets import StatusBar, translate_bindings
from .widgets.banner import DecisionBanner, decision_lines

__all__ = [
    "CATEGORIES",
    "COLOURS",
    "REFERRAL_CODES",
    "TEST_RESULTS",
    "Captured",
    "DecisionBanner",
    "FormInput",
    "GateScreen",
    "IdInput",
    "decision_lines",
    "masked_identity",
    "parse_test_date",
    "translate_error",
    "translate_id_problem",
]

DCC_NEGATIVE, DCC_POSITIVE = "260415000", "260373001"


def health_code_id(text: str, parsed: dict) -> str | None:
    """The ID number a health-code link carries, in full: the parser keeps only its masked
    form (``parsed["resident_id"]``); it is the number in the text read that masks the same."""
    shown = parsed.get("resident_id")
    if not shown:
        return None
    for m in RESIDENT_ID_IN_TEXT.finditer(normalise_id_text(text) if len(text) < 200 else text):
        number = m.group(1).upper()
        if mask_id(number) == shown:
            return number
    return None


class GateScreen(GateRecording):
    """One person at a time: scan or type, temperature, Enter."""

    BINDINGS = [
        Binding("f4", "toggle_direction", "keys.direction", id="gate.direction"),
        Binding("f5", "colour('green')", "keys.green", id="gate.green"),
        Binding("f6", "colour('yellow')", "keys.yellow", id="gate.yellow"),
        Binding("f7", "colour('red')", "keys.red", id="gate.red"),
        Binding("f8", "cycle_test", "keys.test", id="gate.test"),
        Binding("f9", "cycle_category", "keys.category", id="gate.category"),
        Binding("escape", "clear", "keys.clear", id="gate.clear"),
        Binding(
            "ctrl+n",
            "worker_decision",
            "keys.worker_decision",
            id="gate.worker_decision",
            show=False,
        ),
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

    DEFAULT_CSS = "GateScreen > SteadyFooter { padding-left: 1; }"

    @property
    def active_bindings(self):
        """The footer shows the gate's own keys; the keys to other screens are in the hint
        line above it (:mod:`.keyhelp`): at 80 columns they were cut off half-way."""
        return footer_bindings(fieldkit_app(self), self, super().active_bindings)

    # -- layout -----------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        t = fieldkit_app(self).t
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
        yield KeyHint(id="key-hint", markup=False)
        yield SteadyFooter(compact=True)

    def on_mount(self) -> None:
        translate_bindings(self, fieldkit_app(self).t)
        t = fieldkit_app(self).t
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
        self.service = GateService(store_of(self))
        self.query_one(KeyHint).show_keys()  # the operator may be another one now
        self.refresh_lists()
        self._take_held_scan()

    def _take_held_scan(self) -> None:
        """A code read while another screen was open is used here, once."""
        take = getattr(fieldkit_app(self), "take_held_scan", None)
        held = take() if take else None
        if held is not None:
            self.handle_scan(held)

    # -- toggles (function keys) ----------------------------------------------------------
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

    # -- scans ------------------------------------------------------------------------------
    def handle_scan(self, message: ScanRead) -> None:
        """A code from the camera or a wedge scanner: fill the identity, ready for the reading."""
        if self.holding or self.busy:
            self.queued_scan = message
            if self.holding:
                fieldkit_app(self).notify(
                    fieldkit_app(self).t("gate.ack_first"), severity="warning"
                )
            return
        t = fieldkit_app(self).t
        result = message.result
        if result.kind == "unknown":  # a code, but no ID, pass or health code: form untouched
            self.banner("error", t("gate.problem"), [t("gate_defects.unknown_scan")])
            source = (
                t("scan.source_wedge") if message.source == "wedge" else t("scan.source_camera")
            )
            self.query_one("#scan-line", Static).update(  # what was read, as for any scan
                t("gate.scan_read", what=t("scan.kind.unknown"), detail="", source=source)
                + " — "
                + result_problem(result, fieldkit_app(self).lang)
            )
            return
        left = self._leave_correction()
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
        elif result.kind == "health_code":  # the ID a link carries is the person's
            cap.id_number = health_code_id(message.text or result.text or "", parsed)
            if cap.id_number:
                cap.id_kind = "resident_id"
                self.check_digit_confirmed = False
            detail = masked_identity(cap.id_number) or parsed.get("system") or ""
        elif result.kind == "dcc":
            self._fill_from_dcc(result, cap)
            if not result.ok:
                cap.certificate_problem = result_problem(result, fieldkit_app(self).lang)
            detail = t("scan.valid") if result.ok else t("scan.invalid")
        cap.shown_id = mask_id(cap.id_number) if cap.id_number else ""
        cap.shown_name = mask_name(cap.name) if cap.name else ""
        self.captured = cap
        prepare_identity(self, self.service, cap.id_number)
        self.correcting = None
        self.query_one("#f-id", Input).value = cap.shown_id
        self.query_one("#f-name", Input).value = cap.shown_name
        # coded problems in the screen language
        shown = result_problem(result, fieldkit_app(self).lang)
        problem = "" if result.ok else f" — {shown}"
        source = t("scan.source_wedge") if message.source == "wedge" else t("scan.source_camera")
        self.query_one("#scan-line", Static).update(
            scrub_ids(t("gate.scan_read", what=what, detail=detail, source=source) + problem)
        )
        self._scan_t0 = message.t0 or time.perf_counter()
        self.query_one("#f-temp", Input).focus()
        self.next_person_shown()  # the last decision stays, labelled, above this person
        if left:  # nothing of the last person is carried over to this one
            self.banner("none", t("gate_defects.correction_left", time=left), [])
        self.preview()

    def takes_unknown_scan(self, focused) -> bool:
        """A burst that reads as no known code, with the focus in the temperature field, is a
        wrong code shown to the scanner, never a reading (see :mod:`.keyinput`)."""
        return focused is self.query_one("#f-temp", Input)

    def _leave_correction(self) -> str | None:
        """A scan while a correction is open: the next person is here. The correction is left
        (the record stays as it was) and the form emptied, so no reading of the last person
        is recorded for the new one. Returns the time of the record that was not corrected."""
        if not self.correcting:
            return None
        when = self.last[0].ts[11:16] if self.last and self.last[0].id == self.correcting else ""
        self.reset_form()
        # A person set aside for the correction is replaced by the one scanned now, as any
        # unrecorded person in the form is by a new scan.
        self.set_aside = None
        return when or "-"

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

    # -- Enter --------------------------------------------------------------------------------
    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        field = event.input.id
        temp = self.query_one("#f-temp", Input)
        self.split_typed_reading()
        if field == "f-id":
            if self._check_id():
                self._take_typed_id()
                prepare_identity(self, self.service, self.captured.id_number)
                if temp.value.strip():  # the reading is in (or Ctrl+Y confirmed): record
                    self.commit()
                else:
                    temp.focus()
            return
        if field in ("f-name", "f-phone") and not temp.value.strip():
            (self.query_one("#f-phone", Input) if field == "f-name" else temp).focus()
            return
        self.commit()

    def action_clear(self) -> None:
        """Esc: the form emptied. A correction is left and the person waiting when it was
        opened comes back; a person read by the camera is dealt with (the next image comes)."""
        if self.holding:
            return
        cleared, correcting = self.captured, self.correcting
        self.reset_form()
        self.banner("none", fieldkit_app(self).t("gate.ready"), [])
        if correcting:
            self.bring_back()
        else:
            self.presented_cleared(cleared)

    def action_worker_decision(self) -> None:
        """Ctrl+N: 劝返 or 禁止通行 on the worker's own judgement, with a reason."""
        self.ask_worker_decision()

    def action_correct_last(self) -> None:
        """Load the last record back into the form; Enter records the corrected version."""
        if self.last is None or self.holding:
            fieldkit_app(self).notify(
                fieldkit_app(self).t("gate.nothing_to_correct"), severity="warning"
            )
            return
        row, entry = self.last
        self.set_aside_waiting()  # the next person, if in the form, comes back afterwards
        self.reset_form()
        self.showing_last = False  # the fields filled below are the last person's own
        cap = Captured(
            id_number=entry.id_number,
            id_kind=entry.id_kind,
            name=entry.name,
            raw_scan=entry.raw_scan,
            pass_id=entry.pass_id,
            pass_problem=entry.pass_problem,
            certificate_problem=getattr(entry, "certificate_problem", None),
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
        t = fieldkit_app(self).t
        who = " ".join(x for x in (row.name_masked, row.id_masked) if x) or "-"
        self.banner(
            "none",
            t(
                "gate_defects.correcting",
                time=row.ts[11:16],
                direction=t(f"direction.{row.direction}"),
                who=who,
            ),
            [],
        )
        temp = self.query_one("#f-temp", Input)
        temp.focus()
        temp.select_all()  # the corrected reading replaces the old one as it is typed

    def on_mode_changed(self) -> None:
        self.preview()

    def on_store_changed(self) -> None:
        """Another process recorded or changed something: the lists and counters follow."""
        self.refresh_lists()

    # -- command palette ----------------------------------------------------------------------
    def palette_commands(self) -> Iterable[SystemCommand]:
        t = fieldkit_app(self).t
        for action, key in (
            ("toggle_direction", "keys.direction"),
            ("colour('green')", "keys.green"),
            ("colour('yellow')", "keys.yellow"),
            ("colour('red')", "keys.red"),
            ("cycle_test", "keys.test"),
            ("cycle_category", "keys.category"),
            ("clear", "keys.clear"),
            ("worker_decision", "keys.worker_decision"),
            ("correct_last", "keys.correct"),
            ("not_measured", "keys.not_measured"),
            ("confirm_check_digit", "keys.confirm_digit"),
        ):
            yield SystemCommand(
                t(key), t("palette.gate_action"), lambda a=action: self.run_action(a)
            )


SCREENS = [ScreenEntry("gate", "gate.title", GateScreen, ("gate", "supervisor"), "f2")]
