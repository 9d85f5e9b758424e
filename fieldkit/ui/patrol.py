"""Door-to-door patrol (入户排查): building and unit, households with today's state, visits.

Keyboard first: the left list picks the building and unit (Enter), the table lists its
households; on a household F5 records a visit (outcome, each member's temperature and
symptoms, needs, notes, follow-up), F6 "nobody home" and F7 "refused" in one key, Enter opens
the household card. F8 shows only households not reached yet this round. On the card, Enter
edits the highlighted member (status, start date, categories, source: ``member_form``), Delete
removes them. Scanning an ID (camera or wedge scanner) finds the person's household, or adds
the person to the highlighted one. F4 adds a household (an empty ledger too) and F4 in the card
edits it (:mod:`.household_form`). Everything personal is shown masked; the store's facade
does all reading and writing, in workers. The dialogs are in :mod:`.patrol_dialogs`.

One piece (~500 lines): the screen's layout, lists and keys; its dialogs are in patrol_dialogs
and household_form.
"""

from __future__ import annotations

from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import DataTable, OptionList, Static
from textual.widgets.option_list import Option

from scanners.idnumber import mask_id, parse_identity

from ..errors import FieldkitError
from ..ledger.model import parse_symptoms
from .errortext import translate_id_problem
from .fields import SteadyFooter
from .keyhelp import KeyHint, footer_bindings
from .messages import ScanRead
from .patrol_dialogs import OUTCOME_KEYS, HouseholdCard, MemberDialog, VisitDialog, flag_text
from .screen_entry import ScreenEntry
from .typed import fieldkit_app, store_of
from .widgets import StatusBar, translate_bindings

__all__ = [
    "OUTCOME_KEYS",
    "HouseholdCard",
    "MemberDialog",
    "PatrolScreen",
    "VisitDialog",
    "flag_text",
    "parse_symptoms",
]


