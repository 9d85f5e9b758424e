"""Supervisor console (值班负责人): the shift and its handover, today's figures, and the way to
reports, exports, sync, operators and the retention purge.

Opening and closing a shift, a full export and a purge each need a supervisor's PIN typed in
the dialog (checked, counted and audited like a login); the incoming supervisor can open the
shift on the outgoing one's session. Every number comes from :mod:`fieldkit.reports`, counted
in a worker thread.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input, Label, Static

from ..errors import InputError
from ..reports import (
    close_shift,
    daily_report,
    open_shift,
    plan_purge,
    purge,
    shift_summary,
)
from ..reports.builders import ShiftSummary
from ..reports.text import alert_lines, handover_text, purge_text, reconciliation_lines
from . import supervisor_common as common
from .screen_entry import ScreenEntry
from .supervisor_common import PinDialog, abnormal_text, figure_lines, run_in_thread
from .typed import fieldkit_app, store_of
from .widgets import StatusBar, translate_bindings

TODAY_ROWS = (
    ("entries", "exits"),
    ("inside_at_end", "turned_back"),
    ("denied", "referred"),
    ("fever", "red"),
    ("yellow", "keyperson_hits"),
    ("isolation_leaving", "vehicles"),
    ("households_visited", "readings_missed"),
    ("pending", "quarantined"),
)


def shift_lines(
    summary: ShiftSummary | None, handover: dict[str, Any] | None, t, lang: str
) -> list[str]:
    """The shift panel: the open shift with its reconciliation, or the last handover."""
    if summary is None or summary.closed_at:
        lines = [t("sup.no_shift"), ""]
        lines += handover_text(handover, lang).splitlines()
        return lines
    lines = [
        t(
            "sup.shift_line",
            id=summary.shift_id[:8],
            by=summary.opened_by,
            at=summary.opened_at[11:16],
        )
    ]
    if summary.previous and summary.previous.get("handover_note"):
        lines.append(t("report.previous_handover", note=summary.previous["handover_note"]))
    lines.append(
        t(
            "sup.shift_counts",
            entries=summary.counts.entries,
            exits=summary.counts.exits,
            total=summary.counts.total,
        )
    )
    lines += reconciliation_lines(summary, lang)
    lines += alert_lines(summary, lang, limit=4)
    lines.append(t("report.unsynced_line", **summary.unsynced))
    return lines


class SupervisorScreen(Screen):
    """Home of the supervisor: shift panel on the left, today's figures on the right."""

    CSS_PATH = "supervisor.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("o", "open_shift", "keys.sup_open", id="sup.open_shift"),
        Binding("c", "close_shift", "keys.sup_close", id="sup.close_shift"),
        Binding("r", "goto('reports')", "keys.sup_reports", id="sup.reports"),
        Binding("x", "export", "keys.sup_export", id="sup.export"),
        Binding("s", "goto('sync')", "keys.sup_sync", id="sup.sync"),
        Binding("u", "goto('operators')", "keys.sup_operators", id="sup.operators"),
        Binding("d", "purge", "keys.sup_purge", id="sup.purge"),
        Binding("f5", "refresh", "keys.sup_refresh", id="sup.refresh", show=False),
    ]

    def compose(self) -> ComposeResult:
        t = fieldkit_app(self).t
        yield StatusBar()
        yield Label(t("sup.title"), id="sup-title", classes="screen-title")
        with Horizontal(id="sup-panels"):
            with Vertical(id="shift-panel", classes="panel"):
                yield Label(t("sup.shift_heading"), classes="panel-title")
                yield Static("", id="shift-text", markup=False)
            with Vertical(id="today-panel", classes="panel"):
                yield Label("", id="today-title", classes="panel-title")
                yield Static("", id="today-verdict", markup=False)
                yield Static("", id="today-text", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        translate_bindings(self, fieldkit_app(self).t)
        self.action_refresh()
        self.set_interval(30, self.action_refresh)

    def on_screen_resume(self) -> None:
        self.action_refresh()

    def on_store_changed(self) -> None:
        self.action_refresh()

    # -- figures ----------------------------------------------------------------------------
    def action_refresh(self) -> None:
        store = store_of(self)
        day = common.today()

        def load():
            current = store.shifts.current()
            summary = shift_summary(store, current["id"]) if current else None
            return summary, store.shifts.handover(), daily_report(store, day)

        run_in_thread(self, load, self._show)

    def _show(self, loaded) -> None:
        summary, handover, report = loaded
        t, lang = fieldkit_app(self).t, fieldkit_app(self).lang
        self.query_one("#shift-text", Static).update(
            "\n".join(shift_lines(summary, handover, t, lang))
        )
        self.query_one("#today-title", Label).update(t("sup.today_heading", day=report.day))
        verdict = self.query_one("#today-verdict", Static)
        if report.zero_report:
            verdict.update(t("sup.zero_report"))
        else:
            verdict.update(abnormal_text(report.abnormal, t, lang))
        verdict.set_class(not report.zero_report, "-abnormal")
        values = {
            **vars(report.counts),
            "inside_at_end": report.inside_at_end,
            "households_visited": report.households_visited,
            "readings_missed": report.readings_missed,
            **report.unsynced,
        }
        self.query_one("#today-text", Static).update("\n".join(figure_lines(values, t, TODAY_ROWS)))

    # -- actions ----------------------------------------------------------------------------
    async def action_goto(self, screen_id: str) -> None:
        await fieldkit_app(self).open_screen(screen_id)

    def action_open_shift(self) -> None:
        def done(opened) -> None:
            if opened is not None:
                fieldkit_app(self).notify(
                    fieldkit_app(self).t("report.shift_opened", id=opened.shift_id[:8])
                )
                fieldkit_app(self).refresh_status()
                self.action_refresh()

        fieldkit_app(self).push_screen(ShiftOpenDialog(), done)

    def action_close_shift(self) -> None:
        def done(summary) -> None:
            if summary is not None:
                fieldkit_app(self).notify(
                    fieldkit_app(self).t("report.shift_closed_ok", id=summary.shift_id[:8])
                )
                fieldkit_app(self).refresh_status()
                self.action_refresh()

        fieldkit_app(self).push_screen(ShiftCloseDialog(), done)

    def action_export(self) -> None:
        from .exports_dialog import ExportDialog

        fieldkit_app(self).push_screen(ExportDialog(kind="shift-log"), self._exported)

    def _exported(self, result) -> None:
        if result is not None:
            fieldkit_app(self).notify(
                fieldkit_app(self).t("sup.exported", rows=result.rows, path=str(result.path))
            )

    def action_purge(self) -> None:
        def done(plan) -> None:
            if plan is not None:
                fieldkit_app(self).notify(
                    purge_text(plan, fieldkit_app(self).lang).splitlines()[0], timeout=8
                )
                fieldkit_app(self).refresh_status()
                self.action_refresh()

        fieldkit_app(self).push_screen(PurgeDialog(), done)

    def palette_commands(self) -> Iterable[SystemCommand]:
        t = fieldkit_app(self).t
        for action, key in (
            ("open_shift", "keys.sup_open"),
            ("close_shift", "keys.sup_close"),
            ("export", "keys.sup_export"),
            ("purge", "keys.sup_purge"),
            ("refresh", "keys.sup_refresh"),
        ):
            yield SystemCommand(t(key), t("sup.palette_help"), lambda a=action: self.run_action(a))


# -- dialogs ----------------------------------------------------------------------------------


class ShiftOpenDialog(PinDialog):
    """Opening a shift: the previous shift's handover first, then a note and the PIN."""

    def compose(self) -> ComposeResult:
        t = fieldkit_app(self).t
        with Vertical(classes="dialog wide", id="shift-open-box"):
            yield Label(t("sup.open_title"), classes="dialog-title")
            yield Static(t("sup.loading"), id="handover-text", markup=False)
            with Horizontal(classes="pin-row"):
                yield Label(t("sup.open_note"), classes="field-label")
                yield Input(id="shift-note", compact=True, max_length=200)
            yield from self.pin_fields()
        yield from self.footer()

    def on_mount(self) -> None:
        super().on_mount()
        store = store_of(self)
        run_in_thread(self, store.shifts.handover, self._show_handover)
        self.query_one("#shift-note", Input).focus()

    def _show_handover(self, handover) -> None:
        self.query_one("#handover-text", Static).update(
            handover_text(handover, fieldkit_app(self).lang)
        )

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "shift-note":
            self.query_one("#pin-pin", Input).focus()

    def values(self) -> dict[str, Any]:
        return {"note": self.query_one("#shift-note", Input).value}

    def perform(self, supervisor, values: dict[str, Any]):
        if store_of(self).shifts.current() is not None:
            raise InputError(fieldkit_app(self).t("sup.already_open"))
        return open_shift(store_of(self), values["note"], by=supervisor)


class ShiftCloseDialog(PinDialog):
    """Closing a shift: the reconciliation and open alerts, the handover note, the PIN."""

    def compose(self) -> ComposeResult:
        t = fieldkit_app(self).t
        with Vertical(classes="dialog wide", id="shift-close-box"):
            yield Label(t("sup.close_title"), classes="dialog-title")
            yield Static(t("sup.loading"), id="close-preview", markup=False)
            with Horizontal(classes="pin-row"):
                yield Label(t("sup.handover_note"), classes="field-label")
                yield Input(
                    id="handover-note",
                    compact=True,
                    max_length=500,
                    placeholder=t("sup.handover_hint"),
                )
            yield from self.pin_fields()
        yield from self.footer()

    def on_mount(self) -> None:
        super().on_mount()
        store = store_of(self)

        def load():
            current = store.shifts.current()
            return shift_summary(store, current["id"]) if current else None

        run_in_thread(self, load, self._preview)
        self.query_one("#handover-note", Input).focus()

    def _preview(self, summary: ShiftSummary | None) -> None:
        t, lang = fieldkit_app(self).t, fieldkit_app(self).lang
        if summary is None:
            self.query_one("#close-preview", Static).update(t("sup.no_shift"))
            return
        lines = [
            t(
                "sup.shift_line",
                id=summary.shift_id[:8],
                by=summary.opened_by,
                at=summary.opened_at[11:16],
            )
        ]
        lines += reconciliation_lines(summary, lang)
        lines += alert_lines(summary, lang, limit=3)
        lines.append(t("report.unsynced_line", **summary.unsynced))
        self.query_one("#close-preview", Static).update("\n".join(lines))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "handover-note":
            self.query_one("#pin-pin", Input).focus()

    def ready(self) -> str | None:
        if not self.query_one("#handover-note", Input).value.strip():
            self.query_one("#handover-note", Input).focus()
            return fieldkit_app(self).t("sup.note_needed")
        return None

    def values(self) -> dict[str, Any]:
        return {"note": self.query_one("#handover-note", Input).value}

    def perform(self, supervisor, values: dict[str, Any]):
        if store_of(self).shifts.current() is None:
            raise InputError(fieldkit_app(self).t("sup.no_shift"))
        return close_shift(store_of(self), values["note"], by=supervisor)


class PurgeDialog(PinDialog):
    """Retention purge: what would go (and what is kept because it is not synced), then PIN."""

    def compose(self) -> ComposeResult:
        t = fieldkit_app(self).t
        with Vertical(classes="dialog wide", id="purge-box"):
            yield Label(t("sup.purge_title"), classes="dialog-title")
            yield Static(t("sup.loading"), id="purge-plan", markup=False)
            yield Static(t("sup.purge_warning"), classes="warning-line")
            yield from self.pin_fields()
        yield from self.footer()

    def on_mount(self) -> None:
        super().on_mount()
        self.plan = None
        run_in_thread(self, lambda: plan_purge(store_of(self)), self._show_plan)
        self.query_one("#pin-pin", Input).focus()

    def _show_plan(self, plan) -> None:
        self.plan = plan
        text = (
            purge_text(plan, fieldkit_app(self).lang)
            if plan.total or plan.kept_unsynced
            else fieldkit_app(self).t("purge.nothing")
        )
        self.query_one("#purge-plan", Static).update(text)

    def ready(self) -> str | None:
        if self.plan is None:
            return fieldkit_app(self).t("sup.loading")
        if self.plan.total == 0:
            return fieldkit_app(self).t("purge.nothing")
        return None

    def perform(self, supervisor, values: dict[str, Any]):
        return purge(store_of(self), by=supervisor)


def _screens() -> list[ScreenEntry]:
    from .operators import OperatorsScreen
    from .reports_screen import ReportsScreen
    from .sync_screen import SyncScreen

    return [
        ScreenEntry("supervisor", "sup.title", SupervisorScreen, ("supervisor",), "f12"),
        ScreenEntry("reports", "sup.reports_title", ReportsScreen, ("supervisor",)),
        ScreenEntry("sync", "syncscreen.title", SyncScreen, ("supervisor",)),
        ScreenEntry("operators", "ops.title", OperatorsScreen, ("supervisor",)),
    ]


SCREENS = _screens()
