"""The patrol screen's dialogs: a visit, a person added to a household, the household card.

Each is a modal screen that returns what was entered (or chosen) to :mod:`.patrol`, which does
the reading and writing through the store's facade.

One piece (~440 lines): three dialogs that share the household's field and masking helpers.
"""

from __future__ import annotations

from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Input, Label, Static

from scanners.idnumber import mask_id, parse_identity

from ..errors import FieldkitError, InputError
from ..gate import parse_temperature
from ..ledger.model import parse_symptoms, phone_problem, symptom_legend
from ..rules import check_temperature
from .errortext import translate_id_problem
from .member_form import ChoiceLine, member_error_text
from .typed import fieldkit_app, store_of
from .widgets import translate_bindings

OUTCOME_KEYS = {"1": "seen", "2": "nobody_home", "3": "refused"}


def flag_text(flags: tuple[str, ...], t, limit: int = 3) -> str:
    shown = [t(f"ledger.flag.{f}") for f in flags[:limit]]
    return " ".join(shown) + (f" +{len(flags) - limit}" if len(flags) > limit else "")


def _n(value: int | None) -> str:
    return "-" if value is None else str(value)


class VisitDialog(ModalScreen[dict | None]):
    """One visit: outcome (1/2/3), each member's temperature and symptoms, needs, notes.

    The form opens in the first temperature field (most visits: someone seen, readings taken),
    where digits are a temperature. The outcome line above it is a stop of its own: there 1/2/3
    choose the outcome, and it offers those keys only while they work (elsewhere it says how to
    get there: Shift+Tab)."""

    CSS_PATH = "patrol.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "keys.cancel", id="visit.cancel"),
        Binding("ctrl+s", "save", "keys.patrol_save", id="visit.save"),
    ]

    outcome: reactive[str] = reactive("seen")

    def __init__(self, household, members: list) -> None:
        super().__init__()
        self.household = household
        self.members = members

    def compose(self) -> ComposeResult:
        t = fieldkit_app(self).t
        h = self.household
        with Vertical(classes="dialog", id="visit-box"):
            yield Label(
                t("patrol.visit_title", place=f"{h.building}-{h.unit}-{h.room}"),
                classes="dialog-title",
            )
            yield ChoiceLine("", id="visit-outcome", classes="choice")
            yield Static(t("patrol.symptom_legend", legend=symptom_legend(t)), classes="hint")
            for i, m in enumerate(self.members):
                with Horizontal(classes="member-row"):
                    yield Label(f"{m.name_masked or m.id_masked or '?'}", classes="member-name")
                    yield Input(
                        id=f"temp-{i}",
                        compact=True,
                        max_length=5,
                        placeholder="365",
                        restrict=r"[0-9.,]*",
                    )
                    yield Input(
                        id=f"sym-{i}",
                        compact=True,
                        max_length=8,
                        placeholder=t("patrol.symptoms"),
                        restrict=r"[1-6 ]*",
                    )
            yield Input(id="visit-supply", compact=True, placeholder=t("patrol.supply"))
            yield Input(id="visit-medical", compact=True, placeholder=t("patrol.medical"))
            yield Input(id="visit-notes", compact=True, placeholder=t("patrol.notes"))
            yield Input(id="visit-follow", compact=True, placeholder=t("patrol.follow_up"))
            yield Static("", id="visit-message")
        yield Footer()

    def on_mount(self) -> None:
        translate_bindings(self, fieldkit_app(self).t)
        self._show_outcome()
        first = self.query(Input).first()
        first.focus()

    def _show_outcome(self) -> None:
        t = fieldkit_app(self).t
        if not self._keys_work():
            self.query_one("#visit-outcome", ChoiceLine).update(
                t("patrol.outcome_keys")
                + f" [b]{t('ledger.outcome.' + self.outcome)}[/]  "
                + t("patrol_trial.outcome_change")
            )
            return
        parts = [
            (
                f"[b reverse]{k} {t('ledger.outcome.' + o)}[/]"
                if o == self.outcome
                else f"{k} {t('ledger.outcome.' + o)}"
            )
            for k, o in OUTCOME_KEYS.items()
        ]
        self.query_one("#visit-outcome", ChoiceLine).update(
            t("patrol.outcome_keys") + "  " + "  ".join(parts)
        )

    def _keys_work(self) -> bool:
        """1/2/3 choose the outcome: the focus is on the outcome line (or on no field)."""
        return not isinstance(self.focused, Input)

    def watch_outcome(self) -> None:
        if self.is_mounted:
            self._show_outcome()

    def on_descendant_focus(self) -> None:
        self._show_outcome()

    def on_descendant_blur(self) -> None:
        self.call_after_refresh(self._show_outcome)

    def on_key(self, event) -> None:
        # 1/2/3 choose the outcome while the cursor is not in a field (digits typed in a field
        # are the field's); Enter on the outcome line goes on to the first temperature.
        if event.character in OUTCOME_KEYS and self._keys_work():
            self.outcome = OUTCOME_KEYS[event.character]
            event.stop()
            event.prevent_default()
        elif event.key == "enter" and isinstance(self.focused, ChoiceLine):
            event.stop()
            event.prevent_default()
            self.query(Input).first().focus()

    def result(self) -> dict[str, Any]:
        """The form as keyword arguments of ``ledger.record_visit`` (InputError when bad)."""
        members = []
        rules = fieldkit_app(self).settings.rules
        for i, m in enumerate(self.members):
            temp = self.query_one(f"#temp-{i}", Input).value.strip()
            sym = self.query_one(f"#sym-{i}", Input).value
            if temp or sym.strip():
                try:
                    value = parse_temperature(temp) if temp else None
                    check_temperature(value, rules)  # a coded error, said in the screen's words
                except InputError:
                    # Caught by the caller, so the form stays open for the re-measured value.
                    self.query_one(f"#temp-{i}", Input).focus()
                    raise
                members.append(
                    {"member_id": m.id, "temperature": value, "symptoms": parse_symptoms(sym)}
                )

        def text(wid: str) -> str | None:
            return self.query_one(wid, Input).value.strip() or None

        return {
            "outcome": self.outcome,
            "members": members,
            "supply": text("#visit-supply"),
            "medical": text("#visit-medical"),
            "notes": text("#visit-notes"),
            "follow_up": text("#visit-follow"),
        }

    @on(Input.Submitted)
    def _next(self, event: Input.Submitted) -> None:
        event.stop()
        inputs = list(self.query(Input))
        i = inputs.index(event.input)
        if i + 1 < len(inputs):
            inputs[i + 1].focus()
        else:
            self.action_save()

    def action_save(self) -> None:
        try:
            self.dismiss(self.result())
        except (InputError, ValueError) as exc:
            message = self.query_one("#visit-message", Static)
            message.update(fieldkit_app(self).error_text(exc))
            message.add_class("error")

    def action_cancel(self) -> None:
        self.dismiss(None)


