"""The XLSX writer before fieldkit/sheets (openpyxl write-only): bench/reports.py's baseline.

Lay a :class:`Document` out as an Excel workbook (台账), with openpyxl.

Sheets: a summary (label | value), the detail table (frozen header row, filters, widths fitted
to the content, real date/time and number cells) and a chart sheet: passages per hour in vs
out, the temperature distribution with the fever threshold marked (bins at or above it in a
second, red series), and coverage per building when the household ledger exists.
"""

from __future__ import annotations

import io
import unicodedata
from datetime import date, datetime
from typing import Any, BinaryIO

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.chart import BarChart, Reference
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter

from fieldkit.i18n import t
from fieldkit.reports.document import ChartData, Document

HEADER_FONT = Font(bold=True)
HEADER_FILL = PatternFill("solid", fgColor="DDE4EE")
FORMATS = {"datetime": "yyyy-mm-dd hh:mm:ss", "date": "yyyy-mm-dd", "number": "0.0", "int": "0"}
FEVER_RED, NORMAL_BLUE, IN_GREEN, OUT_ORANGE = "C0392B", "4A78B5", "3C8D5A", "D68A2E"
MAX_WIDTH, MIN_WIDTH = 48, 6


def display_width(value: Any) -> int:
    """Characters as a spreadsheet shows them: CJK and full-width ones take two columns."""
    if value is None:
        return 0
    if isinstance(value, datetime):
        return 19
    if isinstance(value, date):
        return 10
    text = str(value)
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _cell(ws: Any, value: Any, kind: str = "text", *, header: bool = False) -> Any:
    """A value for ``ws.append``: plain where Excel's defaults are right, else a styled cell."""
    if isinstance(value, str):
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
        plain = not value.startswith("=")
    else:
        plain = value is None or (kind not in FORMATS and not isinstance(value, date))
    if plain and not header:
        return value
    cell = WriteOnlyCell(ws, value=value)
    if isinstance(value, str) and value.startswith("="):
        # Text typed at the gate must never become a formula in the office's Excel.
        cell.data_type = "s"
    if header:
        cell.font = HEADER_FONT
        cell.fill = HEADER_FILL
    if isinstance(value, datetime):
        cell.number_format = FORMATS["datetime"]
    elif isinstance(value, date):
        cell.number_format = FORMATS["date"]
    elif value is not None and kind in FORMATS:
        cell.number_format = FORMATS[kind]
    return cell


def _widths(ws: Any, columns: list[list[Any]]) -> None:
    """Fitted to the content (first 2000 rows), set before any row is written."""
    for idx, values in enumerate(columns, start=1):
        widest = max((display_width(v) for v in values[:2000]), default=0)
        ws.column_dimensions[get_column_letter(idx)].width = max(
            MIN_WIDTH, min(MAX_WIDTH, widest + 2)
        )


def _summary_sheet(ws: Any, doc: Document) -> None:
    lang = doc.lang
    headers = [t("export.col.item", lang), t("export.col.value", lang)]
    _widths(
        ws,
        [
            [headers[0]] + [label for label, _ in doc.summary],
            [headers[1]] + [value for _, value in doc.summary],
        ],
    )
    ws.freeze_panes = "A2"
    ws.append([_cell(ws, h, header=True) for h in headers])
    for label, value in doc.summary:
        ws.append(
            [
                _cell(ws, label),
                _cell(
                    ws,
                    value,
                    "int" if isinstance(value, int) and not isinstance(value, bool) else "text",
                ),
            ]
        )


def _table_sheet(ws: Any, doc: Document) -> None:
    table = doc.table
    assert table is not None
    headers = [doc.header(c) for c in table.columns]
    _widths(ws, [[h] + [row[i] for row in table.rows[:2000]] for i, h in enumerate(headers)])
    ws.freeze_panes = "A2"
    if table.rows:
        ws.auto_filter.ref = f"A1:{get_column_letter(len(headers))}{len(table.rows) + 1}"
    ws.append([_cell(ws, h, header=True) for h in headers])
    kinds = [c.kind for c in table.columns]
    for row in table.rows:
        ws.append([_cell(ws, v, k) for v, k in zip(row, kinds, strict=False)])


def _bar(title: str, x_title: str, y_title: str, *, stacked: bool = False) -> BarChart:
    chart = BarChart()
    chart.type = "col"
    chart.title = title
    chart.x_axis.title = x_title
    chart.y_axis.title = y_title
    chart.height, chart.width = 8.5, 18
    # openpyxl ≥ 3.1 hides axes unless told otherwise; Excel then shows bars without labels.
    chart.x_axis.delete = False
    chart.y_axis.delete = False
    if stacked:
        chart.grouping = "stacked"
        chart.overlap = 100
    return chart


