"""The patrol screen's dialogs: a visit, a person added to a household, the household card.

Each is a modal screen that returns what was entered (or chosen) to :mod:`.patrol`, which does
the reading and writing through the store's facade.
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

from ..errors import InputError
from ..gate import parse_temperature
from ..ledger.model import parse_symptoms, symptom_legend
from .typed import fieldkit_app
from .widgets import translate_bindings

OUTCOME_KEYS = {"1": "seen", "2": "nobody_home", "3": "refused"}


def flag_text(flags: tuple[str, ...], t, limit: int = 3) -> str:
    shown = [t(f"ledger.flag.{f}") for f in flags[:limit]]
    return " ".join(shown) + (f" +{len(flags) - limit}" if len(flags) > limit else "")


def _n(value: int | None) -> str:
    return "-" if value is None else str(value)


class VisitDialog(ModalScreen[dict | None]):
    """One visit: outcome (1/2/3), each member's temperature and symptoms, needs, notes."""

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
            yield Static("", id="visit-outcome")
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
        parts = [
            (
                f"[b reverse]{k} {t('ledger.outcome.' + o)}[/]"
                if o == self.outcome
                else f"{k} {t('ledger.outcome.' + o)}"
            )
            for k, o in OUTCOME_KEYS.items()
        ]
        self.query_one("#visit-outcome", Static).update(
            t("patrol.outcome_keys") + "  " + "  ".join(parts)
        )

    def watch_outcome(self) -> None:
        if self.is_mounted:
            self._show_outcome()

    def on_key(self, event) -> None:
        # 1/2/3 choose the outcome while the cursor is not in a number field.
        focused = self.focused
        in_numbers = isinstance(focused, Input) and (focused.id or "").startswith(("temp-", "sym-"))
        if event.character in OUTCOME_KEYS and not in_numbers:
            self.outcome = OUTCOME_KEYS[event.character]
            event.stop()
            event.prevent_default()

    def result(self) -> dict[str, Any]:
        """The form as keyword arguments of ``ledger.record_visit`` (InputError when bad)."""
        members = []
        rules = fieldkit_app(self).settings.rules
        for i, m in enumerate(self.members):
            temp = self.query_one(f"#temp-{i}", Input).value.strip()
            sym = self.query_one(f"#sym-{i}", Input).value
            if temp or sym.strip():
                value = parse_temperature(temp) if temp else None
                if (
                    value is not None
                    and not rules.temperature_min <= value <= rules.temperature_max
                ):
                    # Caught here, so the form stays open for the re-measured value.
                    self.query_one(f"#temp-{i}", Input).focus()
                    raise InputError(
                        f"temperature {value} °C is outside "
                        f"{rules.temperature_min}–{rules.temperature_max} °C: "
                        "re-measure (重新测量)"
                    )
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
    """Add a person to a household: the ID number (scanned or typed), name, phone, relation."""

    CSS_PATH = "patrol.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "keys.cancel", id="member.cancel")
    ]

    def __init__(self, household, id_number: str | None = None) -> None:
        super().__init__()
        self.household = household
        self.id_number = id_number

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
                value=self.id_number or "",
                password=bool(self.id_number),
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
        order = ["m-id", "m-name", "m-phone", "m-relation"]
        i = order.index(event.input.id or "")
        if i + 1 < len(order):
            self.query_one(f"#{order[i + 1]}", Input).focus()
            return
        fields = {
            k: self.query_one(
                f"#m-{k.split('_')[0] if k != 'id_number' else 'id'}", Input
            ).value.strip()
            or None
            for k in ("id_number", "name", "phone", "relation")
        }
        if not (fields["id_number"] or fields["name"]):
            self.query_one("#member-message", Static).update(
                fieldkit_app(self).t("patrol.need_id_or_name")
            )
            return
        self.dismiss(fields)

    def action_cancel(self) -> None:
        self.dismiss(None)


class HouseholdCard(ModalScreen[str | tuple[str, str] | None]):
    """The household at a glance: members (masked), flags, the last visits. The member list has
    the cursor: Enter (or Ctrl+E) edits the highlighted member, Delete removes them (with a
    reason), Ctrl+N adds one, F5 records a visit."""

    CSS_PATH = "patrol.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "keys.cancel", id="card.close"),
        Binding("f5", "visit", "keys.patrol_visit", id="card.visit"),
        Binding("ctrl+n", "add", "keys.patrol_add_member", id="card.add"),
        Binding("ctrl+e", "edit", "keys.patrol_edit_member", id="card.edit"),
        Binding("delete", "remove", "keys.patrol_remove_member", id="card.remove"),
    ]

    def __init__(self, household, members: list, visits: list[dict]) -> None:
        super().__init__()
        self.household, self.members, self.visits = household, members, visits

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
