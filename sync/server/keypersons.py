"""Read a key-person list (重点人员名单) from .xlsx or .csv, hashing ID numbers as it reads.

The plaintext number lives only in a local variable for one row: it is normalised
(:func:`scanners.idnumber.parse_identity`, so 15-digit numbers match their 18-digit form) and
turned into ``blind_index(town index key, number)`` at once.

Header names are matched in Chinese or English: 身份证号/证件号码/id_number, 类别/人员类别/category,
截止日期/结束日期/end_date. Without a header row, the first column is the ID number.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path
from typing import Any

from fieldkit.crypto import blind_index
from scanners.idnumber import parse_identity

ID_HEADERS = {
    "身份证号",
    "身份证号码",
    "证件号码",
    "证件号",
    "公民身份号码",
    "id_number",
    "id",
    "idnumber",
    "id number",
}
CATEGORY_HEADERS = {"类别", "人员类别", "类型", "category", "kind"}
END_HEADERS = {"截止日期", "结束日期", "解除日期", "管控截止", "end_date", "end", "until"}


class KeypersonFileError(Exception):
    pass


def _rows(path: Path) -> Iterable[list[Any]]:
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        import openpyxl

        try:
            wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except Exception as err:  # noqa: BLE001 - openpyxl raises many kinds for a bad file
            raise KeypersonFileError(f"cannot open {path} as a spreadsheet: {err}") from None
        try:
            for row in wb.worksheets[0].iter_rows(values_only=True):
                yield list(row)
        finally:
            wb.close()
    elif suffix in (".csv", ".txt"):
        raw = path.read_bytes()
        for encoding in ("utf-8-sig", "gb18030"):  # Excel in China saves CSV as GBK
            try:
                text = raw.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        else:
            raise KeypersonFileError(f"{path} is neither UTF-8 nor GBK text")
        yield from csv.reader(io.StringIO(text))
    else:
        raise KeypersonFileError(f"{path}: use an .xlsx or .csv file")


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # an ID typed as a number in Excel (loses an X check digit!)
    return str(value).strip()


def _date_text(value: Any) -> str | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = str(value).strip().replace("/", "-").replace(".", "-")
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise ValueError(f"end date {value!r} is not a date (YYYY-MM-DD)") from None


def read_keyperson_file(
    path: Path,
    index_key: bytes,
    default_category: str | None = None,
    default_end: str | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """(entries {id_hash, category, end_date}, problems as 'row N: why')."""
    if not path.exists():
        raise KeypersonFileError(f"{path} does not exist")
    default_end = _date_text(default_end) if default_end else None
    entries: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    columns = {"id": 0, "category": None, "end": None}
    for n, row in enumerate(_rows(path), start=1):
        cells = [_cell_text(c) for c in row]
        if not any(cells):
            continue
        if n == 1:
            lowered = [c.lower() for c in cells]
            found = {
                key: next((i for i, c in enumerate(lowered) if c in names), None)
                for key, names in (
                    ("id", ID_HEADERS),
                    ("category", CATEGORY_HEADERS),
                    ("end", END_HEADERS),
                )
            }
            if found["id"] is not None:
                columns = found
                continue
        try:
            number_text = cells[columns["id"]] if columns["id"] < len(cells) else ""
            identity = parse_identity(number_text)
            if not identity.number or not identity.check_ok:
                raise ValueError(identity.problem or "no ID number")
            if identity.kind == "other":
                raise ValueError(f"{number_text[:4]}… is not a recognised ID or passport number")
            category = (
                cells[columns["category"]]
                if columns["category"] is not None and columns["category"] < len(cells)
                else ""
            ) or default_category
            end_cell = (
                row[columns["end"]]
                if columns["end"] is not None and columns["end"] < len(row)
                else None
            )
            end_date = _date_text(end_cell) or default_end
        except ValueError as err:
            problems.append(f"row {n}: {err}")
            continue
        id_hash = blind_index(index_key, identity.number)
        del number_text, identity
        entries[id_hash] = {
            "id_hash": id_hash,
            "category": category or "重点人员",
            "end_date": end_date,
        }
    return list(entries.values()), problems
