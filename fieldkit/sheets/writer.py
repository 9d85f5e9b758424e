"""The one spreadsheet writer every export goes through (shift log, daily report, passages,
household and monitoring ledgers, template): XLSX with XlsxWriter in constant-memory mode, CSV
with the csv module. Both take their cell text from :mod:`.cells`, so no user text becomes a
formula in either.

XLSX: every text is a string cell (``write_string``; the workbook is opened with
``strings_to_formulas``/``strings_to_numbers``/``strings_to_urls`` off, so even a careless
``write`` could not make one), numbers are numbers, dates and times are date cells with a
date format, header rows bold and frozen with a filter, column widths fitted to the first rows,
native Excel column charts that LibreOffice opens too. Constant-memory mode writes each row to
a temporary file as soon as the next row starts, so a 100,000-row export holds one row of cells
at a time; the temporary files go to the folder of the file being written (the export's own
folder, not /tmp, since a full export holds personal data).

Measured against openpyxl (write-only, the writer before) and rustpy-xlsxwriter with
``bench/reports.py``: see the figures in its docstring.
"""

from __future__ import annotations

import csv
import io
import os
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from itertools import islice
from typing import Any, BinaryIO

from xlsxwriter import Workbook

from .cells import clean, csv_text

FORMATS = {
    "datetime": "yyyy-mm-dd hh:mm:ss",
    "date": "yyyy-mm-dd",
    "time": "hh:mm",
    "number": "0.0",
    "int": "0",
    "id": "@",  # text: Excel must not turn ID or phone numbers into numbers when edited
}
HEADER_FILL = "#DDE4EE"
MAX_WIDTH, MIN_WIDTH = 48, 6
EPOCH = datetime(1899, 12, 30)
WIDTH_SAMPLE = 2000


def display_width(value: Any) -> int:
    """Characters as a spreadsheet shows them: CJK and full-width ones take two columns."""
    if value is None:
        return 0
    if isinstance(value, datetime):
        return 19
    if isinstance(value, date):
        return 10
    text = str(value)
    if text.isascii():
        return len(text)
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def excel_serial(value: datetime | date) -> float:
    if isinstance(value, datetime):
        value = value.replace(tzinfo=None)
        delta = value - EPOCH
        return delta.days + delta.seconds / 86400 + delta.microseconds / 86_400_000_000
    return float((value - EPOCH.date()).days)


@dataclass
class Series:
    column: int  # 0-based column of the block's values
    colour: str  # "#3C8D5A"


@dataclass
class ChartBlock:
    """A small table on the chart sheet and the column chart drawn from exactly those cells."""

    title: str
    x_title: str
    y_title: str
    headers: list[str]
    rows: list[list[Any]]
    series: list[Series]
    stacked: bool = False


@dataclass
class TableRef:
    sheet: str
    header_row: int  # 0-based
    first_row: int
    last_row: int  # == header_row when there are no rows


