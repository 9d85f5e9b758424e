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

from textual import events, on
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Input, Label, Static

from scanners.idnumber import mask_id, parse_identity

from ..errors import InputError
from ..gate import GateEntry, GateService, is_id_shaped, looks_like_id, parse_day, parse_temperature
from ..i18n import word
from .errortext import translate_id_problem
from .fields import FixedInput, MaskedIdInput
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
}


def reading_prefix(text: str) -> str | None:
    """The reading a typed ID may have been typed after in the temperature field: its first
    3 digits when they are one (``365`` → 36.5; 30.0-45.9), else None."""
    head = text[:3]
    return head if len(head) == 3 and head.isdigit() and 300 <= int(head) <= 459 else None


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


class FormInput(FixedInput):
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
        if not hasattr(screen, "type_into_id"):  # the gate's and the vehicle lane's forms
            return False
        if self.redirecting:
            screen.type_into_id(ch)
            return True
        sel = self.selection
        start, end = (self.cursor_position,) * 2 if sel.is_empty else sorted(sel)
        split = self.split_id(self.value[:start] + ch + self.value[end:])
        if split is None:
            return False
        self.redirecting = True
        self.value, typed_id = split
        screen.type_into_id(typed_id)
        return True

    def split_id(self, candidate: str) -> tuple[str, str] | None:
        """(what stays in this field, the start of an ID) once ``candidate`` (the field's text
        with the new key) can only be the start of an ID; None while it can be this field's."""
        if not looks_like_id(candidate, self.id_digits):
            return None
        screen = self.screen
        if self.id == "f-temp" and isinstance(screen, GateForm):  # "365" then an ID: the
            # reading may be in front of it (see GateForm.split_typed_reading)
            screen.typed_reading = reading_prefix(candidate)
        return "", candidate

    def on_blur(self) -> None:
        self.redirecting = False


class IdInput(MaskedIdInput):
    """The ID field: a key typed over a masked (scanned or confirmed) number starts afresh;
    a number being typed is shown masked (:func:`fieldkit.gate.mask_typing`)."""

    async def _on_key(self, event: events.Key) -> None:
        if event.is_printable and event.character and "*" in self.value:
            self.value = ""
        await super()._on_key(event)


class GateForm(Screen):
    """The gate form's state, toggles and reading; the base of :class:`~.gate.GateScreen`."""

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

    def action_confirm_check_digit(self) -> None:
        self.check_digit_confirmed = True
        self.banner("none", fieldkit_app(self).t("gate.check_digit_confirmed"), [])

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
        target = _ERROR_FIELDS.get(getattr(exc, "code", None) or "")
        if target:
            field = self.query_one(target, Input)
            field.focus()
            if target == "#f-temp":  # the reading is measured again: the new one replaces it
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
        self.colour = None
        self.test_result = None
        self.category = "resident"
        self.check_digit_confirmed = False
        if self.skipping:
            self.action_not_measured()
        self.query_one("#scan-line", Static).update(fieldkit_app(self).t("gate.scan_idle"))
        self.query_one("#f-temp", Input).focus()
