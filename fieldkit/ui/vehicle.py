"""The vehicle lane: plate, pass, kind, disinfection, and every occupant with a temperature.

Occupants are added one by one (scan or type the ID, temperature, Enter); Ctrl+S records the
vehicle and all occupants in one transaction. Outside vehicles are barred in the strict modes,
supply vehicles pass by the whitelist (rules in ``fieldkit.rules.decide_vehicle``).

One piece (~520 lines): the lane's form, occupant list and recording all act on the one vehicle
under way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import DataTable, Input, Label, Static

from scanners.idnumber import mask_id, mask_name

from ..domain import Decision, Outcome, Reason
from ..errors import FieldkitError, InputError
from ..gate import GateEntry, GateService, is_id_shaped, parse_temperature
from ..i18n import outcome_text, reason_text
from .fields import FixedInput, SteadyFooter, prepare_identity
from .gate_form import FormInput, IdInput
from .messages import RecordCommitted, ScanRead
from .screen_entry import ScreenEntry
from .typed import fieldkit_app, store_of
from .widgets import StatusBar, translate_bindings
from .widgets.banner import DecisionBanner, decision_lines
from .widgets.dialogs import push_alert

KINDS = ("resident", "outside", "supply")
# Who the occupants are: a supply vehicle's crew are authorised workers (保供人员).
OCCUPANT_CATEGORY = {"resident": "resident", "outside": "outsider", "supply": "worker"}


# The start of a resident ID (region, year, month: 12 characters) up to the whole number: typed
# into 通行证 it can be nothing else, and a pass number is never a person's ID.
ID_START = re.compile(r"[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])\d{0,5}[0-9Xx]?")


def id_start(text: str) -> int | None:
    """Where an ID typed at the end of ``text`` begins (12 characters of it at least)."""
    for start in range(max(0, len(text) - 18), len(text) - 11):
        if ID_START.fullmatch(text[start:]):
            return start
    return None


class PassInput(FormInput):
    """通行证: an ID typed here by hand (the worker thought the focus was elsewhere) goes to the
    ID field, drawn masked, as from the other fields; what was typed before it stays here. A
    pass number of digits is not taken for an ID until it can only be one (:func:`id_start`)."""

    def split_id(self, candidate: str) -> tuple[str, str] | None:
        at = id_start(candidate)
        return None if at is None else (candidate[:at], candidate[at:])


def recorded_decision(row) -> Decision:
    """An occupant's decision as it was recorded (a passage row's reasons)."""
    return Decision(
        Outcome(row.decision),
        tuple(
            Reason(
                r["code"], Outcome(r["outcome"]), bool(r.get("alert")), dict(r.get("params") or {})
            )
            for r in row.reasons
        ),
    )


def own_reasons(occupant: Decision, vehicle: Decision) -> Decision:
    """An occupant's reasons less those the vehicle's lines already say (its own: barred, no
    pass …, given to every occupant) and "ok": what is said under that occupant's line."""
    said = {r.code for r in vehicle.reasons if r.code != "occupant_not_admitted"} | {"ok"}
    return Decision(occupant.outcome, tuple(r for r in occupant.reasons if r.code not in said))


def vehicle_lines(vehicle: Decision, occupants: list[Decision], t, lang: str) -> list[str]:
    """The vehicle's reasons as the gate words a decision (:func:`decision_lines`); under each
    "第 n 位乘车人：…" line, indented, that occupant's own reasons (fever, held with one …)."""
    lines: list[str] = []
    for reason, line in zip(vehicle.reasons, decision_lines(vehicle, t, lang), strict=True):
        lines.append(line)
        n = int(reason.params.get("n", 0)) if reason.code == "occupant_not_admitted" else 0
        if 0 < n <= len(occupants):
            own = own_reasons(occupants[n - 1], vehicle)
            lines += ["  " + x for x in decision_lines(own, t, lang)]
    return lines


