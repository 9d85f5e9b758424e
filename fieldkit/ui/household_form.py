"""A household added or edited on the patrol screen (新增住户 / 编辑住户, trial_town item 13).

小区, 楼栋, 单元, 房号, then 包户, the counts (户籍 / 常住 / 已检测), 是否出租 and the landlord.
The form saves through the ledger's own path (``ledger.save_household``: validated, versioned, a
ledger edit that syncs). The counts, 是否出租 and the phone are read by the import's rules
(``rows.parse_count`` / ``parse_bool``, ``model.phone_problem``); what is wrong is one sentence
in the form, which stays open with what was typed. A new household at an address the ledger
already has is not made twice: the form dismisses with that household (``{"existing": id}``).
The landlord is personal: shown masked as the placeholder, typing replaces it, empty keeps it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Label, Static

from ..errors import FieldkitError
from ..ledger.model import address_key, phone_problem
from ..ledger.rows import RowError, parse_bool, parse_count
from .typed import fieldkit_app, store_of
from .widgets import translate_bindings

# (input id, ledger field) in the order Enter walks them
FIELDS = (
    ("hf-community", "community"),
    ("hf-building", "building"),
    ("hf-unit", "unit"),
    ("hf-room", "room"),
    ("hf-worker", "worker"),
    ("hf-registered", "registered_count"),
    ("hf-resident", "resident_count"),
    ("hf-tested", "tested_count"),
    ("hf-rental", "is_rental"),
    ("hf-landlord-name", "landlord_name"),
    ("hf-landlord-phone", "landlord_phone"),
)
COUNTS = ("registered_count", "resident_count", "tested_count")
PERSONAL = ("landlord_name", "landlord_phone")


def household_at(ledger, fields: dict[str, Any]) -> str | None:
    """The household stored at this address: the same 小区, or (when one side names no 小区)
    the only one at this building, unit and room, as the import matches them (item 10)."""
    community = fields.get("community") or ""
    building, unit, room = fields["building"], fields.get("unit") or "", fields["room"]
    found = ledger.find_household(community, building, unit, room)
    if found:
        return found
    here = address_key("", building, unit, room)
    hits = [
        h.id
        for h in ledger.households_in(building, unit)
        if (not community or not h.community)
        and address_key("", h.building, h.unit, h.room) == here
    ]
    return hits[0] if len(hits) == 1 else None


class HouseholdForm(ModalScreen[dict | None]):
    """Add (``household`` None; ``defaults`` fills the address from the highlighted household)
    or edit a household. Dismisses with ``{"id", "result"}`` once saved, ``{"existing": id}``
    for an address already in the ledger, or None."""

    CSS_PATH = "patrol.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "keys.cancel", id="hform.cancel"),
        Binding("ctrl+s", "save", "keys.patrol_save", id="hform.save"),
    ]

    def __init__(
        self,
        household=None,
        *,
        defaults: dict[str, Any] | None = None,
        landlord: dict[str, str | None] | None = None,
    ) -> None:
        super().__init__()
        self.household = household
        self.defaults = defaults or {}
        self.landlord = landlord or {}

    def _value(self, field: str) -> str:
        h = self.household
        if field in PERSONAL:
            return ""  # masked in the placeholder
        if h is None:
            return str(self.defaults.get(field) or "")
        value = getattr(h, field)
        if field == "is_rental":
            return fieldkit_app(self).t("fixhousehold.yes" if value else "fixhousehold.no")
        return "" if value is None else str(value)

    def compose(self) -> ComposeResult:
        t = fieldkit_app(self).t
        h = self.household
        title = (
            t("fixhousehold.add_title")
            if h is None
            else t("fixhousehold.edit_title", place=f"{h.building}-{h.unit}-{h.room}")
        )
        with Vertical(classes="dialog", id="hform-box"):
            yield Label(title, classes="dialog-title")
            for wid, field in FIELDS:
                placeholder = t(f"fixhousehold.hint.{field}")
                if field in PERSONAL and self.landlord.get(field):
                    placeholder = t(
                        "patrol.mform.keep",
                        field=t(f"ledger.field.{field}"),
                        value=self.landlord[field],
                    )
                with Horizontal(classes="hform-row"):
                    yield Label(t(f"ledger.field.{field}"), classes="hform-label")
                    yield Input(
                        id=wid,
                        compact=True,
                        value=self._value(field),
                        placeholder=placeholder,
                        restrict=r"[0-9+\- ()]*" if field == "landlord_phone" else None,
                        max_length=40,
                    )
            yield Static("", id="hf-message")
        yield Footer()

    def on_mount(self) -> None:
        translate_bindings(self, fieldkit_app(self).t)
        first = "hf-building"
        if self.household is None and self.defaults.get("building"):
            first = "hf-room"
        self.query_one(f"#{first}", Input).focus()

    @on(Input.Submitted)
    def _next(self, event: Input.Submitted) -> None:
        event.stop()
        ids = [wid for wid, _ in FIELDS]
        i = ids.index(event.input.id or "")
        if i + 1 < len(ids):
            self.query_one(f"#{ids[i + 1]}", Input).focus()
            return
        self.action_save()

    def _say(self, text: str, field: str | None = None) -> None:
        message = self.query_one("#hf-message", Static)
        message.update(text)
        message.add_class("error")
        if field:
            wid = next(w for w, f in FIELDS if f == field)
            self.query_one(f"#{wid}", Input).focus()

    def read(self) -> dict[str, Any] | None:
        """The form as ledger fields, or None after saying what is wrong."""
        t = fieldkit_app(self).t
        raw = {f: self.query_one(f"#{w}", Input).value.strip() for w, f in FIELDS}
        if not raw["building"] or not raw["room"]:
            self._say(t("fixhousehold.err.address"), "building" if not raw["building"] else "room")
            return None
        out: dict[str, Any] = {
            f: raw[f] for f in ("community", "building", "unit", "room", "worker")
        }
        try:
            for f in COUNTS:
                out[f] = parse_count(raw[f], t(f"ledger.field.{f}"))
        except RowError as exc:
            self._say(t(f"ledger.reject.{exc.code}", **exc.params), f)
            return None
        try:
            out["is_rental"] = bool(parse_bool(raw["is_rental"], t("ledger.field.is_rental")))
        except RowError as exc:
            self._say(t(f"ledger.reject.{exc.code}", **exc.params), "is_rental")
            return None
        if raw["landlord_phone"] and (why := phone_problem(raw["landlord_phone"])):
            self._say(
                t(
                    "ledger.reject.bad_phone",
                    column=t("ledger.field.landlord_phone"),
                    value=raw["landlord_phone"],
                    problem=t(f"ledger.phone_problem.{why}"),
                ),
                "landlord_phone",
            )
            return None
        for f in PERSONAL:
            out[f] = raw[f] or None  # empty keeps what is stored
        return out

    def action_save(self) -> None:
        fields = self.read()
        if fields is None:
            return
        t = fieldkit_app(self).t
        ledger = store_of(self).ledger
        h = self.household
        try:
            there = household_at(ledger, fields)
            if h is None:
                if there is not None:
                    self.dismiss({"existing": there})
                    return
                fields = {"grid": self.defaults.get("grid") or None, **fields}
            elif there is not None and there != h.id:
                self._say(t("fixhousehold.err.taken"), "room")
                return
            else:
                fields = self._changes(fields)
            hid, result = ledger.save_household(fields, household_id=h.id if h else None)
        except FieldkitError as exc:
            self._say(fieldkit_app(self).error_text(exc))
            return
        self.dismiss({"id": hid, "result": result})

    def _changes(self, fields: dict[str, Any]) -> dict[str, Any]:
        """What the edit changes: an empty text field stored as None stays None (no change)."""
        h = self.household
        out = {}
        for f, v in fields.items():
            old = getattr(h, f, None) if f not in PERSONAL else None
            if v in ("", None) and old in ("", None):
                continue
            out[f] = v
        return out

    def action_cancel(self) -> None:
        self.dismiss(None)
