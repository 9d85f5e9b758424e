"""XLSX downloads in the layout offices keep (台账): a merged title row, a note row, a bold
frozen header row with a filter, then data. Written by the one spreadsheet writer
(:class:`fieldkit.sheets.writer.Book`, in memory for a download): every text a string cell,
never a formula, numbers as numbers, as in every FieldKit export."""

from __future__ import annotations

import io
from typing import Any

from fieldkit.i18n import has_key, t
from fieldkit.sheets.writer import Book


def word(lang: str, prefix: str, value: Any) -> str:
    """A code in the catalogue's words (``home_monitoring`` → 居家健康监测); a value the
    catalogue does not know (a name, a label typed on a device) as it is."""
    text = str(value)
    key = prefix + text
    if has_key(key):
        return t(key, lang)
    return text


def ledger_xlsx(
    title: str, note: str, headers: list[str], rows: list[list[Any]], sheet: str = ""
) -> bytes:
    buf = io.BytesIO()
    book = Book(buf, title=title)
    book.table(sheet or t("fixtrace.xlsx.sheet"), headers, rows, title=title, note=note)
    book.close()
    return buf.getvalue()


def report_xlsx(report: dict[str, Any], lang: str) -> bytes:
    headers = [
        t("fixtrace.col.denied", lang) if k == "denied" else t(f"console.col.{k}", lang)
        for k in (
            "checkpoint",
            "status",
            "in",
            "out",
            "inside",
            "turned_back",
            "denied",
            "referred",
            "fever",
            "keyperson",
            "total",
        )
    ]
    rows = [
        [
            r.checkpoint,
            t(f"console.report.st_{report['status'][r.checkpoint]}", lang),
            r.inn,
            r.out,
            r.inside,
            r.turned_back,
            r.denied,
            r.referred,
            r.fever,
            r.keyperson,
            r.total,
        ]
        for r in report["rows"]
    ]
    width = len(headers)
    rows.append(
        [t("console.report.total", lang), ""] + [sum(r[i] for r in rows) for i in range(2, width)]
    )
    for title, table, prefix in (
        (t("console.report.by_category", lang), report["categories"], "console.category."),
        (t("console.report.by_kp", lang), report["keypersons"], ""),
        (t("console.report.by_health", lang), report["health"], "ledger.status."),
    ):
        rows.append([""] * width)
        rows.append([title, ""] + [""] * (width - 2))
        rows += [
            [word(lang, prefix, k) if prefix else k, ""] + [v] + [""] * (width - 3)
            for k, v in table.items()
        ]
    return ledger_xlsx(
        t("console.report.xlsx_title", lang, day=report["day"]),
        t("console.report.xlsx_note", lang, deadline=report["deadline"]),
        headers,
        rows,
        sheet=t("fixtrace.report.sheet", lang),
    )