def vehicle_alert_lines(vehicle: Decision, occupants: list[Decision], lang: str) -> list[str]:
    """The alert's lines, as the gate's alert words them (:func:`reason_text`); under each
    occupant's line, indented, what holds that occupant back."""
    lines: list[str] = []
    for reason in vehicle.alerts:
        lines.append(reason_text(reason.code, reason.params, lang))
        n = int(reason.params.get("n", 0)) if reason.code == "occupant_not_admitted" else 0
        if 0 < n <= len(occupants):
            own = own_reasons(occupants[n - 1], vehicle)
            lines += [
                "  " + reason_text(r.code, r.params, lang)
                for r in own.reasons
                if r.outcome != Outcome.ADMIT
            ]
    return lines


@dataclass
class Occupant:
    entry: GateEntry
    shown: str  # masked, for the table


class VehicleScreen(Screen):
    BINDINGS = [
        Binding("f4", "toggle_direction", "keys.direction", id="vehicle.direction"),
        Binding("f5", "colour('green')", "keys.green", id="vehicle.green"),
        Binding("f6", "colour('yellow')", "keys.yellow", id="vehicle.yellow"),
        Binding("f7", "colour('red')", "keys.red", id="vehicle.red"),
        Binding("f8", "toggle_disinfected", "keys.disinfected", id="vehicle.disinfected"),
        Binding("f9", "cycle_kind", "keys.vehicle_kind", id="vehicle.kind"),
        Binding("ctrl+s", "commit", "keys.commit", id="vehicle.commit"),
        Binding(
            "ctrl+d", "remove_occupant", "keys.remove_occupant", id="vehicle.remove", show=False
        ),
        Binding("escape", "clear", "keys.clear", id="vehicle.clear", show=False),
        Binding(  # as at the gate: the number is the document's own, wrong check digit and all
            "ctrl+y",
            "confirm_check_digit",
            "keys.confirm_digit",
            id="vehicle.confirm_digit",
            show=False,
        ),
    ]

    check_digit_confirmed = False

    def action_confirm_check_digit(self) -> None:
        self.check_digit_confirmed = True
        self.query_one("#banner", DecisionBanner).show(
            "none", fieldkit_app(self).t("gate.check_digit_confirmed"), []
        )

    direction: reactive[str] = reactive("in")
    kind: reactive[str] = reactive("resident")
    disinfected: reactive[bool] = reactive(False)
    colour: reactive[str | None] = reactive(None)

    def __init__(self) -> None:
        super().__init__()
        self.occupants: list[Occupant] = []
        # (full number, masked as shown, source): scanned, or typed and confirmed with Enter
        self.scanned_id: tuple[str, str, str] | None = None
        self.holding = False
        self.busy = False

    def compose(self) -> ComposeResult:
        t = fieldkit_app(self).t
        yield StatusBar()
        with Vertical(id="vehicle-form"):
            yield Static(t("vehicle.ready"), id="vehicle-hint", markup=False)
            with Horizontal(classes="form-row"):
                yield Label(t("vehicle.plate"), classes="field-label")
                yield FixedInput(id="v-plate", compact=True, max_length=12)
                yield Label(t("vehicle.pass_no"), classes="field-label")
                yield PassInput(id="v-pass", compact=True, max_length=40)
                yield Label(t("vehicle.kind"), classes="field-label")
                yield Static("", id="v-kind", classes="toggle")
            with Horizontal(classes="form-row"):
                yield Label(t("gate.direction"), classes="field-label")
                yield Static("", id="v-dir", classes="toggle")
                yield Label(t("vehicle.disinfected"), classes="field-label")
                yield Static("", id="v-disinfected", classes="toggle")
            with Horizontal(classes="form-row"):
                yield Label(t("gate.id"), classes="field-label")
                yield IdInput(
                    id="o-id",
                    compact=True,
                    max_length=40,
                    placeholder=t("gate.id_hint"),
                    select_on_focus=False,  # keys handed over go after, not over, the text
                )
                yield Label(t("gate.name"), classes="field-label")
                yield FormInput(id="o-name", compact=True, max_length=40)
                yield Label(t("gate.temperature"), classes="field-label")
                yield FormInput(id="o-temp", compact=True, max_length=5, placeholder="365")
                yield Static("", id="o-colour", classes="toggle")
        yield DecisionBanner(t("vehicle.ready"), id="banner")
        yield DataTable(id="occupants", cursor_type="row")
        yield SteadyFooter()

    def on_mount(self) -> None:
        translate_bindings(self, fieldkit_app(self).t)
        t = fieldkit_app(self).t
        table = self.query_one("#occupants", DataTable)
        table.add_columns(
            t("vehicle.col_n"), t("vehicle.col_who"), t("vehicle.col_temp"), t("vehicle.col_code")
        )
        table.can_focus = False
        self._paint()  # the toggles show their values from the start
        self.query_one("#v-plate", Input).focus()

    def _show(self) -> None:
        if self.is_mounted:
            self._paint()

    def _paint(self) -> None:
        t = fieldkit_app(self).t
        self.query_one("#v-kind", Static).update(t(f"vehicle.kind_name.{self.kind}"))
        self.query_one("#v-dir", Static).update(t(f"direction.{self.direction}"))
        self.query_one("#v-dir", Static).set_class(self.direction == "out", "-out")
        self.query_one("#v-disinfected", Static).update(
            t("vehicle.yes") if self.disinfected else t("vehicle.no")
        )
        colour = self.query_one("#o-colour", Static)
        colour.update(t(f"colour.{self.colour}") if self.colour else t("gate.none"))
        for c in ("green", "yellow", "red"):
            colour.set_class(self.colour == c, f"-{c}")

    def watch_direction(self) -> None:
        self._show()

    watch_kind = watch_disinfected = watch_colour = watch_direction

    def action_toggle_direction(self) -> None:
        self.direction = "out" if self.direction == "in" else "in"

    def action_cycle_kind(self) -> None:
        self.kind = KINDS[(KINDS.index(self.kind) + 1) % len(KINDS)]

    def action_toggle_disinfected(self) -> None:
        self.disinfected = not self.disinfected

    def action_colour(self, colour: str) -> None:
        self.colour = None if self.colour == colour else colour

    # -- occupants --------------------------------------------------------------------------
    def handle_scan(self, message: ScanRead) -> None:
        if self.holding or self.busy:
            return
        result = message.result
        if result.kind == "resident_id":
            number = result.parsed.get("number")
            source = "wedge" if message.source == "wedge" else "scan"
            self.scanned_id = (number, mask_id(number), source)
            prepare_identity(self, GateService(store_of(self)), number)
            self.query_one("#o-id", Input).value = mask_id(number)
            self.query_one("#o-temp", Input).focus()

    def type_into_id(self, text: str) -> None:
        """An ID typed into the reading or the name (:class:`~.gate_form.FormInput`): into
        the ID field, focus there; over a scanned (masked) number it starts a new one."""
        field = self.query_one("#o-id", Input)
        if "*" in field.value:
            field.value = ""
            self.scanned_id = None
        field.value += text
        field.cursor_position = len(field.value)
        if self.focused is not field:
            field.focus()

    def _take_typed_id(self) -> bool:
        """Enter in the ID field: a typed number is checked, then held like a scanned one
        and shown masked; False (the problem on the banner) when it is not a valid ID."""
        field = self.query_one("#o-id", Input)
        text = field.value.strip()
        if not text or (self.scanned_id and text == self.scanned_id[1]):
            return True
        try:
            GateService(store_of(self)).identify(
                GateEntry(
                    direction=self.direction,
                    id_number=text,
                    source="manual",
                    check_digit_confirmed=self.check_digit_confirmed,
                )
            )
        except InputError as exc:
            app = fieldkit_app(self)
            self.query_one("#banner", DecisionBanner).show(
                "error", app.t("gate.problem"), [app.error_text(exc)]
            )
            return False
        if is_id_shaped(text):
            number = text.upper()
            self.scanned_id = (number, mask_id(number), "manual")
            field.value = mask_id(number)
            prepare_identity(self, GateService(store_of(self)), number)
        return True

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        field = event.input.id
        if field == "v-plate":
            self.query_one("#v-pass", Input).focus()
        elif field == "v-pass":
            self.query_one("#o-id", Input).focus()
        elif field == "o-id":  # as at the gate: Enter after the ID goes to the reading
            if self._take_typed_id():
                self.query_one("#o-temp", Input).focus()
        elif field == "o-name":
            self.query_one("#o-temp", Input).focus()
        elif field == "o-temp":
            if self.query_one("#o-temp", Input).value.strip():
                self.add_occupant()
            elif self.occupants:
                self.action_commit()

    def add_occupant(self) -> None:
        t = fieldkit_app(self).t
        id_text = self.query_one("#o-id", Input).value.strip()
        number = (
            self.scanned_id[0]
            if self.scanned_id and id_text == self.scanned_id[1]
            else id_text or None
        )
        name = self.query_one("#o-name", Input).value.strip() or None
        try:
            temperature = parse_temperature(self.query_one("#o-temp", Input).value)
            entry = GateEntry(
                direction=self.direction,
                id_number=number,
                name=name,
                temperature=temperature,
                code_colour=self.colour,
                check_digit_confirmed=self.check_digit_confirmed,
                source=(
                    self.scanned_id[2]
                    if self.scanned_id and id_text == self.scanned_id[1]
                    else "manual"
                ),
            )
            GateService(store_of(self)).identify(entry)
        except InputError as exc:
            self.query_one("#banner", DecisionBanner).show(
                "error", t("gate.problem"), [fieldkit_app(self).error_text(exc)]
            )
            return
        shown = (
            " ".join(
                x for x in (mask_name(name) if name else "", mask_id(number) if number else "") if x
            )
            or "-"
        )
        self.occupants.append(Occupant(entry, shown))
        self._show_occupants()
        self.query_one("#banner", DecisionBanner).show(
            "none", t("vehicle.occupant_added", n=len(self.occupants), who=shown), []
        )
        for wid in ("#o-id", "#o-name", "#o-temp"):
            self.query_one(wid, Input).value = ""
        self.scanned_id = None
        self.colour = None
        self.check_digit_confirmed = False
        self.query_one("#o-temp", Input).focus()

    def _show_occupants(self) -> None:
        t = fieldkit_app(self).t
        table = self.query_one("#occupants", DataTable)
        table.clear()
        for i, o in enumerate(self.occupants, 1):
            e = o.entry
            table.add_row(
                str(i),
                o.shown,
                f"{e.temperature:.1f}",
                t(f"colour.{e.code_colour}") if e.code_colour else "-",
            )

    def action_remove_occupant(self) -> None:
        if self.occupants:
            self.occupants.pop()
            self._show_occupants()
            self.query_one("#banner", DecisionBanner).show(
                "none",
                fieldkit_app(self).t("vehicle.occupant_removed", n=len(self.occupants) + 1),
                [],
            )

    # -- commit -------------------------------------------------------------------------------
    def action_commit(self) -> None:
        t = fieldkit_app(self).t
        if self.busy or self.holding:
            return
        plate = self.query_one("#v-plate", Input).value.strip()
        if not plate:
            self.query_one("#banner", DecisionBanner).show(
                "error", t("gate.problem"), [t("vehicle.err.plate")]
            )
            self.query_one("#v-plate", Input).focus()
            return
        if not self.occupants:
            self.query_one("#banner", DecisionBanner).show(
                "error", t("gate.problem"), [t("vehicle.need_occupant")]
            )
            self.query_one("#o-temp", Input).focus()
            return
        self.busy = True
        self.save(plate, self.query_one("#v-pass", Input).value.strip() or None)

    @work(thread=True, exit_on_error=False, group="vehicle-commit")
    def save(self, plate: str, pass_no: str | None) -> None:
        try:
            decision, vid, rows = GateService(store_of(self)).commit_vehicle(
                direction=self.direction,
                plate=plate,
                kind=self.kind,
                occupants=[
                    replace(o.entry, category=OCCUPANT_CATEGORY[self.kind]) for o in self.occupants
                ],
                pass_no=pass_no,
                disinfected=self.disinfected,
            )
        except FieldkitError as exc:
            fieldkit_app(self).call_from_thread(self._failed, exc)
            return
        fieldkit_app(self).call_from_thread(self._saved, plate, decision, vid, rows)

    def _failed(self, exc: Exception) -> None:
        self.busy = False
        self.query_one("#banner", DecisionBanner).show(
            "error", fieldkit_app(self).t("gate.problem"), [fieldkit_app(self).error_text(exc)]
        )

    def _saved(self, plate: str, decision, vid: str, rows) -> None:
        t, lang = fieldkit_app(self).t, fieldkit_app(self).lang
        occupants = [recorded_decision(row) for row in rows]  # in the order they were added
        lines = [
            t("vehicle.recorded", plate=plate.upper(), n=len(rows)),
            *vehicle_lines(decision, occupants, t, lang),
        ]
        self.query_one("#banner", DecisionBanner).show(
            decision.outcome.value, outcome_text(decision.outcome.value, lang), lines
        )
        self.busy = False
        self.post_message(RecordCommitted(vid, "vehicle"))
        fieldkit_app(self).refresh_status()
        self.occupants = []
        self._show_occupants()
        for wid in ("#v-plate", "#v-pass", "#o-id", "#o-name", "#o-temp"):
            self.query_one(wid, Input).value = ""
        self.disinfected = False
        self.query_one("#v-plate", Input).focus()
        alerts = decision.alerts
        if alerts:
            codes = sorted(
                {r.code for r in alerts}
                | {a["code"] for row in rows for a in row.reasons if a.get("alert")}
            )
            self.holding = True

            def acknowledged(ok: bool | None) -> None:
                self._released()  # as at the gate: free at once, written in a worker
                self.acknowledge([r.id for r in rows], codes)

            push_alert(
                fieldkit_app(self),
                "vehicle-alert",
                t("alert.title"),
                vehicle_alert_lines(decision, occupants, lang),
                [],
                "warning",
                acknowledged,
            )

    @work(thread=True, exit_on_error=False, group="vehicle-ack")
    def acknowledge(self, record_ids: list[str], codes: list[str]) -> None:
        for record_id in record_ids:
            store_of(self).passages.acknowledge(record_id, codes)

    def _released(self) -> None:
        self.holding = False
        self.query_one("#banner", DecisionBanner).note(fieldkit_app(self).t("alert.acknowledged"))

    def action_clear(self) -> None:
        if self.holding:
            return
        self.occupants = []
        self._show_occupants()
        for wid in ("#v-plate", "#v-pass", "#o-id", "#o-name", "#o-temp"):
            self.query_one(wid, Input).value = ""
        self.query_one("#banner", DecisionBanner).show(
            "none", fieldkit_app(self).t("vehicle.ready"), []
        )
        self.query_one("#v-plate", Input).focus()

    def palette_commands(self) -> Iterable[SystemCommand]:
        t = fieldkit_app(self).t
        for action, key in (
            ("toggle_direction", "keys.direction"),
            ("cycle_kind", "keys.vehicle_kind"),
            ("toggle_disinfected", "keys.disinfected"),
            ("colour('green')", "keys.green"),
            ("colour('yellow')", "keys.yellow"),
            ("colour('red')", "keys.red"),
            ("commit", "keys.commit"),
            ("remove_occupant", "keys.remove_occupant"),
            ("clear", "keys.clear"),
        ):
            yield SystemCommand(
                t(key), t("palette.gate_action"), lambda a=action: self.run_action(a)
            )


SCREENS = [ScreenEntry("vehicle", "vehicle.title", VehicleScreen, ("gate", "supervisor"), "f3")]
