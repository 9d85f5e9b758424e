"""The gate form's fields that route what is typed into them: an ID typed anywhere goes to the
ID field (:class:`FormInput`), a reading typed after a whole mobile number or a whole ID goes to
体温, an ID typed in groups into 体温 goes to 证件 (:class:`IdInput` and the helpers). The
screen they route to is the gate form (:mod:`.gate_form`), reached through the small
:class:`GateFormLike` surface, so this module does not import it (the vehicle lane's form uses
the same fields)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Protocol, TypeVar, cast

from textual import events
from textual.widgets import Input

from ..gate import is_id_shaped, looks_like_id
from .fields import FixedInput, MaskedIdInput

if TYPE_CHECKING:
    from textual.widget import Widget

W = TypeVar("W", bound="Widget")


class GateFormLike(Protocol):
    """What the fields use of the gate form (:class:`.gate_form.GateForm`)."""

    phone_spill: str | None
    typed_reading: str | None

    def type_into_reading(self, text: str, fresh: bool = False) -> None: ...

    def type_into_id(self, text: str) -> None: ...

    def query_one(self, selector: str, expect_type: type[W]) -> W: ...


def gate_form_of(screen: object) -> GateFormLike | None:
    """The gate form these fields are on, if they are (the vehicle lane's form is not one)."""
    return cast("GateFormLike", screen) if getattr(screen, "is_gate_form", False) else None


def reading_prefix(text: str) -> str | None:
    """The reading a typed ID may have been typed after in the temperature field: its first
    3 digits when they are one (``365`` → 36.5; 30.0-45.9), else None."""
    head = text[:3]
    return head if len(head) == 3 and head.isdigit() and 300 <= int(head) <= 459 else None


# A mainland mobile number (11 digits, 13x-19x): once 电话 holds one, a digit typed after it is
# the reading (the worker's next step), not the 12th digit of an ID.
MOBILE = re.compile(r"1[3-9][0-9]{9}")
# The first two digits of IDs that also start like a mobile number (河北 13, 山西 14, 内蒙古 15).
MOBILE_LIKE_REGIONS = ("13", "14", "15")
# Keys that belong to a reading; typed right after a whole phone or a whole 18-character ID.
READING_KEYS = frozenset("0123456789.,")
# What a person puts between the groups of an ID read out or copied from the card.
ID_SEPARATORS = " -"


def compact(text: str) -> str:
    """``text`` without the spaces and dashes an ID is often typed with (4403 0619 …)."""
    return "".join(c for c in text if c not in ID_SEPARATORS)


def shown_reading(text: str, value: float) -> str:
    """A reading as the worker typed it, for a message: ``3.65`` stays 3.65 (not 3.6); three
    digits without a dot (``455``) are said as read (45.5)."""
    t = text.strip().replace(",", ".").replace("。", ".").replace("．", ".")
    return f"{value:.1f}" if t.isdigit() and len(t) == 3 else t


class FormInput(FixedInput):
    """A field of the gate form that passes an ID typed into it on to the ID field.

    An ID typed by hand goes to the ID field wherever focus is: once the field's text can only
    be the start of an ID (``id_digits`` digits, or digits and an X), the text moves to the ID
    field and the focus follows. Keys that arrive before the focus has moved go after it, so
    nothing is lost and none of it is ever read as a temperature, a date or a phone number.

    电话 is the exception the other way round: once it holds a whole mobile number, a digit
    typed after it is the reading and goes to 体温 (:meth:`GateForm.type_into_reading`); it
    hands an ID over only while 证件 is empty, so an ID already there is never replaced."""

    def __init__(self, *args, id_digits: int = 5, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.id_digits = id_digits
        self.redirecting = False  # keys go to the ID field until the focus is there
        self.spilling = False  # keys go to 体温 until the focus is there
        self._select_on_focus = self.select_on_focus

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
        if self.spilling and (form := gate_form_of(screen)) is not None:
            form.type_into_reading(ch)
            return True
        sel = self.selection
        start, end = (self.cursor_position,) * 2 if sel.is_empty else sorted(sel)
        if self._reading_follows(start, end, ch) and (form := gate_form_of(screen)) is not None:
            self.spilling = True
            form.phone_spill = compact(self.value)
            form.type_into_reading(ch, fresh=True)
            return True
        split = self.split_id(self.value[:start] + ch + self.value[end:])
        if split is None:
            return False
        self.redirecting = True
        self.value, typed_id = split
        screen.type_into_id(typed_id)
        return True

    def _reading_follows(self, start: int, end: int, ch: str) -> bool:
        """电话 holds a whole mobile number and a reading's key is typed after it."""
        return (
            self.id == "f-phone"
            and ch in READING_KEYS
            and start == end == len(self.value)
            and MOBILE.fullmatch(compact(self.value)) is not None
        )

    def split_id(self, candidate: str) -> tuple[str, str] | None:
        """(what stays in this field, the start of an ID) once ``candidate`` (the field's text
        with the new key) can only be the start of an ID; None while it can be this field's."""
        form = gate_form_of(self.screen)
        if self.id == "f-phone" and form is not None:
            return self._split_phone(form, candidate)
        if self.id == "f-temp" and form is not None:
            return self._split_reading(form, candidate)
        if not looks_like_id(candidate, self.id_digits):
            return None
        return "", candidate

    def _split_phone(self, screen: GateFormLike, candidate: str) -> tuple[str, str] | None:
        """电话: an ID only when it cannot be a phone number (a landline starts with 0, an
        international number with +) and while 证件 is empty: an ID there is never replaced
        by digits typed into the phone."""
        digits = compact(candidate)
        if (
            candidate.lstrip().startswith(("0", "+"))
            or not looks_like_id(digits, self.id_digits)
            or screen.query_one("#f-id", Input).value
        ):
            return None
        return "", digits

    def _split_reading(self, screen: GateFormLike, candidate: str) -> tuple[str, str] | None:
        """体温: an ID typed in groups (``4403 0619 …``, ``440306-1990…``) is an ID as the
        unspaced one is. Digits that went on from a mobile-like number in 电话 into this field
        (:meth:`_reading_follows`) and turned out an ID were one typed into 电话: 证件 gets it
        whole, 电话 is emptied."""
        digits = compact(candidate)
        if not looks_like_id(digits, self.id_digits):
            return None
        phone = screen.query_one("#f-phone", Input)
        spill = screen.phone_spill
        screen.phone_spill = None
        if (
            spill
            and compact(phone.value) == spill
            and spill[:2] in MOBILE_LIKE_REGIONS
            and not screen.query_one("#f-id", Input).value
        ):
            phone.value = ""
            screen.typed_reading = None
            return "", spill + digits
        # "365" then an ID: the reading may be in front of it (GateForm.split_typed_reading)
        screen.typed_reading = reading_prefix(digits)
        return "", digits

    def focus_at_end(self) -> None:
        """Focus here with the cursor after the text (keys handed over go after it, not over a
        selection of it), as a worker typing on expects."""
        if self.has_focus:
            return
        self.select_on_focus = False  # until the focus leaves again
        self.focus()

    def on_blur(self) -> None:
        self.redirecting = False
        self.spilling = False
        self.select_on_focus = self._select_on_focus


class IdInput(MaskedIdInput):
    """The ID field: a key typed over a masked (scanned or confirmed) number starts afresh;
    a number being typed is shown masked (:func:`fieldkit.gate.mask_typing`).

    Spaces and dashes between the groups of a number are left out. A reading's key typed
    after a whole 18-character number (no ID is longer) is the reading: it goes to 体温 (the
    worker types the temperature next, say after a check-digit message left the focus here)."""

    spilling = False  # keys go to 体温 until the focus is there

    async def _on_key(self, event: events.Key) -> None:
        if event.is_printable and event.character:
            ch = event.character
            screen = self.screen
            form = gate_form_of(screen)
            if (self.spilling or self._reading_follows(ch)) and form is not None:
                event.stop()
                event.prevent_default()
                form.type_into_reading(ch, fresh=not self.spilling)
                self.spilling = True
                return
            if ch in ID_SEPARATORS and (compact(self.value).isdigit() or not self.value):
                event.stop()
                event.prevent_default()
                return
            if "*" in self.value:
                self.value = ""
        await super()._on_key(event)

    def _reading_follows(self, ch: str) -> bool:
        text = self.value.strip()
        return (
            ch in READING_KEYS
            and len(text) == 18
            and is_id_shaped(text)
            and self.selection.is_empty
            and self.cursor_position == len(self.value)
        )

    def on_blur(self) -> None:
        self.spilling = False
