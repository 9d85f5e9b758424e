"""The first table of an .ods: its grid measured and its merged ranges, in one streaming pass.

ODS cells carry no reference: a row or a cell may stand for thousands (``number-rows-repeated``,
``number-columns-repeated``; LibreOffice writes a million empty trailing rows that way). Only
repeats that hold a value count towards the grid. calamine reports no merged ranges for .ods
(``merged_cell_ranges`` is None), so they are collected here from ``number-rows-spanned`` and
``number-columns-spanned``. Runs after :func:`.guard.check_zip_workbook` has refused entity
declarations and bounded the inflated size.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from xml.etree.ElementTree import ParseError, iterparse

from .guard import Limits, SheetError, check_grid

TABLE = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
OFFICE = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}"
Merge = tuple[int, int, int, int]


def _int(value: str | None) -> int:
    try:
        return max(1, int(value)) if value else 1
    except ValueError:
        return 1


def measure_ods(path: Path, limits: Limits) -> list[Merge]:
    """Merged ranges (0-based first row, first col, last row, last col) of the first table."""
    merges: list[Merge] = []
    row = col = 0
    last_row = last_col = 0
    row_has_value = False
    tables = 0
    try:
        with zipfile.ZipFile(path) as zf, zf.open("content.xml") as fh:
            for event, el in iterparse(fh, events=("start", "end")):
                tag = el.tag
                if event == "start":
                    if tag == f"{TABLE}table":
                        tables += 1
                        if tables > 1:
                            break
                    continue
                if tag in (f"{TABLE}table-cell", f"{TABLE}covered-table-cell"):
                    rep = _int(el.get(f"{TABLE}number-columns-repeated"))
                    has_value = el.get(f"{OFFICE}value-type") is not None or any(
                        (x.text or "").strip() for x in el.iter()
                    )
                    if has_value:
                        row_has_value = True
                        last_col = max(last_col, col + rep)
                        check_grid(row + 1, last_col, limits)
                    rs = _int(el.get(f"{TABLE}number-rows-spanned"))
                    cs = _int(el.get(f"{TABLE}number-columns-spanned"))
                    if (rs > 1 or cs > 1) and tag == f"{TABLE}table-cell":
                        check_grid(row + rs, col + cs, limits)
                        merges.append((row, col, row + rs - 1, col + cs - 1))
                    col += rep
                    el.clear()
                elif tag == f"{TABLE}table-row":
                    rep = _int(el.get(f"{TABLE}number-rows-repeated"))
                    if row_has_value:
                        last_row = row + rep
                        check_grid(last_row, max(last_col, 1), limits)
                    row += rep
                    col = 0
                    row_has_value = False
                    el.clear()
    except SheetError:
        raise
    except (KeyError, ParseError, zipfile.BadZipFile, OSError) as exc:
        raise SheetError("sheets.error.not_workbook", why=type(exc).__name__) from None
    return merges
