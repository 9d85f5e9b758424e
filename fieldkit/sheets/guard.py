"""Bounds on a spreadsheet before any library builds it in memory.

python-calamine holds a sheet as one dense grid from its first to its last cell, so a 1.7 KB
file with a value in A1 and one in A300000000 asks for 300 million cells, and a zip bomb or a
billion-laughs entity unfolds in memory before the first row is seen. Every zip member is
therefore inflated here first, as a stream in 1 MB pieces, counting bytes and looking at the XML
on the way: entity declarations (``<!DOCTYPE``/``<!ENTITY``) refused, the sheet's last cell and
every merged range measured against :class:`Limits`. Nothing is kept but a few numbers, so the
check runs in a few MB whatever the file claims; it stops at the first bound crossed, with one
line saying which. Time is bounded too (a very slow disk or a pathological file).

.xls is not a zip: its size is bounded, and it is first opened in a child process with a capped
address space (:func:`.reader.probe_xls`), since calamine builds its dense grid (at most
65,536 × 256 cells, ~1 GB) before anything can be measured.
"""

from __future__ import annotations

import os
import re
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ..errors import FieldkitError
from ..i18n import t

CHUNK = 1 << 20
BOMB_AFTER, BOMB_RATIO = 32 << 20, 200


class SheetError(FieldkitError):
    """The file as a whole cannot be read, or is refused as too large or hostile: one line,
    from the sheets catalogue, in the run's language (``render(lang)`` for another)."""

    exit_code = 2

    def __init__(self, code: str, /, **params: object) -> None:
        Exception.__init__(self, code)
        self.code: str = code
        self.params = params

    def render(self, lang: str | None = None) -> str:
        if not _KEY.fullmatch(self.code):
            return self.code  # a sentence already
        return t(self.code, lang or _language(), **self.params)

    def __str__(self) -> str:
        return self.render()


_KEY = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)+")


def _language() -> str:
    try:
        from ..i18n import current_language

        return current_language()
    except ImportError:  # pragma: no cover - older i18n without a run language
        return os.environ.get("FIELDKIT_LANG") or "zh"


@dataclass(frozen=True)
class Limits:
    """The largest spreadsheet an import accepts (a 50,000-person ledger is ~60 MB of XML)."""

    file_bytes: int = 64 << 20  # the file as stored
    unzipped_bytes: int = 200 << 20  # every zip member inflated, together
    shared_strings_bytes: int = 64 << 20  # xl/sharedStrings.xml inflated
    rows: int = 200_000
    columns: int = 256
    cells: int = 4_000_000  # rows × columns of the grid from A1 to the last cell
    seconds: float = 30.0
    xls_probe_bytes: int = 320 << 20  # address space of the child that first opens an .xls


DEFAULT_LIMITS = Limits()

_ENTITY = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.I)
# Any ``r="B12"`` attribute: only cells carry a letters-and-digits ``r`` (rows carry digits).
# Columns and rows are found by two patterns of one group each, so ``findall`` gives flat lists
# of bytes that ``set`` shrinks in C (a row's cells share their digits) before any int is made:
# the whole check of a 10,000-row ledger 0.087 vs 0.101 s CPU with pairs of groups.
# Each pattern starts with a literal (``r="``, ``row``), which lets ``re`` jump between
# candidates instead of trying a class at every byte: on the 4.7 MB sheet of that ledger the
# three scans take 0.024 s against 0.068 s when they began ``\sr=`` and ``<(?:\w+:)?row``. Also
# matching an ``r="…"`` or ``row …r="…"`` not preceded by a space or ``<`` only ever measures
# more, never less.
_CELL_COL = re.compile(rb"r=\"([A-Z]{1,7})[0-9]{1,12}\"")
_CELL_ROW = re.compile(rb"r=\"[A-Z]{1,7}([0-9]{1,12})\"")
_ROW_REF = re.compile(rb"row\b[^>]{0,200}?\sr=\"([0-9]{1,12})\"")
_MERGE_REF = re.compile(rb"<(?:\w+:)?mergeCell\b[^>]{0,200}?\sref=\"([A-Z0-9:$]{1,40})\"")
_A1 = re.compile(r"\$?([A-Z]{1,7})\$?([0-9]{1,12})")
_OVERLAP = 512  # a tag cut between two pieces is seen whole in the next one


