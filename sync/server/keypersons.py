"""Read a key-person list (重点人员名单) from a spreadsheet, hashing ID numbers as it reads.

The plaintext number lives only in a local variable for one row: it is normalised
(:func:`fieldkit.shared.identity.parse_identity`, so 15-digit numbers match their 18-digit form) and
turned into ``keyperson_hash(town index key, number)`` at once (Argon2id, salted per town).

Header names are matched in Chinese or English: 身份证号/证件号码/id_number, 类别/人员类别/category,
截止日期/结束日期/end_date, on the first rows that name them (an office sheet has a title row
above). Without a header row, the first column is the ID number. Footer rows (合计 …) are skipped.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

from fieldkit.crypto import keyperson_hash
from fieldkit.i18n import t
from fieldkit.shared.identity import parse_identity
from fieldkit.sheets import SheetError
from fieldkit.sheets.layout import cell_text, find_header, is_blank, is_footer
from fieldkit.sheets.reader import read_rows

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


def _field(value: Any) -> str | None:
    text = cell_text(value).lower().replace(" ", "").replace("*", "")
    for key, names in (("id", ID_HEADERS), ("category", CATEGORY_HEADERS), ("end", END_HEADERS)):
        if text in {n.replace(" ", "") for n in names}:
            return key
    return None


def _rows(path: Path) -> tuple[list[list[Any]], int, dict[str, int | None]]:
    """(rows, first data row, column of id/category/end) through the one sheet reader: .xlsx,
    .xls, .xlsb, .ods, .csv (UTF-8 or GBK), bounded against hostile files; the header row is
    looked for among the first rows, under a title, as the ledger import does."""
    try:
        rows = read_rows(path)
    except SheetError as err:
        raise KeypersonFileError(f"{path.name}: {err}") from None
    try:
        _, start, labels, _ = find_header(rows, _field, min_fields=1, examples="身份证号")
    except SheetError:
        return rows, 0, {"id": 0, "category": None, "end": None}  # no header: IDs in column A
    columns = {k: (labels.index(k) if k in labels else None) for k in ("id", "category", "end")}
    return rows, start, columns


def list_date(value: Any) -> str | None:
    """An end date from a key-person sheet as ISO text (a date cell, 2026-12-31, 2026/12/31,
    2026.12.31 or 20261231); None for an empty cell; ValueError when it is no date. Shared by
    ``fieldkit-server keyperson import`` and the console's upload."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = cell_text(value).replace("/", "-").replace(".", "-")
    if len(text) == 8 and text.isdigit():
        text = f"{text[:4]}-{text[4:6]}-{text[6:]}"
    return date.fromisoformat(text).isoformat()


def _date_text(value: Any) -> str | None:
    try:
        return list_date(value)
    except ValueError:
        raise ValueError(t("sheets.keyperson.bad_date")) from None


def read_keyperson_file(
    path: Path,
    index_key: bytes,
    default_category: str | None = None,
    default_end: str | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """(entries {id_hash, category, end_date}, problems as 'row N: why').

    A problem never quotes the row: no name and no ID number, masked or not, leaves here."""
    if not path.exists():
        raise KeypersonFileError(t("server.err.file_missing", path=str(path)))
    default_end = _date_text(default_end) if default_end else None
    entries: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    rows, start, columns = _rows(path)
    id_col = columns["id"] if columns["id"] is not None else 0

    def cell(row: list[Any], key: str) -> Any:
        c = columns[key]
        return row[c] if c is not None and c < len(row) else None

    for index in range(start, len(rows)):
        row = rows[index]
        if is_blank(row) or is_footer(row):
            continue
        n = index + 1
        try:
            value = row[id_col] if id_col < len(row) else None
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(t("sheets.keyperson.not_id"))
            identity = parse_identity(cell_text(value))
            if not identity.number:
                raise ValueError(t("sheets.keyperson.no_id"))
            if identity.kind == "resident_id" and identity.birth_date and not identity.check_ok:
                raise ValueError(t("sheets.keyperson.bad_check"))
            if identity.problem or not identity.check_ok:
                raise ValueError(t("sheets.keyperson.bad_id"))
            if identity.kind == "other":
                raise ValueError(t("sheets.keyperson.not_id"))
            category = cell_text(cell(row, "category")) or default_category
            end_date = _date_text(cell(row, "end")) or default_end
        except ValueError as err:
            problems.append(t("sheets.keyperson.row", row=n, why=str(err)))
            continue
        id_hash = keyperson_hash(index_key, identity.number)  # slow, town-salted: not reversible
        del value, identity
        entries[id_hash] = {
            "id_hash": id_hash,
            "category": category or "重点人员",
            "end_date": end_date,
        }
    return list(entries.values()), problems
