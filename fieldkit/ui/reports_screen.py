"""Reports on screen: the daily report (or zero report) for a date, category totals as of that
date, and charts — passages per hour, temperatures against the fever threshold, coverage per
building. ←/→ change the day, 1/2/3 the chart, x exports.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from typing import ClassVar

from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Footer, Label, Static

from ..reports import (
    category_totals,
    coverage_per_building,
    daily_report,
    hourly,
    temperature_histogram,
)
from ..reports.text import totals_text
from . import supervisor_common as common
from .charts import CoverageChart, HourlyChart, TemperatureChart
from .supervisor_common import abnormal_text, figure_lines, run_in_thread
from .typed import fieldkit_app, store_of
from .widgets import StatusBar, translate_bindings

REPORT_ROWS = (
    ("entries", "exits"),
    ("turned_back", "denied"),
    ("referred", "fever"),
    ("green", "yellow"),
    ("red", "no_code"),
    ("keyperson_hits", "isolation_leaving"),
    ("positive_tests", "not_measured"),
    ("vehicles", "vehicles_refused"),
    ("households_visited", "readings_missed"),
    ("inside_at_end", "pending"),
)
CHARTS = ("hourly", "temperature", "coverage")


class ReportsScreen(Screen):
    CSS_PATH = "supervisor.tcss"
    # The chart's title, legend and [1/2/3] wrap onto a second line rather than lose their end
    # at 80 columns (the panel is half the screen).
    DEFAULT_CSS = "ReportsScreen #chart-title { width: 100%; height: auto; }"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left", "shift_day(-1)", "keys.sup_prev_day", id="rep.prev"),
        Binding("right", "shift_day(1)", "keys.sup_next_day", id="rep.next"),
        Binding("t", "today", "keys.sup_today", id="rep.today"),
        Binding("1", "chart('hourly')", "keys.sup_chart_hourly", id="rep.hourly", show=False),
        Binding("2", "chart('temperature')", "keys.sup_chart_temp", id="rep.temp", show=False),
        Binding("3", "chart('coverage')", "keys.sup_chart_cover", id="rep.cover", show=False),
        Binding("a", "toggle_totals", "keys.sup_totals", id="rep.totals"),
        Binding("x", "export", "keys.sup_export", id="rep.export"),
        Binding("escape", "back", "keys.sup_back", id="rep.back"),
    ]

    day: reactive[date] = reactive(date.today, init=False)
    chart: reactive[str] = reactive("hourly", init=False)
    show_totals: reactive[bool] = reactive(False, init=False)

    def compose(self) -> ComposeResult:
        yield StatusBar()
        yield Label("", id="report-title", classes="screen-title")
        yield Static("", id="report-verdict", markup=False)
        with Horizontal(id="report-body"):
            yield Static("", id="report-figures", classes="panel", markup=False)
            with Vertical(id="chart-panel", classes="panel"):
                yield Label("", id="chart-title", classes="panel-title")
                with ContentSwitcher(initial="chart-hourly", id="charts"):
                    yield HourlyChart(id="chart-hourly")
                    yield TemperatureChart(id="chart-temperature")
                    yield CoverageChart(id="chart-coverage")
        yield Footer()

    def on_mount(self) -> None:
        translate_bindings(self, fieldkit_app(self).t)
        self.set_reactive(ReportsScreen.day, common.today())
        self._chart_title()
        self.load()

    def on_screen_resume(self) -> None:
        self.load()

    def watch_day(self) -> None:
        self.load()

    def watch_show_totals(self) -> None:
        self.load()

    def watch_chart(self, name: str) -> None:
        self.query_one("#charts", ContentSwitcher).current = f"chart-{name}"
        self._chart_title()

    def _chart_title(self) -> None:
        """Title and legend above the chart (plotext would misplace Chinese legend text)."""
        t = fieldkit_app(self).t
        threshold = f"{fieldkit_app(self).settings.rules.fever_threshold:.1f}"
        title, legend = {
            "hourly": (
                t("chart.hourly_title"),
                [("green", t("chart.in")), ("dark_orange", t("chart.out"))],
            ),
            "temperature": (
                t("chart.temperature_short"),
                [
                    ("blue", t("chart.normal_series")),
                    ("red", t("chart.fever_series", threshold=threshold)),
                ],
            ),
            "coverage": (
                t("chart.coverage_title"),
                [("blue", t("chart.households")), ("green", t("chart.visited"))],
            ),
        }[self.chart]
        keys = "  ".join(f"[{colour}]██[/] {escape(label)}" for colour, label in legend)
        self.query_one("#chart-title", Label).update(f"{escape(title)}  {keys}  \\[1/2/3]")

    # -- data -------------------------------------------------------------------------------
    def load(self) -> None:
        store, day, totals = store_of(self), self.day.isoformat(), self.show_totals

        def read():
            return (
                daily_report(store, day),
                category_totals(store, day) if totals else None,
                hourly(store, day=day),
                temperature_histogram(store, day=day),
                coverage_per_building(store),
            )

        run_in_thread(self, read, self._show)

    def _show(self, loaded) -> None:
        report, totals, series, hist, coverage = loaded
        if report.day != self.day.isoformat():
            return  # an older load finished after the day changed
        t, lang = fieldkit_app(self).t, fieldkit_app(self).lang
        self.query_one("#report-title", Label).update(t("sup.report_title", day=report.day))
        verdict = self.query_one("#report-verdict", Static)
        if report.before_setup:  # no report for a day before the device existed
            verdict.update(t("report.before_setup", day=report.day, set_up=report.set_up_on))
        elif report.zero_report:
            verdict.update(t("report.zero_line"))
        else:
            verdict.update(abnormal_text(report.abnormal, t, lang))
        verdict.set_class(bool(report.abnormal), "-abnormal")
        figures = self.query_one("#report-figures", Static)
        if totals is not None:
            figures.update(totals_text(totals, lang))
        else:
            values = {
                **vars(report.counts),
                "inside_at_end": report.inside_at_end,
                "households_visited": report.households_visited,
                "readings_missed": report.readings_missed,
                **report.unsynced,
            }
            lines = figure_lines(values, t, REPORT_ROWS, cell=15)
            if not report.ledger_available:
                lines.append(t("report.no_ledger"))
            figures.update("\n".join(lines))
        self.query_one(HourlyChart).show(series)
        self.query_one(TemperatureChart).show(hist)
        self.query_one(CoverageChart).show(coverage)

    # -- actions ----------------------------------------------------------------------------
    def action_shift_day(self, delta: int) -> None:
        new = self.day + timedelta(days=delta)
        if new <= common.today():
            self.day = new

    def action_today(self) -> None:
        self.day = common.today()

    def action_chart(self, name: str) -> None:
        self.chart = name

    def action_toggle_totals(self) -> None:
        self.show_totals = not self.show_totals

    def action_export(self) -> None:
        from .exports_dialog import ExportDialog

        def done(result) -> None:
            if result is not None:
                fieldkit_app(self).notify(
                    fieldkit_app(self).t("sup.exported", rows=result.rows, path=str(result.path))
                )

        fieldkit_app(self).push_screen(ExportDialog(kind="daily", day=self.day), done)

    async def action_back(self) -> None:
        await fieldkit_app(self).open_screen("supervisor")

    def palette_commands(self) -> Iterable[SystemCommand]:
        t = fieldkit_app(self).t
        for action, key in (
            ("today", "keys.sup_today"),
            ("toggle_totals", "keys.sup_totals"),
            ("chart('hourly')", "keys.sup_chart_hourly"),
            ("chart('temperature')", "keys.sup_chart_temp"),
            ("chart('coverage')", "keys.sup_chart_cover"),
            ("export", "keys.sup_export"),
        ):
            yield SystemCommand(t(key), t("sup.palette_help"), lambda a=action: self.run_action(a))