def column_index(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n - 1


def refuse(code: str, **params: object) -> SheetError:
    return SheetError(f"sheets.refused.{code}", **params)


class _Budget:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.unzipped = 0
        self.deadline = time.monotonic() + limits.seconds

    def take(self, n: int) -> None:
        self.unzipped += n
        if self.unzipped > self.limits.unzipped_bytes:
            raise refuse("unzipped", limit=self.limits.unzipped_bytes >> 20)
        if time.monotonic() > self.deadline:
            raise refuse("time", limit=int(self.limits.seconds))


def _pieces(
    fh: IO[bytes], budget: _Budget, packed: int, member_limit: int | None = None
) -> Iterator[bytes]:
    """The member inflated in pieces, each with the tail of the one before it.

    ``packed``: the member's compressed size (what zipfile actually reads, whatever the header
    claims). Past :data:`BOMB_AFTER` bytes, inflating more than :data:`BOMB_RATIO` times that
    is a zip bomb (office sheets inflate 5-30 times): refused without inflating the rest."""
    tail = b""
    seen = 0
    while piece := fh.read(CHUNK):
        budget.take(len(piece))
        seen += len(piece)
        if member_limit is not None and seen > member_limit:
            raise refuse("shared_strings", limit=member_limit >> 20)
        if seen > BOMB_AFTER and seen > BOMB_RATIO * max(packed, 1):
            raise refuse("unzipped", limit=budget.limits.unzipped_bytes >> 20)
        yield tail + piece
        tail = piece[-_OVERLAP:]


def check_grid(rows: int, columns: int, limits: Limits) -> None:
    """``rows``/``columns``: one past the last row and column used (0-based end + 1)."""
    if rows > limits.rows:
        raise refuse("rows", rows=rows, limit=limits.rows)
    if columns > limits.columns:
        raise refuse("columns", columns=columns, limit=limits.columns)
    if rows * columns > limits.cells:
        raise refuse("cells", cells=rows * columns, limit=limits.cells)


def _check_ref(ref: str, limits: Limits) -> None:
    m = _A1.fullmatch(ref)
    if m:
        check_grid(int(m.group(2)), column_index(m.group(1)) + 1, limits)


def check_zip_workbook(path: Path, kind: str, limits: Limits = DEFAULT_LIMITS) -> None:
    """Stream every member of an .xlsx/.xlsm/.xlsb/.ods; raise :class:`SheetError` past a bound.

    For .xlsx the grid is measured from the cell, row and merged-range references of every
    worksheet; for .ods, whose cells carry no reference, :mod:`.ods` measures the first table.
    """
    budget = _Budget(limits)
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if len(infos) > 10_000:
                raise refuse("members", n=len(infos))
            for info in infos:
                name = info.filename
                is_xml = name.endswith((".xml", ".rels", ".vml"))
                strings = name.lower().endswith("sharedstrings.xml")
                sheet = kind == "xlsx" and name.startswith("xl/worksheets/") and is_xml
                with zf.open(info) as fh:
                    limit = limits.shared_strings_bytes if strings else None
                    for piece in _pieces(fh, budget, info.compress_size, limit):
                        if not is_xml:
                            continue
                        if _ENTITY.search(piece):
                            raise refuse("entity")
                        if sheet:
                            _measure_sheet_piece(piece, limits)
    except SheetError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError) as exc:
        raise SheetError("sheets.error.not_workbook", why=type(exc).__name__) from None
    except RuntimeError as exc:  # an encrypted member
        raise SheetError("sheets.error.encrypted", why=str(exc)[:80]) from None
    except OSError as exc:
        raise SheetError("sheets.error.unreadable", why=exc.strerror or str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - zlib.error and friends from a damaged member
        raise SheetError("sheets.error.not_workbook", why=type(exc).__name__) from None


def _measure_sheet_piece(piece: bytes, limits: Limits) -> None:
    """The furthest row and column any cell, row or merged range of this piece names."""
    last_row = last_col = 0
    letters = set(_CELL_COL.findall(piece))
    if letters:
        last_col = max(column_index(a.decode()) for a in letters) + 1
        last_row = max(map(int, set(_CELL_ROW.findall(piece))))
    rows = _ROW_REF.findall(piece)
    if rows:
        last_row = max(last_row, max(map(int, rows)))
    if last_row or last_col:
        check_grid(last_row, max(last_col, 1), limits)
    for ref in _MERGE_REF.findall(piece):
        for part in ref.decode().split(":"):
            _check_ref(part, limits)


def check_file_size(path: Path, limits: Limits = DEFAULT_LIMITS) -> int:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise SheetError("sheets.error.not_found", path=str(path)) from None
    except OSError as exc:
        raise SheetError("sheets.error.unreadable", why=exc.strerror or str(exc)) from None
    if size > limits.file_bytes:
        raise refuse("file_bytes", mb=size >> 20, limit=limits.file_bytes >> 20)
    return size
