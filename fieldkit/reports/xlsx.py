"""Lay a :class:`Document` out as an Excel workbook (台账), with openpyxl.

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
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.chart import BarChart, Reference
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from ..i18n import t
from .document import ChartData, Document

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


def _set(cell: Any, value: Any, kind: str = "text") -> None:
    if isinstance(value, str):
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
        cell.value = value
        # Text typed at the gate must never become a formula in the office's Excel.
        if value.startswith("="):
            cell.data_type = "s"
        return
    cell.value = value
    if value is not None and kind in FORMATS:
        cell.number_format = FORMATS[kind]
    elif isinstance(value, datetime):
        cell.number_format = FORMATS["datetime"]
    elif isinstance(value, date):
        cell.number_format = FORMATS["date"]


def _header(ws: Worksheet, labels: list[str]) -> None:
    for col, label in enumerate(labels, start=1):
        cell = ws.cell(row=1, column=col, value=label)
        cell.font = HEADER_FONT
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(vertical="center")
    ws.freeze_panes = "A2"


def _fit(ws: Worksheet, columns: list[list[Any]]) -> None:
    for idx, values in enumerate(columns, start=1):
        widest = max((display_width(v) for v in values[:2000]), default=0)
        ws.column_dimensions[get_column_letter(idx)].width = max(MIN_WIDTH,
                                                                 min(MAX_WIDTH, widest + 2))


def _summary_sheet(ws: Worksheet, doc: Document) -> None:
    lang = doc.lang
    _header(ws, [t("export.col.item", lang), t("export.col.value", lang)])
    for row, (label, value) in enumerate(doc.summary, start=2):
        _set(ws.cell(row=row, column=1), label)
        _set(ws.cell(row=row, column=2), value, "int" if isinstance(value, int) else "text")
        ws.cell(row=row, column=2).alignment = Alignment(horizontal="left", wrap_text=True)
    _fit(ws, [[t("export.col.item", lang)] + [label for label, _ in doc.summary],
              [t("export.col.value", lang)] + [value for _, value in doc.summary]])


def _table_sheet(ws: Worksheet, doc: Document) -> None:
    table = doc.table
    assert table is not None
    headers = [doc.header(c) for c in table.columns]
    _header(ws, headers)
    for r, row in enumerate(table.rows, start=2):
        for c, (column, value) in enumerate(zip(table.columns, row), start=1):
            _set(ws.cell(row=r, column=c), value, column.kind)
    _fit(ws, [[h] + [row[i] for row in table.rows] for i, h in enumerate(headers)])
    if table.rows:
        ws.auto_filter.ref = f"A1:{get_column_letter(len(headers))}{len(table.rows) + 1}"


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
    for series, colour in zip(chart.series, colours):
        series.graphicalProperties.solidFill = colour
        series.graphicalProperties.line.solidFill = colour


def _chart_sheet(ws: Worksheet, data: ChartData, lang: str) -> None:
    """Data tables in columns A–D, each with its chart to the right of it."""
    row = 1
    # Passages per hour, in vs out.
    _header(ws, [t("chart.hour", lang), t("chart.in", lang), t("chart.out", lang)])
    for h, n_in, n_out in zip(data.hourly.hours, data.hourly.entries, data.hourly.exits):
        row += 1
        ws.cell(row=row, column=1, value=f"{h:02d}")
        ws.cell(row=row, column=2, value=n_in)
        ws.cell(row=row, column=3, value=n_out)
    chart = _bar(t("chart.hourly_title", lang), t("chart.hour", lang), t("chart.people", lang))
    chart.add_data(Reference(ws, min_col=2, max_col=3, min_row=1, max_row=row), titles_from_data=True)
    chart.set_categories(Reference(ws, min_col=1, min_row=2, max_row=row))
    _colour(chart, [IN_GREEN, OUT_ORANGE])
    ws.add_chart(chart, "F2")

    # Temperature distribution; the threshold is where the bars turn red.
    temps = data.temperatures
    start = row + 3
    fever_label = t("chart.fever_series", lang, threshold=f"{temps.threshold:.1f}")
    ws.cell(row=start, column=1, value=t("chart.temperature", lang)).font = HEADER_FONT
    ws.cell(row=start, column=2, value=t("chart.normal_series", lang)).font = HEADER_FONT
    ws.cell(row=start, column=3, value=fever_label).font = HEADER_FONT
    r = start
    for label, below, above in zip(temps.labels, temps.below, temps.above):
        r += 1
        ws.cell(row=r, column=1, value=label)
        ws.cell(row=r, column=2, value=below)
        ws.cell(row=r, column=3, value=above)
    chart = _bar(t("chart.temperature_title", lang, threshold=f"{temps.threshold:.1f}"),
                 t("chart.temperature", lang), t("chart.people", lang), stacked=True)
    chart.add_data(Reference(ws, min_col=2, max_col=3, min_row=start, max_row=r),
                   titles_from_data=True)
    chart.set_categories(Reference(ws, min_col=1, min_row=start + 1, max_row=r))
    _colour(chart, [NORMAL_BLUE, FEVER_RED])
    ws.add_chart(chart, f"F{start}")

    # Coverage per building (only with the household ledger).
    if data.coverage:
        start = r + 3
        for col, key in enumerate(("chart.building", "chart.households", "chart.visited",
                                   "chart.coverage_percent"), start=1):
            ws.cell(row=start, column=col, value=t(key, lang)).font = HEADER_FONT
        r = start
        for b in data.coverage:
            r += 1
            ws.cell(row=r, column=1, value=b.building)
            ws.cell(row=r, column=2, value=b.households)
            ws.cell(row=r, column=3, value=b.visited)
            cell = ws.cell(row=r, column=4, value=round(b.percent, 1))
            cell.number_format = "0.0"
        chart = _bar(t("chart.coverage_title", lang), t("chart.building", lang),
                     t("chart.households", lang))
        chart.add_data(Reference(ws, min_col=2, max_col=3, min_row=start, max_row=r),
                       titles_from_data=True)
        chart.set_categories(Reference(ws, min_col=1, min_row=start + 1, max_row=r))
        _colour(chart, [NORMAL_BLUE, IN_GREEN])
        ws.add_chart(chart, f"F{start}")
    for col, width in zip("ABCD", (14, 12, 18, 10)):
        ws.column_dimensions[col].width = width


def build_workbook(doc: Document) -> Workbook:
    wb = Workbook()
    summary = wb.active
    summary.title = t("export.sheet.summary", doc.lang)
    _summary_sheet(summary, doc)
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