class PatrolScreen(Screen):
    """Building → unit → households; visits; coverage of the current round."""

    CSS_PATH = "patrol.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f4", "add_household", "keys.patrol_add_household", id="patrol.add_household"),
        Binding("f5", "visit", "keys.patrol_visit", id="patrol.visit"),
        Binding("f6", "quick('nobody_home')", "keys.patrol_nobody_home", id="patrol.nobody_home"),
        Binding("f7", "quick('refused')", "keys.patrol_refused", id="patrol.refused"),
        Binding("f8", "toggle_pending", "keys.patrol_pending", id="patrol.pending"),
        Binding(
            "ctrl+n", "add_member", "keys.patrol_add_member", id="patrol.add_member", show=False
        ),
        Binding("ctrl+o", "card", "keys.patrol_card", id="patrol.card", show=False),
    ]

    place: reactive[tuple[str, str | None] | None] = reactive(None)
    pending_only: reactive[bool] = reactive(False)

    def __init__(self) -> None:
        super().__init__()
        self.rows: list = []  # HouseholdRow of the table, in order
        self.places: list[tuple[str, str]] = []
        self.list_ms: float | None = None  # time to load the last household list

    @property
    def active_bindings(self):
        """The footer shows this screen's own keys; the keys to other screens are in the hint
        line above it (:mod:`.keyhelp`, as at the gate): at 80 columns F9/F11 were cut off."""
        return footer_bindings(fieldkit_app(self), self, super().active_bindings)

    def compose(self) -> ComposeResult:
        t = fieldkit_app(self).t
        yield StatusBar()
        yield Static(t("patrol.title"), classes="screen-title", id="patrol-title")
        with Horizontal(id="patrol-body"):
            yield OptionList(id="places")
            with Vertical(id="patrol-right"):
                yield DataTable(id="households", cursor_type="row", zebra_stripes=True)
                yield Static("", id="patrol-coverage")
        yield KeyHint(id="key-hint", markup=False)
        yield SteadyFooter(compact=True)

    def on_mount(self) -> None:
        translate_bindings(self, fieldkit_app(self).t)
        t = fieldkit_app(self).t
        table = self.query_one("#households", DataTable)
        table.add_columns(
            t("patrol.col_room"),
            t("patrol.col_members"),
            t("patrol.col_today"),
            t("patrol.col_flags"),
        )
        self.load_places()

    def on_screen_resume(self) -> None:
        """Back from a dialog (or another screen): the list re-read, the focus on the households
        (Enter opens the highlighted one's card; the dialog was about it)."""
        self.refresh_households()
        self.focus_households()

    def focus_households(self) -> None:
        """F5/F6/F7, Ctrl+N and scans act on the highlighted household even from the place
        list; after one the focus goes to the households, so the next Enter opens its card (in
        the place list Enter only chooses the unit: it looked as if Enter did nothing)."""
        table = self.query_one("#households", DataTable)
        if table.row_count and not table.has_focus:
            table.focus()

    def on_store_changed(self) -> None:
        """A ledger import by another process: the places and households shown at once."""
        self.load_places()
        self.refresh_households()

    # -- places -----------------------------------------------------------------------------
    @work(thread=True, exit_on_error=False, group="patrol-places", exclusive=True)
    def load_places(self) -> None:
        ledger = store_of(self).ledger
        places = []
        for b in ledger.buildings():
            for unit in ledger.units(b["building"]):
                if (b["building"], unit) not in places:
                    places.append((b["building"], unit))
        cov = ledger.coverage()
        fieldkit_app(self).call_from_thread(self._show_places, places, cov)

    def _show_places(self, places: list[tuple[str, str]], cov: dict[str, Any]) -> None:
        # One line per building and unit, as the household list shows them: a unit whose
        # households came with different grids (two sheets) is counted whole, not one grid's.
        units: dict[tuple[str, str], dict[str, int]] = {}
        for u in cov["units"]:
            c = units.setdefault((u["building"], u["unit"]), {"visited": 0, "total": 0})
            c["visited"] += u["visited"]
            c["total"] += u["total"]
        self.places = places
        options = self.query_one("#places", OptionList)
        options.clear_options()
        for b, u in places:
            c = units.get((b, u), {"visited": 0, "total": 0})
            options.add_option(Option(f"{b} {u}  {c['visited']}/{c['total']}"))
        if not places:
            self.query_one("#patrol-coverage", Static).update(
                fieldkit_app(self).t("fixhousehold.empty")
            )
            return
        if self.place is None:  # first load: start at the first unit, in the place list
            options.highlighted = 0
            self.place = places[0]
            options.focus()
        elif self.place in places:
            options.highlighted = places.index(self.place)

    @on(OptionList.OptionSelected, "#places")
    def _place_chosen(self, event: OptionList.OptionSelected) -> None:
        self.place = self.places[event.option_index]
        self.query_one("#households", DataTable).focus()

    def watch_place(self) -> None:
        self.refresh_households()

    def watch_pending_only(self) -> None:
        self.refresh_households()

    # -- households -------------------------------------------------------------------------
    def refresh_households(self) -> None:
        if self.place is not None and self.is_mounted:
            self.load_households(self.place, self.pending_only)

    @work(thread=True, exit_on_error=False, group="patrol-list", exclusive=True)
    def load_households(self, place: tuple[str, str | None], pending_only: bool) -> None:
        import time

        t0 = time.perf_counter()
        ledger = store_of(self).ledger
        rows = ledger.households_in(place[0], place[1])
        if pending_only:
            rows = [r for r in rows if not r.reached]
        cov = ledger.coverage_for(place[0], place[1])
        fieldkit_app(self).call_from_thread(self._show_households, place, rows, cov, t0)

    def _show_households(self, place, rows: list, cov: dict[str, Any], t0: float) -> None:
        import time

        t = fieldkit_app(self).t
        table = self.query_one("#households", DataTable)
        keep = table.cursor_row
        table.clear()
        for r in rows:
            state = t("ledger.outcome." + (r.today or "none"))
            if r.follow_up:
                state += " *"
            table.add_row(r.room, str(r.members), state, flag_text(r.flags, t), key=r.id)
        self.rows = rows
        if rows:
            table.move_cursor(row=min(keep, len(rows) - 1))
        self.list_ms = (time.perf_counter() - t0) * 1000
        self._show_coverage(place, cov, rows)

    def _show_coverage(self, place, cov: dict[str, dict[str, int]], rows: list) -> None:
        t = fieldkit_app(self).t
        text = t(
            "patrol.coverage",
            **{k: f"{cov[k]['visited']}/{cov[k]['total']}" for k in ("unit", "building", "total")},
        )
        if "grid" in cov:
            g = cov["grid"]
            text = t(
                "patrol.coverage_grid",
                **{
                    k: f"{cov[k]['visited']}/{cov[k]['total']}"
                    for k in ("unit", "building", "total")
                },
                grid_name=g["name"],
                grid=f"{g['visited']}/{g['total']}",
            )
        if self.pending_only:
            text += "  " + t("patrol.pending_only", n=len(rows))
        self.query_one("#patrol-coverage", Static).update(text)

    def current(self):
        table = self.query_one("#households", DataTable)
        if not self.rows or table.cursor_row is None or table.cursor_row >= len(self.rows):
            return None
        return self.rows[table.cursor_row]

    # -- actions ----------------------------------------------------------------------------
    def action_toggle_pending(self) -> None:
        self.pending_only = not self.pending_only

    @on(DataTable.RowSelected, "#households")
    def _row_selected(self) -> None:
        self.action_card()

    def action_card(self) -> None:
        h = self.current()
        if h is not None:
            self.open_card(h)

    # Dialogs return through callbacks: no worker waits on a person typing.
    def open_card(self, h) -> None:
        ledger = store_of(self).ledger

        def done(choice: str | tuple[str, str] | None) -> None:
            if choice == "visit":
                self.open_visit(h)
            elif choice == "add":
                self.open_member(h, None)
            elif choice == "household":
                self.open_household_form(h)
            elif isinstance(choice, tuple):
                member = ledger.member(choice[1])
                if member is not None:
                    (self.edit_member if choice[0] == "edit" else self.remove_member)(h, member)

        card = HouseholdCard(
            h, ledger.members(h.id), ledger.visits(h.id), ledger.landlord_masked(h.id)
        )
        fieldkit_app(self).push_screen(card, done)

    def action_add_household(self) -> None:
        """新增住户: the highlighted household's 小区, building and unit filled in (a new family
        in an empty flat next door), or the unit chosen in the place list."""
        here = self.current()
        if here is not None:
            defaults = {"grid": here.grid, "community": here.community}
            defaults |= {"building": here.building, "unit": here.unit}
        elif self.place is not None:
            defaults = {"building": self.place[0], "unit": self.place[1] or ""}
        else:
            defaults = {}
        self.open_household_form(None, defaults)

    def open_household_form(self, h, defaults: dict[str, Any] | None = None) -> None:
        """Add (``h`` None) or edit a household; then its card, for its members (an address
        the ledger has already opens that household, said in one line)."""
        from .household_form import HouseholdForm

        app = fieldkit_app(self)
        ledger = store_of(self).ledger
        landlord = ledger.landlord_masked(h.id) if h is not None else None

        def done(result: dict | None) -> None:
            if result is None:
                if h is not None:
                    self.reopen_card(h)
                return
            fresh = ledger.household(result.get("existing") or result["id"])
            if fresh is None:
                return
            place = f"{fresh.building}-{fresh.unit}-{fresh.room}"
            if "existing" in result:
                app.notify(app.t("fixhousehold.exists", place=place), severity="warning")
            elif result["result"] != "unchanged":
                app.notify(app.t(f"fixhousehold.{result['result']}", place=place))
            self.place = (fresh.building, fresh.unit)
            self.load_places()
            self.open_card(fresh)

        app.push_screen(HouseholdForm(h, defaults=defaults, landlord=landlord), done)

    def reopen_card(self, h) -> None:
        """Back to the (re-read) household card after a member was edited or removed (the list
        behind it is re-read when the card closes: ``on_screen_resume``)."""
        fresh = store_of(self).ledger.household(h.id)
        if fresh is not None:
            self.open_card(fresh)

    def edit_member(self, h, member) -> None:
        from .member_form import MemberForm

        def done(result: dict | None) -> None:
            if result is None:
                self.reopen_card(h)
                return
            if result["saved"]:
                fieldkit_app(self).notify(
                    fieldkit_app(self).t(
                        "patrol.mform.saved", name=member.name_masked or member.id_masked or ""
                    )
                )
            if result["release"]:
                self.release_member(h, member)
            else:
                self.reopen_card(h)

        fieldkit_app(self).push_screen(MemberForm(h, member), done)

    def release_member(self, h, member) -> None:
        """解除 chosen on the member form: the supervisor-confirmed release of monitoring."""
        from .monitoring_dialogs import ReleaseDialog

        fresh = store_of(self).ledger.member(member.id) or member
        person = {
            "id": fresh.id,
            "name_masked": fresh.name_masked or fresh.id_masked,
            "place": f"{h.building}-{h.unit}-{h.room}",
            "status_end": fresh.status_end,
        }

        def done(released: bool | None) -> None:
            if released:
                fieldkit_app(self).notify(
                    fieldkit_app(self).t("mon.released", name=person["name_masked"] or "")
                )
            self.reopen_card(h)

        fieldkit_app(self).push_screen(ReleaseDialog(person), done)

    def remove_member(self, h, member) -> None:
        from .member_form import RemoveMemberDialog

        def done(reason: str | None) -> None:
            if reason is not None:
                try:
                    store_of(self).ledger.remove_member(member.id, reason)
                except FieldkitError as exc:
                    self._failed(exc)
                else:
                    fieldkit_app(self).notify(
                        fieldkit_app(self).t(
                            "patrol.mremove.done", name=member.name_masked or member.id_masked or ""
                        )
                    )
            self.reopen_card(h)

        fieldkit_app(self).push_screen(RemoveMemberDialog(h, member), done)

    def action_visit(self) -> None:
        h = self.current()
        if h is not None:
            self.focus_households()
            self.open_visit(h)

    def open_visit(self, h) -> None:
        members = store_of(self).ledger.members(h.id)

        def done(result: dict | None) -> None:
            if result is not None:
                self.save_visit(h, result)

        fieldkit_app(self).push_screen(VisitDialog(h, members), done)

    def action_quick(self, outcome: str) -> None:
        h = self.current()
        if h is not None:
            self.focus_households()
            self.save_visit(h, {"outcome": outcome})

    @work(thread=True, exit_on_error=False, group="patrol-save")
    def save_visit(self, h, fields: dict[str, Any]) -> None:
        try:
            outcome = fields.pop("outcome")
            visit = store_of(self).ledger.record_visit(h.id, outcome, **fields)
        except FieldkitError as exc:
            fieldkit_app(self).call_from_thread(self._failed, exc)
            return
        fieldkit_app(self).call_from_thread(self._visit_saved, h, visit)

    def _visit_saved(self, h, visit: dict[str, Any]) -> None:
        t = fieldkit_app(self).t
        fieldkit_app(self).notify(
            t("patrol.visit_saved", room=h.room, outcome=t("ledger.outcome." + visit["outcome"]))
        )
        if visit["abnormal"]:
            from .widgets.dialogs import AlertScreen

            rules = fieldkit_app(self).settings.rules
            fieldkit_app(self).push_screen(
                AlertScreen(
                    t("patrol.referral_title"),
                    [t("patrol.referral_line", room=h.room, n=len(visit["abnormal"]))],
                    [t("patrol.referral_step", call=rules.emergency_number)],
                    "referral",
                )
            )
        self.refresh_households()
        self.load_places()

    def _failed(self, exc: Exception) -> None:
        fieldkit_app(self).notify(fieldkit_app(self).error_text(exc), severity="error")

    def action_add_member(self) -> None:
        h = self.current()
        if h is not None:
            self.focus_households()
            self.open_member(h, None)

    def open_member(self, h, id_number: str | None) -> None:
        """The new-member dialog saves the person itself (what the ledger refuses is said there,
        with the form kept); here the notice and the re-read list."""

        def done(saved: dict | None) -> None:
            if saved is None:
                return
            fieldkit_app(self).notify(fieldkit_app(self).t("patrol.member_saved", room=h.room))
            self.refresh_households()

        fieldkit_app(self).push_screen(MemberDialog(h, id_number), done)

    # -- scans ------------------------------------------------------------------------------
    def handle_scan(self, message: ScanRead) -> None:
        """A scanned ID: go to the person's household, or add them to the highlighted one.

        A number the ledger cannot take (a wrong check digit, say) is one sentence, masked; the
        ledger's own refusal too (never an exception out of a scan)."""
        app = fieldkit_app(self)
        result = message.result
        if getattr(result, "kind", None) != "resident_id":
            app.notify(app.t("patrol.scan_not_id"), severity="warning")
            return
        number = (result.parsed or {}).get("number")
        if not number:
            return
        ident = parse_identity(number)
        if ident.problem or not ident.number:
            app.notify(
                app.t(
                    "patrol_trial.scan_bad_id",
                    id=mask_id(number),
                    problem=translate_id_problem(ident, app.t),
                ),
                severity="warning",
            )
            return
        self.focus_households()
        ledger = store_of(self).ledger
        try:
            member = ledger.find_member(number)
            h = None if member is None else ledger.household(member.household_id)
        except FieldkitError as exc:
            self._failed(exc)
            return
        if member is None or h is None:
            here = self.current()
            if here is None:
                app.notify(app.t("patrol.scan_no_household"), severity="warning")
                return
            self.open_member(here, number)
            return
        app.notify(
            app.t(
                "patrol.scan_found",
                name=member.name_masked or "",
                place=f"{h.building}-{h.unit}-{h.room}",
            )
        )
        if (h.building, h.unit) in self.places:
            self.query_one("#places", OptionList).highlighted = self.places.index(
                (h.building, h.unit)
            )
        self.place = (h.building, h.unit)
        self.open_card(h)


SCREENS = [ScreenEntry("patrol", "patrol.title", PatrolScreen, ("patrol", "supervisor"), "f11")]