@dataclass
class Book:
    """An XLSX being written to ``fh`` (a file opened for binary writing, or a BytesIO)."""

    fh: BinaryIO
    title: str = ""
    wb: Any = field(init=False)

    def __post_init__(self) -> None:
        name = getattr(self.fh, "name", None)
        tmpdir = os.path.dirname(name) if isinstance(name, str) and name else None
        self._sink = _Sink(self.fh)
        self.wb = Workbook(
            self._sink,
            {
                "constant_memory": True,
                "strings_to_formulas": False,
                "strings_to_numbers": False,
                "strings_to_urls": False,
                "remove_timezone": True,
                **({"tmpdir": tmpdir} if tmpdir else {}),
            },
        )
        self.wb.set_properties({"title": self.title, "author": "FieldKit"})
        fmt = self.wb.add_format
        self.header = fmt({"bold": True, "bg_color": HEADER_FILL, "border": 1})
        self.title_fmt = fmt({"bold": True, "font_size": 14, "align": "center"})
        self.kind_fmt = {k: fmt({"num_format": v}) for k, v in FORMATS.items()}

    # -- tables ---------------------------------------------------------------------------

    def table(
        self,
        name: str,
        headers: Sequence[str],
        rows: Iterable[Sequence[Any]],
        *,
        kinds: Sequence[str] | None = None,
        title: str | None = None,
        widths: Sequence[int] | None = None,
        sample: Sequence[Sequence[Any]] | None = None,
    ) -> TableRef:
        """A sheet: optional merged title row, a bold frozen header with a filter, the rows.

        ``kinds`` per column: text | id | datetime | date | number | int (a number format,
        and ``id`` keeps the column text). Column widths: ``widths``, else fitted to
        ``sample`` (default: ``rows`` if it is a list)."""
        ws = self.wb.add_worksheet(_sheet_name(name))
        n = len(headers)
        kinds = list(kinds or ["text"] * n)
        if widths is None:
            sample = sample if sample is not None else rows if isinstance(rows, list) else []
            widths = _fit(headers, sample)
        for c, w in enumerate(widths):
            ws.set_column(c, c, w, self.kind_fmt["id"] if kinds[c] == "id" else None)
        r = 0
        if title:
            ws.merge_range(0, 0, 0, max(n - 1, 0), clean(title), self.title_fmt)
            r = 1
        header_row = r
        for c, h in enumerate(headers):
            ws.write_string(r, c, clean(str(h)), self.header)
        last = self._rows(ws, r + 1, rows, kinds)
        ws.freeze_panes(header_row + 1, 0)
        ws.autofilter(header_row, 0, max(last, header_row), max(n - 1, 0))
        return TableRef(ws.name, header_row, header_row + 1, last)

    def _rows(self, ws: Any, r: int, rows: Iterable[Sequence[Any]], kinds: list[str]) -> int:
        write_string, write_number = ws._write_string, ws._write_number
        write_boolean = ws._write_boolean
        fmt = [self.kind_fmt.get(k) for k in kinds]
        dt_fmt, d_fmt, t_fmt = (self.kind_fmt[k] for k in ("datetime", "date", "time"))
        last = r - 1
        for row in rows:
            for c, v in enumerate(row):
                t = type(v)
                if t is str:
                    if v:
                        write_string(r, c, clean(v) if not v.isprintable() else v, fmt[c])
                elif v is None:
                    continue
                elif t is float or t is int:
                    write_number(r, c, v, fmt[c])
                elif t is datetime:
                    write_number(r, c, excel_serial(v), dt_fmt)
                elif t is date:
                    write_number(r, c, excel_serial(v), d_fmt)
                elif t is bool:
                    write_boolean(r, c, v)
                elif t is time:
                    write_number(r, c, (v.hour * 3600 + v.minute * 60 + v.second) / 86400, t_fmt)
                else:
                    write_string(r, c, clean(str(v)), fmt[c])
            last = r
            r += 1
        return last

    def pairs(
        self, name: str, headers: Sequence[str], pairs: Sequence[tuple[str, Any]]
    ) -> TableRef:
        """A label | value sheet (the summary)."""
        return self.table(name, headers, [[label, value] for label, value in pairs])

    # -- charts ---------------------------------------------------------------------------

    def chart_sheet(self, name: str, blocks: list[ChartBlock]) -> list[tuple[int, int]]:
        """Each block's table in columns A–D, its chart to the right (from column F).
        Returns the (header row, last row) of every block, 0-based."""
        ws = self.wb.add_worksheet(_sheet_name(name))
        sheet = ws.name
        for c, w in enumerate((14, 12, 18, 10)):
            ws.set_column(c, c, w)
        r = 0
        spans = []
        for block in blocks:
            top = r
            for c, h in enumerate(block.headers):
                ws.write_string(r, c, clean(h), self.header)
            end = self._rows(ws, r + 1, block.rows, ["text"] + ["int"] * (len(block.headers) - 1))
            end = max(end, top)
            chart = self.wb.add_chart(
                {"type": "column", **({"subtype": "stacked"} if block.stacked else {})}
            )
            for s in block.series:
                chart.add_series(
                    {
                        "name": [sheet, top, s.column],
                        "categories": [sheet, top + 1, 0, end, 0],
                        "values": [sheet, top + 1, s.column, end, s.column],
                        "fill": {"color": s.colour},
                        "border": {"color": s.colour},
                        **({"overlap": 100} if block.stacked else {}),
                    }
                )
            chart.set_title({"name": block.title})
            chart.set_x_axis({"name": block.x_title})
            chart.set_y_axis({"name": block.y_title, "major_gridlines": {"visible": True}})
            chart.set_legend({"position": "bottom"})
            chart.set_size({"width": 640, "height": 320})
            ws.insert_chart(top, 5, chart)
            spans.append((top, end))
            r = max(end + 3, top + 18)  # room for the chart before the next block
        return spans

    def close(self) -> None:
        try:
            self.wb.close()
        except BaseException:
            # The zip writer XlsxWriter opened is left half-written; its finaliser must not
            # touch the caller's file again (the atomic write removes it).
            self._sink.die()
            raise


class _Sink:
    """The caller's file as XlsxWriter's zip target; inert once writing has failed, at the
    furthest offset reached, so the zip finaliser's arithmetic stays in range."""

    def __init__(self, fh: BinaryIO) -> None:
        self.fh, self.dead, self.high = fh, False, 0

    def die(self) -> None:
        self.dead = True

    def write(self, data: bytes) -> int:
        if self.dead:
            return len(data)
        n = self.fh.write(data)
        self.high = max(self.high, self.fh.tell())
        return n

    def seek(self, offset: int, whence: int = 0) -> int:
        if self.dead:
            return self.high
        pos = self.fh.seek(offset, whence)
        self.high = max(self.high, pos)
        return pos

    def tell(self) -> int:
        return self.high if self.dead else self.fh.tell()

    def flush(self) -> None:
        if not self.dead:
            self.fh.flush()

    def seekable(self) -> bool:
        return True


def _sheet_name(name: str) -> str:
    for ch in "[]:*?/\\":
        name = name.replace(ch, "-")
    return clean(name)[:31] or "Sheet"


def _fit(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[int]:
    widths = [display_width(h) for h in headers]
    for row in rows[:WIDTH_SAMPLE]:
        for c, v in enumerate(row[: len(widths)]):
            if v is not None and v != "":
                w = display_width(v)
                if w > widths[c]:
                    widths[c] = w
    return [max(MIN_WIDTH, min(MAX_WIDTH, w + 2)) for w in widths]


def write_csv(fh: BinaryIO, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """UTF-8 with a BOM (Excel then opens Chinese right), formula-like text escaped."""
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, dialect="excel")
    writer.writerow([csv_text(h) for h in headers])
    fh.write(b"\xef\xbb\xbf")
    it = iter(rows)
    while piece := list(islice(it, 5000)):  # in pieces: 100,000 rows never held as one text
        writer.writerows([list(map(csv_text, row)) for row in piece])
        fh.write(buf.getvalue().encode("utf-8"))
        buf.seek(0)
        buf.truncate()
    fh.write(buf.getvalue().encode("utf-8"))