class MemberDialog(ModalScreen[dict | None]):
    """Add a person to a household: the ID number (scanned or typed), name, phone, relation.

    A scanned number is shown masked, as everywhere else (the worker checks what was read; typing
    over it enters another number). The dialog saves the person itself: a number or anything
    else the ledger refuses is said here, with the form kept as typed. Dismisses with
    ``{"member_id": ...}`` once saved, or None."""

    CSS_PATH = "patrol.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "keys.cancel", id="member.cancel")
    ]
    ORDER = ("m-id", "m-name", "m-phone", "m-relation")

    def __init__(self, household, id_number: str | None = None) -> None:
        super().__init__()
        self.household = household
        self.id_number = id_number
        self.shown_id = mask_id(id_number) if id_number else ""

    def compose(self) -> ComposeResult:
        t = fieldkit_app(self).t
        h = self.household
        with Vertical(classes="dialog", id="member-box"):
            yield Label(
                t("patrol.add_member", place=f"{h.building}-{h.unit}-{h.room}"),
                classes="dialog-title",
            )
            yield Input(
                id="m-id",
                compact=True,
                placeholder=t("ledger.field.id_number"),
                value=self.shown_id,
            )
            yield Input(id="m-name", compact=True, placeholder=t("ledger.field.name"))
            yield Input(
                id="m-phone",
                compact=True,
                placeholder=t("ledger.field.phone"),
                restrict=r"[0-9+\- ]*",
            )
            yield Input(id="m-relation", compact=True, placeholder=t("ledger.field.relation"))
            yield Static("", id="member-message")
        yield Footer()

    def on_mount(self) -> None:
        translate_bindings(self, fieldkit_app(self).t)
        self.query_one("#m-name" if self.id_number else "#m-id", Input).focus()

    @on(Input.Submitted)
    def _next(self, event: Input.Submitted) -> None:
        event.stop()
        i = self.ORDER.index(event.input.id or "")
        if i + 1 < len(self.ORDER):
            self.query_one(f"#{self.ORDER[i + 1]}", Input).focus()
            return
        self.save()

    def id_entered(self) -> str | None:
        """The number: the scanned one while its masked form is untouched, else what was typed."""
        value = self.query_one("#m-id", Input).value.strip()
        if self.id_number and value == self.shown_id:
            return self.id_number
        return value or None

    def _say(self, text: str, focus: str | None = None) -> None:
        message = self.query_one("#member-message", Static)
        message.update(text)
        message.add_class("error")
        if focus:
            self.query_one(focus, Input).focus()

    def save(self) -> None:
        t = fieldkit_app(self).t
        fields: dict[str, Any] = {
            k: self.query_one(f"#m-{k}", Input).value.strip() or None
            for k in ("name", "phone", "relation")
        }
        fields["id_number"] = self.id_entered()
        if not (fields["id_number"] or fields["name"]):
            self._say(t("patrol.need_id_or_name"), "#m-id")
            return
        if fields["phone"] and (why := phone_problem(fields["phone"])):
            self._say(
                t(
                    "patrol.mform.err.phone_why",
                    value=fields["phone"],
                    why=t(f"ledger.phone_problem.{why}"),
                ),
                "#m-phone",
            )
            return
        if fields["id_number"]:
            ident = parse_identity(fields["id_number"])
            if ident.problem or not ident.number:
                self._say(
                    t(
                        "patrol.mform.err.id",
                        id=mask_id(ident.number or fields["id_number"]),
                        problem=translate_id_problem(ident, t),
                    ),
                    "#m-id",
                )
                return
        ledger = store_of(self).ledger
        try:
            member_id, _ = ledger.save_member(self.household.id, fields)
        except FieldkitError as exc:
            self._say(member_error_text(exc, fieldkit_app(self)))
            return
        count_as_resident(ledger, self.household.id)
        self.dismiss({"member_id": member_id})

    def action_cancel(self) -> None:
        self.dismiss(None)


