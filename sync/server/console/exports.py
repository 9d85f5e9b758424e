"""XLSX downloads in the layout offices keep (台账): a merged title row, a note row, a bold
frozen header row with a filter, then data. Written by the one spreadsheet writer
(:class:`fieldkit.sheets.writer.Book`, in memory for a download): every text a string cell,
never a formula, numbers as numbers, as in every FieldKit export."""

from __future__ import annotations

import io
from typing import Any

from fieldkit.i18n import t
from fieldkit.sheets.writer import Book


def ledger_xlsx(title: str, note: str, headers: list[str], rows: list[list[Any]]) -> bytes:
    buf = io.BytesIO()
    book = Book(buf, title=title)
    book.table("台账", headers, rows, title=title, note=note)
    book.close()
    return buf.getvalue()


def report_xlsx(report: dict[str, Any], lang: str) -> bytes:
    headers = [
        t(f"console.col.{k}", lang)
        for k in (
            "checkpoint",
            "status",
            "in",
            "out",
            "inside",
            "turned_back",
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
            r.referred,
            r.fever,
            r.keyperson,
            r.total,
        ]
        for r in report["rows"]
    ]
    rows.append(
        [t("console.report.total", lang), ""] + [sum(r[i] for r in rows) for i in range(2, 10)]
    )
    for title, table in (
        (t("console.report.by_category", lang), report["categories"]),
        (t("console.report.by_kp", lang), report["keypersons"]),
        (t("console.report.by_health", lang), report["health"]),
    ):
        rows.append([""] * 10)
        rows.append([title, ""] + [""] * 8)
        rows += [[k, ""] + [v] + [""] * 7 for k, v in table.items()]
    return ledger_xlsx(
        t("console.report.xlsx_title", lang, day=report["day"]),
        t("console.report.xlsx_note", lang, deadline=report["deadline"]),
        headers,
        rows,
    )