def _colour(chart: BarChart, colours: list[str]) -> None:
    for series, colour in zip(chart.series, colours, strict=False):
        series.graphicalProperties.solidFill = colour
        series.graphicalProperties.line.solidFill = colour


class _Rows:
    """Appends rows and remembers where each table starts (write-only sheets go forward)."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.row = 0

    def add(self, values: list[Any], *, header: bool = False) -> int:
        self.ws.append(
            [
                _cell(
                    self.ws,
                    v,
                    "number" if isinstance(v, float) else "text",
                    header=header and v is not None,
                )
                for v in values
            ]
        )
        self.row += 1
        return self.row

    def gap(self, n: int = 2) -> None:
        for _ in range(n):
            self.add([])


def _chart_sheet(ws: Any, data: ChartData, lang: str) -> None:
    """Data tables in columns A–D, each with its chart to the right of it."""
    for col, width in zip("ABCD", (14, 12, 18, 10), strict=False):
        ws.column_dimensions[col].width = width
    rows = _Rows(ws)
    charts: list[tuple[BarChart, str]] = []

    # Passages per hour, in vs out.
    top = rows.add([t("chart.hour", lang), t("chart.in", lang), t("chart.out", lang)], header=True)
    for h, n_in, n_out in zip(
        data.hourly.hours, data.hourly.entries, data.hourly.exits, strict=False
    ):
        end = rows.add([f"{h:02d}", n_in, n_out])
    chart = _bar(t("chart.hourly_title", lang), t("chart.hour", lang), t("chart.people", lang))
    chart.add_data(
        Reference(ws, min_col=2, max_col=3, min_row=top, max_row=end), titles_from_data=True
    )
    chart.set_categories(Reference(ws, min_col=1, min_row=top + 1, max_row=end))
    _colour(chart, [IN_GREEN, OUT_ORANGE])
    charts.append((chart, f"F{top + 1}"))

    # Temperature distribution; the threshold is where the bars turn red.
    temps = data.temperatures
    rows.gap()
    fever_label = t("chart.fever_series", lang, threshold=f"{temps.threshold:.1f}")
    top = rows.add(
        [t("chart.temperature", lang), t("chart.normal_series", lang), fever_label], header=True
    )
    for label, below, above in zip(temps.labels, temps.below, temps.above, strict=False):
        end = rows.add([label, below, above])
    chart = _bar(
        t("chart.temperature_title", lang, threshold=f"{temps.threshold:.1f}"),
        t("chart.temperature", lang),
        t("chart.people", lang),
        stacked=True,
    )
    chart.add_data(
        Reference(ws, min_col=2, max_col=3, min_row=top, max_row=end), titles_from_data=True
    )
    chart.set_categories(Reference(ws, min_col=1, min_row=top + 1, max_row=end))
    _colour(chart, [NORMAL_BLUE, FEVER_RED])
    charts.append((chart, f"F{top}"))

    # Coverage per building (only with the household ledger).
    if data.coverage:
        rows.gap()
        top = rows.add(
            [
                t(k, lang)
                for k in (
                    "chart.building",
                    "chart.households",
                    "chart.visited",
                    "chart.coverage_percent",
                )
            ],
            header=True,
        )
        for b in data.coverage:
            end = rows.add([b.building, b.households, b.visited, round(b.percent, 1)])
        chart = _bar(
            t("chart.coverage_title", lang), t("chart.building", lang), t("chart.households", lang)
        )
        chart.add_data(
            Reference(ws, min_col=2, max_col=3, min_row=top, max_row=end), titles_from_data=True
        )
        chart.set_categories(Reference(ws, min_col=1, min_row=top + 1, max_row=end))
        _colour(chart, [NORMAL_BLUE, IN_GREEN])
        charts.append((chart, f"F{top}"))
    for chart, anchor in charts:
        ws.add_chart(chart, anchor)


def build_workbook(doc: Document) -> Workbook:
    """A write-only workbook (streams rows: a 10 000-row log does not hold 200 000 cells)."""
    wb = Workbook(write_only=True)
    _summary_sheet(wb.create_sheet(t("export.sheet.summary", doc.lang)), doc)
    if doc.table is not None:
        _table_sheet(wb.create_sheet(t(doc.table.sheet_key, doc.lang)), doc)
    if doc.charts is not None:
        _chart_sheet(wb.create_sheet(t("export.sheet.charts", doc.lang)), doc.charts, doc.lang)
    wb.properties.title = doc.title
    wb.properties.creator = "FieldKit"
    return wb


def write_xlsx(doc: Document, fh: BinaryIO) -> None:
    # Built in memory first: a full disk then fails on our own write, not inside openpyxl's
    # zip writer (which would leave a half-closed archive behind).
    buf = io.BytesIO()
    build_workbook(doc).save(buf)
    fh.write(buf.getbuffer())