def count_as_resident(ledger, household_id: str) -> None:
    """A person added on the patrol screen lives there: the household's 常住 count (from the
    sheet) is raised to the people listed when it is lower. 户籍 is left as it is: a tenant is
    no registered resident, and the form does not ask."""
    h = ledger.household(household_id)
    if h is not None and h.resident_count is not None and h.members > h.resident_count:
        ledger.save_household({"resident_count": h.members}, household_id=household_id)


class HouseholdCard(ModalScreen[str | tuple[str, str] | None]):
    """The household at a glance: members (masked), flags, the landlord (masked), the last
    visits. The member list has the cursor: Enter (or Ctrl+E) edits the highlighted member,
    Delete removes them (with a reason), Ctrl+N adds one, F5 records a visit, F4 edits the
    household (:mod:`.household_form`)."""

    CSS_PATH = "patrol.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "keys.cancel", id="card.close"),
        Binding("f5", "visit", "keys.patrol_visit", id="card.visit"),
        Binding("ctrl+n", "add", "keys.patrol_add_member", id="card.add"),
        Binding("ctrl+e", "edit", "keys.patrol_edit_member", id="card.edit"),
        Binding("delete", "remove", "keys.patrol_remove_member", id="card.remove"),
        Binding("f4", "household", "keys.patrol_edit_household", id="card.household"),
    ]

    def __init__(
        self, household, members: list, visits: list[dict], landlord: dict | None = None
    ) -> None:
        super().__init__()
        self.household, self.members, self.visits = household, members, visits
        self.landlord = landlord or {}  # masked (ledger.landlord_masked)

    def compose(self) -> ComposeResult:
        t = fieldkit_app(self).t
        h = self.household
        with Vertical(classes="dialog", id="card-box"):
            yield Label(
                t(
                    "patrol.card_title",
                    place=f"{h.building}-{h.unit}-{h.room}",
                    worker=h.worker or "-",
                ),
                classes="dialog-title",
            )
            counts = t(
                "patrol.counts",
                registered=_n(h.registered_count),
                resident=_n(h.resident_count),
                tested=_n(h.tested_count),
            )
            landlord = " ".join(v for v in self.landlord.values() if v)
            if landlord:
                counts += "  " + t("fixhousehold.landlord", landlord=landlord)
            yield Static(
                counts + ("  " + flag_text(h.flags, t, 6) if h.flags else ""), id="card-flags"
            )
            yield DataTable(id="card-members", cursor_type="row")
            yield Static(
                "\n".join(
                    f"{v['ts'][5:16].replace('T', ' ')} {t('ledger.outcome.' + v['outcome'])} "
                    f"{v['operator']}"
                    for v in self.visits[:3]
                )
                or t("patrol.no_visits"),
                id="card-visits",
            )
        yield Footer()

    def on_mount(self) -> None:
        translate_bindings(self, fieldkit_app(self).t)
        t = fieldkit_app(self).t
        table = self.query_one("#card-members", DataTable)
        table.add_columns(
            t("ledger.field.name"),
            t("ledger.field.id_number"),
            t("ledger.field.relation"),
            t("ledger.field.health_status"),
            t("ledger.field.categories"),
        )
        for m in self.members:
            status = "" if m.health_status == "none" else t("ledger.status." + m.health_status)
            table.add_row(
                m.name_masked or "",
                m.id_masked or "",
                m.relation or "",
                status,
                "、".join(t("ledger.cat." + c) for c in m.categories),
            )
        table.show_cursor = bool(self.members)
        table.focus()

    def highlighted(self):
        table = self.query_one("#card-members", DataTable)
        if not self.members or table.cursor_row is None:
            return None
        return self.members[min(table.cursor_row, len(self.members) - 1)]

    @on(DataTable.RowSelected, "#card-members")
    def _member_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_edit()

    def action_edit(self) -> None:
        m = self.highlighted()
        if m is not None:
            self.dismiss(("edit", m.id))

    def action_remove(self) -> None:
        m = self.highlighted()
        if m is not None:
            self.dismiss(("remove", m.id))

    def action_close(self) -> None:
        self.dismiss(None)

    def action_visit(self) -> None:
        self.dismiss("visit")

    def action_add(self) -> None:
        self.dismiss("add")

    def action_household(self) -> None:
        self.dismiss("household")
