"""Lay a :class:`Document` out as CSV that Excel opens correctly: UTF-8 with a BOM.

The detail table when there is one (the daily report: its summary, label | value). Dates and
times are written the way Excel parses them back (``2024-03-01 08:05:00``); text that Excel
would run as a formula (starting with ``= + - @``) gets a leading apostrophe.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from typing import Any, BinaryIO

from ..i18n import t
from .document import Document

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:.1f}"
    text = str(value)
    if isinstance(value, str) and text.startswith(FORMULA_START):
        return "'" + text
    return text


def write_csv(doc: Document, fh: BinaryIO) -> None:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, dialect="excel")
    if doc.kind == "daily" or doc.table is None:
        writer.writerow([t("export.col.item", doc.lang), t("export.col.value", doc.lang)])
        writer.writerows([[cell_text(label), cell_text(value)] for label, value in doc.summary])
    else:
        writer.writerow([doc.header(c) for c in doc.table.columns])
        writer.writerows([[cell_text(v) for v in row] for row in doc.table.rows])
    fh.write(buf.getvalue().encode("utf-8-sig"))
