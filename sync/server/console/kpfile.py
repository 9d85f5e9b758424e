"""A key-person sheet uploaded in the console: read safely, previewed, staged as hashes only.

Reading reuses the bounded reader of every import (:func:`fieldkit.sheets.reader.read_rows`:
first sheet, merged cells filled, CSV in UTF-8 or GBK, no formula evaluated) and its header
finding (:func:`fieldkit.sheets.layout.find_header`, footers and blank rows skipped), with the
key-person header words of ``fieldkit-server keyperson import``.
Before that, an .xlsx is checked as a zip: its parts' declared sizes and compression ratios are
bounded (a zip bomb is refused unread). Each ID number is hashed with the town index key the
moment it is parsed; the preview keeps only a masked form.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from typing import Any

from fieldkit.crypto import blind_index
from fieldkit.shared.identity import mask_id, parse_identity
from fieldkit.sheets.layout import cell_text, find_header, is_blank, is_footer
from fieldkit.sheets.reader import read_rows

from ..keypersons import CATEGORY_HEADERS, END_HEADERS, ID_HEADERS, list_date

MAX_UPLOAD = 5 * 1024 * 1024
MAX_UNZIPPED = 64 * 1024 * 1024
MAX_RATIO = 200
MAX_ROWS = 200_000


class RowError(Exception):
    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(code)
        self.code, self.params = code, params


class UploadError(Exception):
    def __init__(self, key: str, /, **params: Any) -> None:
        super().__init__(key)
        self.key, self.params = key, params


@dataclass
class PreviewRow:
    row: int
    id_masked: str
    category: str
    end_date: str | None
    error: tuple[str, dict[str, Any]] | None = None


@dataclass
class Preview:
    entries: list[dict[str, Any]] = field(default_factory=list)  # id_hash, category, end_date
    rows: list[PreviewRow] = field(default_factory=list)

    @property
    def errors(self) -> list[PreviewRow]:
        return [r for r in self.rows if r.error]


def _check_zip(path: str) -> None:
    try:
        with zipfile.ZipFile(path) as z:
            total = 0
            for info in z.infolist():
                total += info.file_size
                ratio = info.file_size / max(1, info.compress_size)
                if total > MAX_UNZIPPED or (info.file_size > 1_000_000 and ratio > MAX_RATIO):
                    raise UploadError("console.kp.err_bomb")
    except zipfile.BadZipFile:
        raise UploadError("console.kp.err_unreadable") from None


def _date(value: Any) -> str | None:
    try:
        return list_date(value)
    except ValueError:
        raise RowError("date", value=str(value)[:20]) from None


def _norm(value: Any) -> str:
    return "".join(cell_text(value).split()).replace("*", "").rstrip(":：").lower()


_FIELDS = {
    **{_norm(h): "id" for h in ID_HEADERS | {"公民身份号码", "身份证件号码", "身份证"}},
    **{_norm(h): "category" for h in CATEGORY_HEADERS | {"人员分类", "重点人群类别"}},
    **{_norm(h): "end" for h in END_HEADERS | {"管控截止日期", "截止时间", "解除时间"}},
    **{h: "_seq" for h in ("序号", "编号", "no", "no.")},
    **{h: "_name" for h in ("姓名", "name")},
}


def _field_of(value: Any) -> str | None:
    return _FIELDS.get(_norm(value))


def parse_id_cell(value: Any) -> str:
    if isinstance(value, float) and (not value.is_integer() or value >= 1e15):
        raise RowError("id_as_number")  # Excel kept it as a number: the last digits are gone
    text = cell_text(value)
    if not text:
        raise RowError("id_missing")
    ident = parse_identity(text)
    if not ident.number or ident.problem or ident.kind == "other":
        code = "id_check_digit" if "check digit" in (ident.problem or "") else "id_invalid"
        raise RowError(code, value=mask_id(ident.number or text), why=ident.problem or "?")
    return ident.number


def read_upload(
    data: bytes, filename: str, index_key: bytes, default_category: str = "重点人员"
) -> Preview:
    """Parse an uploaded sheet into hashed entries and a masked preview; UploadError for a file
    that cannot be used at all."""
    if len(data) > MAX_UPLOAD:
        raise UploadError("console.kp.err_size", mb=MAX_UPLOAD // 1024 // 1024)
    suffix = os.path.splitext(filename.lower())[1]
    if suffix not in (".xlsx", ".xlsm", ".xls", ".ods", ".csv", ".txt"):
        raise UploadError("console.kp.err_type")
    with tempfile.TemporaryDirectory(prefix="fk-kp-") as tmp:
        path = os.path.join(tmp, "upload" + suffix)
        with open(path, "wb") as f:
            f.write(data)
        if suffix in (".xlsx", ".xlsm", ".ods"):
            _check_zip(path)
        try:  # the bounded reader of every import: no formulas evaluated, sizes capped
            rows = read_rows(path)
        except Exception:  # noqa: BLE001 - SheetError, or a malformed workbook's own error
            raise UploadError("console.kp.err_unreadable") from None
    if len(rows) > MAX_ROWS:
        raise UploadError("console.kp.err_rows", n=MAX_ROWS)
    try:
        _, start, labels, _ = find_header(rows, _field_of, min_fields=1, examples="身份证号")
    except Exception:  # noqa: BLE001 - SheetError: no header among the first rows
        raise UploadError("console.kp.err_header") from None
    if "id" not in labels:
        raise UploadError("console.kp.err_header")
    cols = {k: (labels.index(k) if k in labels else None) for k in ("id", "category", "end")}
    out = Preview()
    seen: set[str] = set()
    for n, row in enumerate(rows[start:], start=start + 1):  # n: the row number in Excel
        cells = list(row) + [None] * 3

        def cell(key: str, cells: list[Any] = cells) -> Any:
            j = cols[key]
            return cells[j] if j is not None else None

        if is_blank(row) or is_footer(row):
            continue
        category = cell_text(cell("category")) or default_category
        try:
            number = parse_id_cell(cell("id"))
            end = _date(cell("end"))
        except RowError as err:
            raw = cell_text(cell("id"))
            out.rows.append(
                PreviewRow(n, mask_id(raw) if raw else "", category, None, (err.code, err.params))
            )
            continue
        id_hash = blind_index(index_key, number)
        masked = mask_id(number)
        del number
        if id_hash in seen:
            out.rows.append(PreviewRow(n, masked, category, end, ("duplicate", {})))
            continue
        seen.add(id_hash)
        out.entries.append({"id_hash": id_hash, "category": category, "end_date": end})
        out.rows.append(PreviewRow(n, masked, category, end))
    if not out.rows:
        raise UploadError("console.kp.err_empty")
    return out
