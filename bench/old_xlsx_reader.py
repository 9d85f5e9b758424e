"""A small, fast reader for the first sheet of an .xlsx file: cell values and merged ranges.

openpyxl builds an object per cell and took ~15 s for a 50k-row ledger on the target machine;
streaming the sheet XML with ``iterparse`` takes a fraction of that. Only what an import needs
is read: shared and inline strings, numbers, booleans, dates (by the cell's number format),
and the merged ranges. Anything unexpected raises ``XlsxError`` and the importer falls back to
openpyxl.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from datetime import datetime, timedelta
from typing import IO, Any
from xml.etree.ElementTree import ParseError, iterparse

NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
REL_NS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_DATE_IDS = set(range(14, 23)) | set(range(27, 37)) | set(range(45, 48)) | set(range(50, 59))
_REF = re.compile(r"([A-Z]+)(\d+)")


class XlsxError(Exception):
    pass


def _col(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n - 1


def _is_date_format(code: str) -> bool:
    code = re.sub(r'"[^"]*"|\[[^\]]*\]|\\.', "", code).lower()
    return code != "general" and any(ch in code for ch in "ymdhs")


def _text_of(elem) -> str:
    return "".join(t.text or "" for t in elem.iter(f"{NS}t"))


def _first_sheet(z: zipfile.ZipFile) -> tuple[str, bool]:
    date1904 = False
    sheet_rid = None
    with z.open("xl/workbook.xml") as fh:
        for _, el in iterparse(fh):
            if el.tag == f"{NS}workbookPr":
                date1904 = el.get("date1904") in ("1", "true")
            elif el.tag == f"{NS}sheet" and sheet_rid is None:
                sheet_rid = el.get(f"{REL_NS}id")
    if sheet_rid is None:
        raise XlsxError("the workbook has no sheet")
    with z.open("xl/_rels/workbook.xml.rels") as fh:
        for _, el in iterparse(fh):
            if el.tag == f"{PKG_REL}Relationship" and el.get("Id") == sheet_rid:
                target = el.get("Target", "")
                path = (
                    target.lstrip("/")
                    if target.startswith("/")
                    else posixpath.normpath(posixpath.join("xl", target))
                )
                return path, date1904
    raise XlsxError("the first sheet is missing from the workbook")


def _shared_strings(z: zipfile.ZipFile) -> list[str]:
    if "xl/sharedStrings.xml" not in z.namelist():
        return []
    out: list[str] = []
    with z.open("xl/sharedStrings.xml") as fh:
        for _, el in iterparse(fh):
            if el.tag == f"{NS}si":
                out.append(_text_of(el))
                el.clear()
    return out


def _date_styles(z: zipfile.ZipFile) -> set[int]:
    """Indexes of cell styles (``s``) whose number format shows a date or time."""
    if "xl/styles.xml" not in z.namelist():
        return set()
    custom: dict[int, str] = {}
    xfs: list[int] = []
    in_cell_xfs = False
    with z.open("xl/styles.xml") as fh:
        for event, el in iterparse(fh, events=("start", "end")):
            if el.tag == f"{NS}cellXfs":
                in_cell_xfs = event == "start"
            elif event == "end" and el.tag == f"{NS}numFmt":
                custom[int(el.get("numFmtId", "0"))] = el.get("formatCode", "")
            elif event == "end" and el.tag == f"{NS}xf" and in_cell_xfs:
                xfs.append(int(el.get("numFmtId", "0")))
    return {
        i
        for i, fmt in enumerate(xfs)
        if fmt in _DATE_IDS or (fmt in custom and _is_date_format(custom[fmt]))
    }


def _number(text: str) -> int | float:
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return float(text)


def read_first_sheet(
    source: str | IO[bytes],
) -> tuple[list[list[Any]], list[tuple[int, int, int, int]]]:
    """(rows of values, merged ranges as 0-based (min_row, min_col, max_row, max_col))."""
    try:
        with zipfile.ZipFile(source) as z:
            sheet, date1904 = _first_sheet(z)
            strings = _shared_strings(z)
            dates = _date_styles(z)
            epoch = datetime(1904, 1, 1) if date1904 else datetime(1899, 12, 30)
            rows: list[list[Any]] = []
            merged: list[tuple[int, int, int, int]] = []
            current: list[Any] = []
            with z.open(sheet) as fh:
                for _, el in iterparse(fh):
                    tag = el.tag
                    if tag == f"{NS}c":
                        ref = el.get("r")
                        if ref:
                            col = _col(_REF.match(ref).group(1))
                        else:
                            col = len(current)
                        kind = el.get("t", "n")
                        v = el.find(f"{NS}v")
                        raw = v.text if v is not None else None
                        if kind == "s":
                            value: Any = strings[int(raw)] if raw is not None else None
                        elif kind == "inlineStr":
                            is_ = el.find(f"{NS}is")
                            value = _text_of(is_) if is_ is not None else None
                        elif kind in ("str", "e"):
                            value = raw
                        elif kind == "b":
                            value = raw == "1"
                        elif raw is None or raw == "":
                            value = None
                        else:
                            value = _number(raw)
                            if int(el.get("s", "0")) in dates:
                                value = epoch + timedelta(days=float(value))
                        if col >= len(current):
                            current.extend([None] * (col - len(current) + 1))
                        current[col] = value
                        el.clear()
                    elif tag == f"{NS}row":
                        number = int(el.get("r", len(rows) + 1))
                        while len(rows) < number - 1:
                            rows.append([])  # rows Excel left out are blank rows
                        rows.append(current)
                        current = []
                        el.clear()
                    elif tag == f"{NS}mergeCell":
                        a, _, b = el.get("ref", "").partition(":")
                        ma, mb = _REF.match(a), _REF.match(b or a)
                        merged.append(
                            (
                                int(ma.group(2)) - 1,
                                _col(ma.group(1)),
                                int(mb.group(2)) - 1,
                                _col(mb.group(1)),
                            )
                        )
            return rows, merged
    except (
        zipfile.BadZipFile,
        KeyError,
        ParseError,
        ValueError,
        IndexError,
        AttributeError,
    ) as exc:
        raise XlsxError(str(exc) or type(exc).__name__) from None
