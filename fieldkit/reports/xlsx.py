"""Lay a :class:`Document` out as an Excel workbook (台账) through the one writer
(:class:`fieldkit.sheets.writer.Book`, XlsxWriter in constant-memory mode).

Sheets: a summary (label | value), the detail table (frozen header row, filters, widths fitted
to the content, real date/time and number cells) and a chart sheet: passages per hour in vs
out, the temperature distribution with the fever threshold marked (bins at or above it in a
second, red series), and coverage per building when the household ledger exists. Each chart is
drawn from the table printed beside it, and that table holds the same numbers as the summary
(:func:`chart_blocks` takes them from the document, which counted them once).
"""

from __future__ import annotations

from typing import Any, BinaryIO

from ..i18n import t
from ..sheets.writer import Book, ChartBlock, Series, display_width
from .document import ChartData, Document

FEVER_RED, NORMAL_BLUE, IN_GREEN, OUT_ORANGE = "#C0392B", "#4A78B5", "#3C8D5A", "#D68A2E"
KIND = {"datetime": "datetime", "date": "date", "number": "number", "int": "int"}

__all__ = ["chart_blocks", "display_width", "write_xlsx"]


def chart_blocks(data: ChartData, lang: str) -> list[ChartBlock]:
    hourly = data.hourly
    temps = data.temperatures
    blocks = [
        ChartBlock(
            t("chart.hourly_title", lang),
            t("chart.hour", lang),
            t("chart.people", lang),
            [t("chart.hour", lang), t("chart.in", lang), t("chart.out", lang)],
            [
                [f"{h:02d}", n_in, n_out]
                for h, n_in, n_out in zip(hourly.hours, hourly.entries, hourly.exits, strict=True)
            ],
            [Series(1, IN_GREEN), Series(2, OUT_ORANGE)],
        ),
        ChartBlock(
            t("chart.temperature_title", lang, threshold=f"{temps.threshold:.1f}"),
            t("chart.temperature", lang),
            t("chart.people", lang),
            [
                t("chart.temperature", lang),
                t("chart.normal_series", lang),
                t("chart.fever_series", lang, threshold=f"{temps.threshold:.1f}"),
            ],
            [
                [label, below, above]
                for label, below, above in zip(temps.labels, temps.below, temps.above, strict=True)
            ],
            [Series(1, NORMAL_BLUE), Series(2, FEVER_RED)],
            stacked=True,
        ),
    ]
    if data.coverage:
        blocks.append(
            ChartBlock(
                t("chart.coverage_title", lang),
                t("chart.building", lang),
                t("chart.households", lang),
                [
                    t(k, lang)
                    for k in (
                        "chart.building",
                        "chart.households",
                        "chart.visited",
                        "chart.coverage_percent",
                    )
                ],
                [[b.building, b.households, b.visited, round(b.percent, 1)] for b in data.coverage],
                [Series(1, NORMAL_BLUE), Series(2, IN_GREEN)],
            )
        )
    return blocks


def write_xlsx(doc: Document, fh: BinaryIO) -> None:
    book = Book(fh, title=doc.title)
    lang = doc.lang
    summary: list[tuple[str, Any]] = list(doc.summary)
    book.pairs(
        t("export.sheet.summary", lang),
        [t("export.col.item", lang), t("export.col.value", lang)],
        summary,
    )
    if doc.table is not None:
        table = doc.table
        book.table(
            t(table.sheet_key, lang),
            [doc.header(c) for c in table.columns],
            table.rows,
            kinds=[
                KIND.get(c.kind, "id" if c.key == "id_number" else "text") for c in table.columns
            ],
        )
    if doc.charts is not None:
        book.chart_sheet(t("export.sheet.charts", lang), chart_blocks(doc.charts, lang))
    book.close()
