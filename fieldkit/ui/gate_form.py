"""The gate form: its fields, what a scan put into it, and reading it as a GateEntry.

:class:`GateForm` is the base of the gate screen (:mod:`.gate`): the form's state and toggles,
reading it (:meth:`GateForm.build_entry`), an ID typed into another field moved to the ID
field, and the banner and errors. Recording and alerts are in :mod:`.gate_record`; the layout,
scans and lists in :mod:`.gate`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from textual import on
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Input, Label, Static

from scanners.idnumber import mask_id, parse_identity

from ..errors import InputError
from ..gate import GateEntry, GateService, is_id_shaped, parse_day, parse_temperature
from ..i18n import word
from .errortext import translate_id_problem
from .fields import prepare_identity
from .gate_inputs import (  # noqa: F401  (FormInput, IdInput: the gate and vehicle forms import them from here)
    READING_KEYS,
    FormInput,
    IdInput,
    compact,
    reading_prefix,
    shown_reading,
)
from .messages import ScanRead
from .typed import fieldkit_app, store_of
from .widgets.banner import DecisionBanner

COLOURS = (None, "green", "yellow", "red")
TEST_RESULTS = (None, "negative", "positive", "pending")
CATEGORIES = ("resident", "outsider", "worker", "delivery", "repair", "visitor")
REFERRAL_CODES = ("fever", "test_positive", "keyperson_hit")


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
    "fixtyping.remeasure": "#f-temp",
}

# A reading this high is measured again before it is recorded (REQUIREMENTS §2: re-measure
# prompt): a typo ("42" for 36.2) would otherwise send a healthy person to isolation, and
# undoing it needs the supervisor. The same reading typed again is recorded.
REMEASURE_FROM = 40.0


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
    certificate_problem: str | None = None  # an EU DCC read that did not verify, in words
    source: str = "manual"
    shown_id: str = ""  # what the ID field shows (masked)
    shown_name: str = ""


class GateForm(Screen):
    """The gate form's state, toggles and reading; the base of :class:`~.gate.GateScreen`."""

    is_gate_form = True  # what the fields of :mod:`.gate_inputs` route to (gate_form_of)
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
        # The first digits of a typed ID that had been in the temperature field, when they
        # are a reading (see :meth:`split_typed_reading`).
        self.typed_reading: str | None = None
        # The mobile number in 电话 when a digit typed after it went to 体温 (see
        # FormInput._reading_follows): should that turn out an ID, it was typed into 电话.
        self.phone_spill: str | None = None
        # A reading of REMEASURE_FROM or more the worker was asked to measure again.
        self.remeasure_asked: float | None = None
        self.showing_last = False  # the banner shows the person just recorded
        self.no_shift = False  # the last record was filed under no shift
        self.service = GateService(store_of(self))
        # benchmark: scan → decision shown ("preview"); Enter → committed / banner ("shown")
        self.timings: list[dict[str, float]] = []
        self._scan_t0: float | None = None

    # -- reactive toggles -------------------------------------------------------------------
    def _show_toggles(self) -> None:
        t = fieldkit_app(self).t
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
        # 未测原因 is wider than a reading (#f-temp.-skipping): the reason and its hint in full.
        self.query_one("#f-temp", Input).set_class(self.skipping, "-skipping")

    def watch_direction(self) -> None:
        if self.is_mounted:
            self._show_toggles()

    watch_colour = watch_test_result = watch_category = watch_skipping = watch_direction

    def action_not_measured(self) -> None:
        self.skipping = not self.skipping
        temp = self.query_one("#f-temp", Input)
        temp.value = ""
        temp.placeholder = (
            fieldkit_app(self).t("gate.not_measured_hint") if self.skipping else "365"
        )
        temp.focus()

    def commit(self) -> None:
        """Record the form (:class:`~.gate_record.GateRecording`)."""

    def action_confirm_check_digit(self) -> None:
        """Ctrl+Y: the number is as on the card. With the reading already typed the person is
        recorded at once (the worker has nothing else to do); otherwise the typed number is
        held and the message says what comes next."""
        t = fieldkit_app(self).t
        self.check_digit_confirmed = True
        temp = self.query_one("#f-temp", Input)
        has_id = bool(self._value("#f-id"))
        if has_id:
            self._take_typed_id()
            prepare_identity(self, self.service, self.captured.id_number)
        if has_id and (temp.value.strip() or self.skipping) and not (self.busy or self.holding):
            self.commit()
            return
        self.banner("none", t("gate.check_digit_confirmed"), [t("fixtyping.confirmed_next")])
        temp.focus()

    def type_into_reading(self, text: str, fresh: bool = False) -> None:
        """A reading's keys typed in 电话 or 证件 after a whole phone number or ID: into 体温,
        focus there (cursor after the text). ``fresh``: the first of them, which starts the
        reading afresh (a new reading replaces one typed before)."""
        field = self.query_one("#f-temp", FormInput)
        if fresh:
            field.value = ""
        field.value += text
        field.cursor_position = len(field.value)
        field.focus_at_end()

    def type_into_id(self, text: str) -> None:
        """Hand-typed ID characters that reached another field: into the ID field, focus there.

        Over a scanned (masked) number they start a new one. Spaces and dashes between the
        groups of the number are left out."""
        text = compact(text)
        field = self.query_one("#f-id", Input)
        if not text:
            if self.focused is not field:
                field.focus()
            return
        if "*" in field.value or field.value == self.captured.shown_id and field.value:
            field.value = ""
        field.value += text
        field.cursor_position = len(field.value)
        if self.focused is not field:
            field.focus()

    def split_typed_reading(self) -> None:
        """A reading typed just before a hand-typed ID went into the ID field with it (the
        field could not tell "365" + "1101…" from an ID starting 3651…). At Enter, when the
        ID field holds no ID's length but, without that reading, an ID's length does (21
        characters = 365 + 18), the reading goes back to the empty temperature field."""
        reading = self.typed_reading
        if not reading:
            return
        id_field = self.query_one("#f-id", Input)
        temp = self.query_one("#f-temp", Input)
        text = id_field.value.strip()
        rest = text[len(reading) :]
        if (
            temp.value.strip()
            or not text.startswith(reading)
            or is_id_shaped(text)
            or not is_id_shaped(rest)
        ):
            return
        self.typed_reading = None
        id_field.value = rest
        id_field.cursor_position = len(rest)
        temp.value = reading

    @on(Input.Changed, "#f-id")
    def _id_typed(self, event: Input.Changed) -> None:
        reading = self.typed_reading
        if reading and len(event.value) == len(reading) + 18:
            self.split_typed_reading()  # 365 + 18 characters: the reading shows again at once

    # -- reading the form -------------------------------------------------------------------
    def _value(self, widget_id: str) -> str:
        return self.query_one(widget_id, Input).value.strip()

    def build_entry(self, reading_required: bool = True) -> GateEntry:
        """The form as a GateEntry; InputError (translated by the caller) when it cannot be.
        ``reading_required=False``: a person turned away by the worker before a reading was
        taken needs none (an empty 体温 is no reading, not an error)."""
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
                raise InputError("err.temp_missing_reason")
            skipped = temp_text
        elif not temp_text and not reading_required:
            pass
        else:
            temperature = parse_temperature(temp_text)
            self._check_plausible(temp_text, temperature)
            if temperature >= REMEASURE_FROM and self.remeasure_asked != temperature:
                raise InputError(
                    "fixtyping.remeasure",
                    value=shown_reading(temp_text, temperature),
                    reading=temperature,
                )
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
            certificate_problem=cap.certificate_problem,
        )

    def _check_plausible(self, typed: str, value: float) -> None:
        """A reading outside the plausible range is measured again, and said as typed (3.65,
        not the 3.6 the core's message would round it to)."""
        rules = fieldkit_app(self).settings.rules
        if not rules.temperature_min <= value <= rules.temperature_max:
            raise InputError(
                "err.temp_range",
                value=shown_reading(typed, value),
                min=f"{rules.temperature_min:.1f}",
                max=f"{rules.temperature_max:.1f}",
            )

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
            problem = translate_id_problem(ident, fieldkit_app(self).t)
            self.banner(
                "error",
                fieldkit_app(self).t("gate.check_id"),
                [fieldkit_app(self).t(key, id=mask_id(ident.number), problem=problem)],
            )
            return False
        return True

    # -- banner, errors ---------------------------------------------------------------------
    def banner(self, outcome: str, title: str, lines: list[str]) -> None:
        self.query_one("#banner", DecisionBanner).show(outcome, title, lines)

    def banner_note(self, text: str) -> None:
        self.query_one("#banner", DecisionBanner).note(text)

    def show_error(self, exc: BaseException) -> None:
        self.banner(
            "error", fieldkit_app(self).t("gate.problem"), [fieldkit_app(self).error_text(exc)]
        )
        code = getattr(exc, "code", None) or ""
        target = _ERROR_FIELDS.get(code)
        if target:
            field = self.query_one(target, Input)
            field.focus()
            if code == "fixtyping.remeasure":  # measured again, typed again (not Enter again)
                self.remeasure_asked = getattr(exc, "params", {}).get("reading")
                field.value = ""
            elif target == "#f-temp":  # the reading is measured again: the new one replaces it
                field.select_all()

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
        self.typed_reading = None
        self.phone_spill = None
        self.remeasure_asked = None
        self.colour = None
        self.test_result = None
        self.category = "resident"
        self.check_digit_confirmed = False
        if self.skipping:
            self.action_not_measured()
        self.query_one("#scan-line", Static).update(fieldkit_app(self).t("gate.scan_idle"))
        self.query_one("#f-temp", Input).focus()
