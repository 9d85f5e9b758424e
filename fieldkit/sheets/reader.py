"""One reader for every import: the first worksheet as rows of values, merged ranges filled.

.xlsx, .xlsm, .xlsb, .xls and .ods through python-calamine (Rust); .csv/.txt in UTF-8 (with or
without a BOM) or GBK/GB18030, comma, tab or semicolon separated. Every file passes
:mod:`.guard` first, so a hostile workbook is refused with one line before it is built.

The hand-written streaming XML reader this replaces (fieldkit/ledger/xlsx.py, kept in
bench/old_xlsx_reader.py as the benchmark's baseline) read a 50,000-row ledger at about a third
of calamine's speed (``bench/patrol.py``), and read .xlsx only.

Values: text as ``str`` (an empty cell is ``""``), numbers as ``int``/``float``, booleans,
``date``/``datetime`` for cells formatted as dates. Row *i* of the result is row *i + 1* of the
sheet, also when the sheet starts with empty rows.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from .guard import DEFAULT_LIMITS, Limits, SheetError, check_file_size, check_grid, refuse

ZIP_KINDS = {".xlsx": "xlsx", ".xlsm": "xlsx", ".xlsb": "xlsb", ".ods": "ods"}
SUFFIXES = (".xlsx", ".xlsm", ".xlsb", ".xls", ".ods", ".csv", ".txt")
Merge = tuple[int, int, int, int]


def read_rows(path: str | Path, limits: Limits = DEFAULT_LIMITS) -> list[list[Any]]:
    """The first sheet (or the CSV) as rows; raises :class:`SheetError` with one line."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise SheetError("sheets.error.suffix", path=path.name)
    check_file_size(path, limits)
    if suffix in (".csv", ".txt"):
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise SheetError("sheets.error.unreadable", why=exc.strerror or str(exc)) from None
        return read_csv_bytes(data, limits)
    rows, merges = read_workbook(path, limits)
    fill_merged(rows, merges)
    return rows


def read_workbook(path: Path, limits: Limits = DEFAULT_LIMITS) -> tuple[list[list[Any]], list]:
    from python_calamine import CalamineError, CalamineWorkbook, SheetTypeEnum

    from .guard import check_zip_workbook
    from .ods import measure_ods

    suffix = path.suffix.lower()
    ods_merges: list[Merge] | None = None
    if suffix in (".xls", ".xlsb"):  # binary sheets: no references to scan as text
        probe_xls(path, limits)
    if suffix in ZIP_KINDS:
        check_zip_workbook(path, ZIP_KINDS[suffix], limits)
        if suffix == ".ods":
            ods_merges = measure_ods(path, limits)
    try:
        with CalamineWorkbook.from_path(str(path)) as wb:
            index = next(
                (i for i, m in enumerate(wb.sheets_metadata) if m.typ == SheetTypeEnum.WorkSheet),
                None,
            )
            if index is None:
                raise SheetError("sheets.error.no_sheet")
            sheet = wb.get_sheet_by_index(index)
            end = sheet.end
            if end is None:
                return [], []
            check_grid(end[0] + 1, end[1] + 1, limits)
            merged = sheet.merged_cell_ranges
            merges = ods_merges or [(a[0], a[1], b[0], b[1]) for a, b in merged or ()]
            for _, _, r1, c1 in merges:
                check_grid(r1 + 1, c1 + 1, limits)
            rows = sheet.to_python(skip_empty_area=False)
    except SheetError:
        raise
    except CalamineError as exc:
        key = "sheets.error.encrypted" if "password" in str(exc).lower() else None
        raise SheetError(key or "sheets.error.not_workbook", why=_short(exc)) from None
    except (OSError, ValueError) as exc:  # calamine's own I/O and format errors
        raise SheetError("sheets.error.not_workbook", why=_short(exc)) from None
    return rows, merges


# Opens the .xls in a child whose address space is capped, and prints the sheet's last cell.
_PROBE = """
import json, resource, sys
cap = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
from python_calamine import CalamineWorkbook, SheetTypeEnum
with CalamineWorkbook.from_path(sys.argv[1]) as wb:
    kinds = [m.typ for m in wb.sheets_metadata]
    if SheetTypeEnum.WorkSheet in kinds:
        print(json.dumps(wb.get_sheet_by_index(kinds.index(SheetTypeEnum.WorkSheet)).end))
    else:
        print("null")
"""


def probe_xls(path: Path, limits: Limits) -> None:
    """An .xls (or the binary sheets of an .xlsb) cannot be scanned as text, and calamine
    builds its whole grid (an .xls up to 65,536 x 256 cells: 1 GB from a 6 KB file with two
    cells far apart) before anything can be measured. So it is first opened in a child process
    capped at :attr:`Limits.xls_probe_bytes` of address space and ``Limits.seconds``; a child
    that runs out is a refusal, and the grid it reports is
    checked against the limits before this process opens the file."""
    import subprocess
    import sys

    try:
        proc = subprocess.run(
            [sys.executable, "-c", _PROBE, str(path), str(limits.xls_probe_bytes)],
            capture_output=True,
            text=True,
            timeout=limits.seconds,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise refuse("time", limit=int(limits.seconds)) from None
    if proc.returncode < 0 or "MemoryError" in proc.stderr or "memory allocation" in proc.stderr:
        raise refuse("xls_memory", limit=limits.xls_probe_bytes >> 20)
    if proc.returncode != 0:
        lines = [x for x in proc.stderr.strip().splitlines() if x.strip()]
        # "python_calamine.CalamineError: …": the kind of error, not the library's English text
        kind = (lines or ["?"])[-1].split(":")[0].rsplit(".", 1)[-1].strip()
        raise SheetError("sheets.error.not_workbook", why=kind[:40] or "?")
    end = json.loads(proc.stdout or "null")
    if end:
        check_grid(end[0] + 1, end[1] + 1, limits)


def _short(exc: BaseException) -> str:
    """The kind of error (``XmlError``, ``ZipError`` …): the library's own sentence is English."""
    return type(exc).__name__


def fill_merged(rows: list[list[Any]], merges: list[Merge]) -> None:
    """Every cell of a merged range takes the value of its top-left cell (within the data)."""
    if not rows:
        return
    width = max(len(r) for r in rows)
    for r0, c0, r1, c1 in merges:
        if r0 >= len(rows) or c0 >= width:
            continue
        top_row = rows[r0]
        top = top_row[c0] if c0 < len(top_row) else None
        for r in range(r0, min(r1 + 1, len(rows))):
            row = rows[r]
            last = min(c1, width - 1)
            if len(row) <= last:
                row.extend([""] * (last + 1 - len(row)))
            for c in range(c0, last + 1):
                row[c] = top


def decode_text(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):  # Excel and WPS in China save CSV as GBK
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise SheetError("sheets.error.encoding")  # pragma: no cover - gb18030 decodes nearly all


def read_csv_bytes(data: bytes, limits: Limits = DEFAULT_LIMITS) -> list[list[Any]]:
    text = decode_text(data)
    sample = text[:4096]
    delimiter = max(",\t;", key=sample.count)
    rows: list[list[Any]] = []
    width = 0
    try:
        for row in csv.reader(io.StringIO(text), delimiter=delimiter):
            rows.append(row)
            width = max(width, len(row))
            if len(rows) > limits.rows or width > limits.columns:
                check_grid(len(rows), width, limits)
    except csv.Error as exc:
        raise SheetError("sheets.error.csv", row=len(rows) + 1, why=str(exc)[:80]) from None
    check_grid(len(rows), max(width, 1), limits)
    return rows
