"""Charts in the terminal (textual-plotext): passages per hour in vs out, the temperature
distribution with the fever threshold marked, household coverage per building.

Each widget takes the same series the exported workbook charts use
(:mod:`fieldkit.reports.builders`), so the screen and the spreadsheet never disagree. Titles
and legends are in the surrounding screen (plotext counts a Chinese character as one column
and would misplace them); tick labels are numbers. For the same reason "no data" is not drawn by
plotext but by the widget itself, centred, in place of the plot.
"""

from __future__ import annotations

from rich.align import Align
from rich.text import Text
from textual.app import RenderResult
from textual_plotext import PlotextPlot

from ..reports.builders import HourlySeries, TemperatureHistogram
from ..reports.ledger_data import BuildingCoverage
from .typed import fieldkit_app


def _integer_ticks(plt, top: int) -> None:
    """Counts are whole people: no 0.83 on the axis."""
    top = max(1, top)
    step = max(1, -(-top // 4))
    plt.yticks(list(range(0, top + step, step)))


class _Chart(PlotextPlot):
    DEFAULT_CSS = "_Chart { height: 1fr; min-height: 8; }"
    no_data = True

    def on_mount(self) -> None:
        super().on_mount()
        self.empty()

    def empty(self) -> None:
        self.no_data = True
        self.plt.clear_data()
        self.plt.clear_figure()
        self.refresh()

    def render(self) -> RenderResult:
        if self.no_data:  # the widget's own words: plotext would count 暂 as one column
            text = Text(fieldkit_app(self).t("chart.no_data"), style="dim")
            return Align.center(text, vertical="middle")
        return super().render()


class HourlyChart(_Chart):
    """Clustered bars per hour: in (green) and out (orange)."""

    def show(self, series: HourlySeries) -> None:
        if not any(series.entries) and not any(series.exits):
            self.empty()
            return
        self.no_data = False
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.multiple_bar(series.hours, [series.entries, series.exits], color=["green", "orange"])  # type: ignore[arg-type]  # plotext: one colour a series
        plt.xticks(list(range(0, 24, 3)), [f"{h:02d}" for h in range(0, 24, 3)])
        _integer_ticks(plt, max(series.entries + series.exits))
        self.refresh()


class TemperatureChart(_Chart):
    """Stacked bars: normal readings blue, at or above the threshold red, and a red line on the
    threshold itself (it falls on a bin edge, so the line sits between the two colours)."""

    def show(self, hist: TemperatureHistogram) -> None:
        if not any(hist.counts):
            self.empty()
            return
        self.no_data = False
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        xs = list(range(len(hist.labels)))
        plt.stacked_bar(xs, [hist.below, hist.above], color=["blue", "red"])  # type: ignore[arg-type]  # plotext: one colour a series
        edge = hist.fever.index(True, 1) - 0.5  # first fever bin after the "below" end bin
        plt.vline(edge, "red")
        ticks = [0, edge, len(xs) - 1]
        labels = [hist.labels[0], f"{hist.threshold:.1f}", hist.labels[-1]]
        for i, label in enumerate(hist.labels):
            if label.endswith(".0") and abs(i - edge) > 4:
                ticks.append(i)
                labels.append(label[:-2])
        order = sorted(range(len(ticks)), key=ticks.__getitem__)
        plt.xticks([ticks[i] for i in order], [labels[i] for i in order])
        _integer_ticks(plt, max(hist.counts))
        self.refresh()


class CoverageChart(_Chart):
    """Per building: households registered and households visited."""

    def show(self, coverage: list[BuildingCoverage]) -> None:
        if not coverage:
            self.empty()
            return
        self.no_data = False
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        names = [c.building for c in coverage]
        plt.multiple_bar(
            names,
            [[c.households for c in coverage], [c.visited for c in coverage]],
            color=["blue", "green"],  # type: ignore[arg-type]  # plotext: one colour a series
        )
        _integer_ticks(plt, max(c.households for c in coverage))
        self.refresh()
