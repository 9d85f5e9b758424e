"""Lay a :class:`Document` out as CSV that Excel opens correctly: UTF-8 with a BOM.

The detail table when there is one (the daily report: its summary, label | value), written by
the one CSV writer (:func:`fieldkit.sheets.writer.write_csv`): dates and times the way Excel
parses them back (``2024-03-01 08:05:00``), and text that Excel would run as a formula
(starting with ``= + - @``) with a leading apostrophe (:mod:`fieldkit.sheets.cells`).
"""

from __future__ import annotations

from typing import BinaryIO

from ..i18n import t
from ..sheets.cells import FORMULA_START, csv_text
from ..sheets.writer import write_csv as write_table
from .document import Document

__all__ = ["FORMULA_START", "cell_text", "write_csv"]
cell_text = csv_text


def write_csv(doc: Document, fh: BinaryIO) -> None:
    if doc.kind == "daily" or doc.table is None:
        headers = [t("export.col.item", doc.lang), t("export.col.value", doc.lang)]
        write_table(fh, headers, [[label, value] for label, value in doc.summary])
    else:
        write_table(fh, [doc.header(c) for c in doc.table.columns], doc.table.rows)
