"""XLSX downloads in the layout offices keep (台账): a merged title row, a note row, a bold
header row with borders, then data; column widths set; written in memory with XlsxWriter."""

from __future__ import annotations

import io
from typing import Any

import xlsxwriter

from fieldkit.i18n import t


def ledger_xlsx(title: str, note: str, headers: list[str], rows: list[list[Any]]) -> bytes:
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_formulas": False})
    ws = wb.add_worksheet("台账")
    title_f = wb.add_format({"bold": True, "font_size": 16, "align": "center", "valign": "vcenter"})
    note_f = wb.add_format({"font_size": 10, "font_color": "#555555"})
    head_f = wb.add_format(
        {"bold": True, "border": 1, "bg_color": "#DDEBF7", "align": "center", "text_wrap": True}
    )
    cell_f = wb.add_format({"border": 1})
    last = max(0, len(headers) - 1)
    ws.merge_range(0, 0, 0, last, title, title_f)
    ws.set_row(0, 30)
    ws.merge_range(1, 0, 1, last, note, note_f)
    for c, h in enumerate(headers):
        ws.write_string(2, c, h, head_f)
        width = max([len(str(h)) * 2] + [len(str(r[c])) + 2 for r in rows[:200] if c < len(r)])
        ws.set_column(c, c, min(40, max(8, width)))
    for r, row in enumerate(rows, start=3):
        for c, value in enumerate(row):
            if isinstance(value, int | float) and not isinstance(value, bool):
                ws.write_number(r, c, value, cell_f)
            else:  # as text: an ID number must never become a number
                ws.write_string(r, c, "" if value is None else str(value), cell_f)
    ws.freeze_panes(3, 0)
    wb.close()
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
