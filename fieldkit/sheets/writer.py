"""The one spreadsheet writer every export goes through (shift log, daily report, passages,
household and monitoring ledgers, template, the town console's downloads): XLSX with XlsxWriter,
CSV with the csv module. Both take their cell text from :mod:`.cells`, so no user text becomes a
formula in either.

XLSX: every text is a string cell (the workbook is opened with ``strings_to_formulas``/
``strings_to_numbers``/``strings_to_urls`` off, and a text shaped like XlsxWriter's raw
rich-string XML is written as a literal run, see :class:`RowSheet`), numbers are numbers, dates
and times are date cells with a date format, header rows bold and frozen with a filter, column
widths fitted to the first rows, native Excel column charts that LibreOffice opens too
(tests/test_sheets_libreoffice.py). A file is written in constant-memory mode: one row of cells
held at a time, XlsxWriter's temporary files in a private folder beside the export (not /tmp: a
full export holds personal data), removed on close, failed or not. A buffer (the console's
downloads) is written in memory, with no temporary file.

Speed, and why XlsxWriter (issue 17). ``bench/reports.py 10000`` with rustpy-xlsxwriter on the
path, one run on the shared 2-core machine 2026-12-02, the same document of 10,000 passages,
fastest of three, wall clock (100,000 passages, another run, same order: 0.90, 2.12, 6.69,
27.4 s)::

    CSV writer                                   0.058 s
    XlsxWriter, data rows through RowSheet       0.216 s   <- this module (whole workbook)
    XlsxWriter, stock per-cell calls             0.828 s
    openpyxl write-only (the writer before)      2.804 s
    rustpy-xlsxwriter 0.8.0, data sheet only     0.193 s

Wall clock varies two-fold on this machine; CPU time, fastest of five, one process, data
sheet alone: 10,000 rows CSV 0.057 s, RowSheet 0.128 s, rustpy-xlsxwriter 0.079 s (rows
turned into the dicts it takes included); 100,000 rows 0.59, 1.14, 0.78 s.

In constant-memory mode about 85 % of XlsxWriter's time was its per-cell XML writing;
:class:`RowSheet` writes the same bytes a whole row at a time (tests/test_sheets_fast_rows.py
compares them with stock XlsxWriter's byte for byte), 3-4x faster, which leaves the zip
compression (deflate level 6, about 40 % of the rest, which XlsxWriter does not let one
change: level 1 would halve it for a file 22 % larger) as the largest single part.
rustpy-xlsxwriter (Rust) is about 1.5x faster still on the data sheet, and its 0.8.0 has
charts, filters, frozen panes and formats; but a chart there is drawn from the one table of its
sheet and without series colours (the chart sheet here holds three tables, the fever bins in
red), rows go in as dicts keyed by header, and it is a pre-1.0 binding by one author.
XlsxWriter is maintained for over ten years, among PyPI's 400 most downloaded, and its author
writes rust_xlsxwriter, the Rust library those bindings wrap. So: the well-kept library, and
~200 lines of row writing inside it, proven against it.

One piece (~630 lines): the one writer is the point of this module; RowSheet's fast rows sit
beside the Book that uses them.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import tempfile
import unicodedata
import weakref
from collections.abc import Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import date, datetime, time
from itertools import islice
from typing import Any, BinaryIO

from xlsxwriter import Workbook
from xlsxwriter.exceptions import FileCreateError
from xlsxwriter.format import Format
from xlsxwriter.utility import _preserve_whitespace, _utf16_len, _utf16_truncate, xl_col_to_name
from xlsxwriter.worksheet import Worksheet

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
        if value.tzinfo is not None:
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
    sheet_class: type[Worksheet] = field(default_factory=lambda: RowSheet)
    wb: Any = field(init=False)

    def __post_init__(self) -> None:
        folder = _folder_of(self.fh)
        on_disk = folder is not None
        # XlsxWriter's temporary files (rows, then each part before zipping) in a private
        # folder beside the export, removed whole on close, failed or not (XlsxWriter leaves
        # them behind when a write fails, e.g. on a full disk), or when the Book is dropped.
        tmpdir = tempfile.mkdtemp(prefix=".fieldkit-xlsx-", dir=folder or None) if on_disk else None
        self._cleanup = weakref.finalize(self, shutil.rmtree, tmpdir or "", ignore_errors=True)
        if tmpdir is None:
            self._cleanup.detach()
        self._sink = _Sink(self.fh)
        self.wb = Workbook(
            self._sink,
            {
                # A file on disk: constant memory, temporary files beside it. A buffer (the
                # console's downloads): everything in memory, no temporary file anywhere.
                "constant_memory": on_disk,
                "in_memory": not on_disk,
                "strings_to_formulas": False,
                "strings_to_numbers": False,
                "strings_to_urls": False,
                "remove_timezone": True,
                **({"tmpdir": tmpdir} if tmpdir else {}),
            },
        )
        self.wb.worksheet_class = self.sheet_class
        self.wb.set_properties({"title": self.title, "author": "FieldKit"})
        fmt = self.wb.add_format
        self.header = fmt({"bold": True, "bg_color": HEADER_FILL, "border": 1})
        self.title_fmt = fmt({"bold": True, "font_size": 14, "align": "center"})
        self.note_fmt = fmt({"font_size": 10, "font_color": "#555555"})
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
        note: str | None = None,
    ) -> TableRef:
        """A sheet: optional merged title and note rows, a bold frozen header with a filter,
        the rows.

        ``kinds`` per column: text | id | datetime | date | number | int (a number format,
        and ``id`` keeps the column text). Column widths: ``widths``, else fitted to
        ``sample`` (default: ``rows`` if it is a list)."""
        try:
            return self._table(name, headers, rows, kinds, title, widths, sample, note)
        except BaseException:
            self._abort()
            raise

    def _table(
        self,
        name: str,
        headers: Sequence[str],
        rows: Iterable[Sequence[Any]],
        kinds: Sequence[str] | None,
        title: str | None,
        widths: Sequence[int] | None,
        sample: Sequence[Sequence[Any]] | None,
        note: str | None,
    ) -> TableRef:
        ws = self.wb.add_worksheet(_sheet_name(name))
        n = len(headers)
        kinds = list(kinds or ["text"] * n)
        if widths is None:
            sample = sample if sample is not None else rows if isinstance(rows, list) else []
            widths = _fit(headers, sample)
        for c, w in enumerate(widths):
            ws.set_column(c, c, w, self.kind_fmt["id"] if kinds[c] == "id" else None)
        r = 0
        for text, style in ((title, self.title_fmt), (note, self.note_fmt)):
            if text:
                if n > 1:
                    ws.merge_range(r, 0, r, n - 1, clean(text), style)
                else:  # XlsxWriter merges no single cell (it would drop the text)
                    ws.write_string(r, 0, clean(text), style)
                r += 1
        header_row = r
        for c, h in enumerate(headers):
            ws.write_string(r, c, clean(str(h)), self.header)
        last = self._rows(ws, r + 1, rows, kinds)
        ws.freeze_panes(header_row + 1, 0)
        ws.autofilter(header_row, 0, max(last, header_row), max(n - 1, 0))
        return TableRef(ws.name, header_row, header_row + 1, last)

    def _rows(self, ws: Any, r: int, rows: Iterable[Sequence[Any]], kinds: list[str]) -> int:
        fmts = [self.kind_fmt.get(k) for k in kinds]
        when = (self.kind_fmt["datetime"], self.kind_fmt["date"], self.kind_fmt["time"])
        if isinstance(ws, RowSheet):
            return ws.write_rows(r, rows, fmts, when)
        return stock_rows(ws, r, rows, fmts, when)

    def pairs(
        self, name: str, headers: Sequence[str], pairs: Sequence[tuple[str, Any]]
    ) -> TableRef:
        """A label | value sheet (the summary)."""
        return self.table(name, headers, [[label, value] for label, value in pairs])

    # -- charts ---------------------------------------------------------------------------

    def chart_sheet(self, name: str, blocks: list[ChartBlock]) -> list[tuple[int, int]]:
        """Each block's table in columns A–D, its chart to the right (from column F).
        Returns the (header row, last row) of every block, 0-based."""
        try:
            return self._chart_sheet(name, blocks)
        except BaseException:
            self._abort()
            raise

    def _chart_sheet(self, name: str, blocks: list[ChartBlock]) -> list[tuple[int, int]]:
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
        except BaseException as exc:
            self._abort()
            cause = exc.args[0] if isinstance(exc, FileCreateError) and exc.args else None
            if isinstance(cause, OSError):  # the file system's own error (a full disk), for
                raise cause from None  # the caller to say in one sentence
            raise
        finally:
            self._cleanup()

    def _abort(self) -> None:
        """After a failed write: the zip writer XlsxWriter opened is left half-written, and
        its finaliser must not touch the caller's file again (the atomic write removes it);
        the row files are closed and the temporary folder removed now, not when the
        exception (which holds this Book) is dropped."""
        self._sink.die()
        for ws in self.wb.worksheets():
            with suppress(Exception):
                ws._opt_close()
        self._cleanup()


When = tuple[Format, Format, Format]  # the formats of datetime, date and time cells
STRMAX = 32767  # characters in a cell (UTF-16 units), as Excel and XlsxWriter count
# Text written as it is (no escape, no xml:space): everything else goes through _text_tail.
SPECIAL = re.compile(r"[&<>]|_x|^\s|\s$")
CACHE = 4096  # cell tails kept per column: the repeated words, not every ID


def stock_rows(
    ws: Worksheet, r: int, rows: Iterable[Sequence[Any]], fmts: Sequence[Format | None], when: When
) -> int:
    """The rows through XlsxWriter's own per-cell calls (the reference :class:`RowSheet`
    matches, and its fallback)."""
    write_string, write_number = ws._write_string, ws._write_number
    write_boolean = ws._write_boolean
    dt_fmt, d_fmt, t_fmt = when
    last = r - 1
    for row in rows:
        for c, v in enumerate(row):
            t = type(v)
            if t is str:
                if v:
                    write_string(r, c, clean(v) if not v.isprintable() else v, fmts[c])
            elif v is None:
                continue
            elif t is float or t is int:
                if v - v == 0:  # not NaN or infinite (XlsxWriter refuses them): empty
                    write_number(r, c, v, fmts[c])
            elif t is datetime:
                write_number(r, c, excel_serial(v), dt_fmt)
            elif t is date:
                write_number(r, c, excel_serial(v), d_fmt)
            elif t is bool:
                write_boolean(r, c, v)
            elif t is time:
                write_number(r, c, (v.hour * 3600 + v.minute * 60 + v.second) / 86400, t_fmt)
            else:
                write_string(r, c, clean(str(v)), fmts[c])
        last = r
        r += 1
    return last


def _literal_run(text: str) -> str:
    """``text`` as one rich-text run of itself, escaped: what XlsxWriter writes unescaped for
    a text shaped ``<r>…</r>`` is then well-formed and reads back as ``text``. Cut so the run
    stays within Excel's 32,767 characters (XlsxWriter would cut the closing tags instead)."""
    space = ' xml:space="preserve"' if _preserve_whitespace(text) else ""
    while True:
        body = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        run = f"<r><t{space}>{body}</t></r>"
        over = _utf16_len(run) - STRMAX if len(run) > STRMAX // 2 else 0
        if over <= 0:
            return run
        text = text[: len(text) - over]


class RowSheet(Worksheet):
    """A stock XlsxWriter worksheet whose data rows are written a whole row of XML at a time.

    Stock XlsxWriter in constant-memory mode keeps each cell as a tuple until the next row
    starts, then writes it through ``_write_cell``: an attribute list, two or three regular
    expressions per text and one file write per cell. :meth:`write_rows` writes the same bytes
    per row: the cell reference from a column prefix and the row number, the rest of each text
    cell (escaping, ``xml:space``, style index) made by XlsxWriter's own escaping functions and
    kept per column and value (a passage export repeats 进/出, 放行, 本小区居民, the operator),
    and one file write per thousand rows. ``tests/test_sheets_fast_rows.py`` checks byte for
    byte that the sheet XML equals stock XlsxWriter's on mixed data (escapes, control
    characters, ``_xHHHH_`` look-alikes, leading spaces, dates, times, numbers, booleans, empty
    cells, styles). What the fast path does not cover (in-memory workbooks, row options,
    comments) goes through the stock per-cell calls.

    One deliberate difference from stock XlsxWriter: a text shaped ``<r>…</r>`` is its
    convention for a rich string already in XML, written unescaped, so user text could break
    the file (``<r>&</r>``) or add elements to the cell (a ``<f>`` formula). Here such a text
    is written as a literal rich run of itself (:func:`_literal_run`), in every mode.
    """

    def _write_string(
        self, row: int, col: int, string: str, cell_format: Format | None = None
    ) -> Any:
        if string.startswith("<r>") and string.endswith("</r>"):
            string = _literal_run(string)
        return super()._write_string(row, col, string, cell_format)

    def write_rows(
        self, r: int, rows: Iterable[Sequence[Any]], fmts: Sequence[Format | None], when: When
    ) -> int:
        """Write ``rows`` from row ``r`` (0-based) and return the last row's index (``r - 1``
        for none). ``fmts``: each column's format; ``when``: those of date-times, dates and
        times wherever they are. Cells are typed as in :func:`stock_rows`."""
        if (
            not self.constant_memory
            or self.row_info
            or self.comments
            or self.excel_version == 2010
            or self.default_row_height != self.original_row_height
            or r <= int(self.previous_row)  # type: ignore[has-type]
        ):
            return stock_rows(self, r, rows, fmts, when)
        n = len(fmts)
        col_fmt = [
            f if f is not None else getattr(self.col_info.get(c), "column_format", None)
            for c, f in enumerate(fmts)
        ]
        refs = [f'<c r="{xl_col_to_name(c)}' for c in range(n)]
        attrs: dict[int, str] = {}  # id(format) -> ' s="N"', in the order stock assigns N

        def attr(fmt: Format | None) -> str:
            if fmt is None:
                return ""
            a = attrs.get(id(fmt))
            if a is None:
                a = attrs[id(fmt)] = f' s="{fmt._get_xf_index()}"'
            return a

        col_attr: list[str | None] = [None] * n  # each column's, once first needed
        texts: list[dict[str, str]] = [{} for _ in range(n)]
        text_tail, special = self._text_tail, SPECIAL.search
        dt_fmt, d_fmt, t_fmt = when
        rowmax = self.xls_rowmax
        fh = self.fh
        out: list[str] = []
        first = done = held_at = -1
        held: Sequence[Any] | None = None
        cmin, cmax = n, -1
        last = r - 1
        # Each row is written when the next row with a cell arrives, and the last one through
        # XlsxWriter's own calls: stock writes a row when the next one starts, so style
        # numbers are handed out in the same order (and the last row waits for close()).
        for last, row in enumerate(rows, start=r):
            for v in row:
                if v is not None and v != "":
                    break
            else:
                continue  # no cell: nothing written, as stock
            i, held_at, todo, held = held_at, last, held, row
            if todo is None or i >= rowmax:
                continue  # the first row, held; or beyond Excel's last row (stock ignores it)
            if first < 0:
                first = i
                self._write_single_row(i)  # the header still held, as stock would
            rn = str(i + 1)
            cells = [f'<row r="{rn}">']
            for c, v in enumerate(todo):
                t = type(v)
                if t is str:
                    if not v:
                        continue
                    cache = texts[c]
                    tail = cache.get(v)
                    if tail is None:
                        a = col_attr[c]
                        if a is None:
                            a = col_attr[c] = attr(col_fmt[c])
                        if len(v) < 16384 and v.isprintable() and not special(v):
                            tail = f'{a} t="inlineStr"><is><t>{v}</t></is></c>'  # as is
                        else:
                            tail = text_tail(v, a)
                        if len(cache) < CACHE:
                            cache[v] = tail
                    cells.append(f'{refs[c]}{rn}"{tail}')
                elif v is None:
                    continue
                elif t is float or t is int:
                    if v - v != 0:
                        continue  # NaN or infinite: an empty cell, as in stock_rows
                    a = col_attr[c]
                    if a is None:
                        a = col_attr[c] = attr(col_fmt[c])
                    cells.append(f'{refs[c]}{rn}"{a}><v>{v:.16G}</v></c>')
                elif t is datetime:
                    if v.tzinfo is not None:
                        v = v.replace(tzinfo=None)
                    d = v - EPOCH  # excel_serial, inline
                    day = d.days + d.seconds / 86400 + d.microseconds / 86_400_000_000
                    cells.append(f'{refs[c]}{rn}"{attr(dt_fmt)}><v>{day:.16G}</v></c>')
                elif t is date:
                    a = attr(d_fmt)
                    cells.append(f'{refs[c]}{rn}"{a}><v>{excel_serial(v):.16G}</v></c>')
                elif t is bool:
                    cells.append(f'{refs[c]}{rn}"{attr(col_fmt[c])} t="b"><v>{int(v)}</v></c>')
                elif t is time:
                    day = (v.hour * 3600 + v.minute * 60 + v.second) / 86400
                    cells.append(f'{refs[c]}{rn}"{attr(t_fmt)}><v>{day:.16G}</v></c>')
                else:
                    tail = text_tail(clean(str(v)), attr(col_fmt[c]))
                    cells.append(f'{refs[c]}{rn}"{tail}')
                if c < cmin:
                    cmin = c
                if c > cmax:
                    cmax = c
            if len(cells) == 1:
                continue  # only NaN: no cell
            cells.append("</row>")
            out.append("".join(cells))
            done = i
            if len(out) >= 1000:
                fh.write("".join(out))
                out.clear()
        fh.write("".join(out))
        if first >= 0:
            self._check_dimensions(first, cmin)
            self._check_dimensions(done, cmax)
            self.previous_row = done
        if held is not None:
            stock_rows(self, held_at, [held], fmts, when)
        return last

    def _text_tail(self, text: str, attr: str) -> str:
        """What follows a text cell's reference, as ``_write_string`` + ``_write_cell`` write
        it in constant-memory mode (with :func:`_literal_run` for ``<r>…</r>`` text)."""
        if not text.isprintable():
            text = clean(text)
        if text.startswith("<r>") and text.endswith("</r>"):
            text = _literal_run(text)
        if len(text) > self.xls_strmax // 2 and _utf16_len(text) > self.xls_strmax:
            text = _utf16_truncate(text, self.xls_strmax)
        if "_x" in text or not text.isprintable():
            text = self._escape_control_characters(text)
        if text.startswith("<r>") and text.endswith("</r>"):
            return f'{attr} t="inlineStr"><is>{text}</is></c>'
        space = ' xml:space="preserve"' if _preserve_whitespace(text) else ""
        return f'{attr} t="inlineStr"><is><t{space}>{self._escape_data(text)}</t></is></c>'


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


def _folder_of(fh: BinaryIO) -> str | None:
    """The folder of the file ``fh`` writes to (opened by name or by descriptor, as the atomic
    write's ``os.fdopen``); None for a buffer."""
    name = getattr(fh, "name", None)
    if isinstance(name, str) and name:
        return os.path.dirname(os.path.abspath(name))
    try:
        fd = fh.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    try:
        return os.path.dirname(os.readlink(f"/proc/self/fd/{fd}"))
    except (
        OSError
    ):  # no /proc: a real file all the same, its temporary files where Python puts them
        return ""


def _sheet_name(name: str) -> str:
    for ch in "[]:*?/\\":
        name = name.replace(ch, "-")
    return clean(name)[:31] or "Sheet"


def _fit(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[int]:
    widths = [display_width(h) for h in headers]
    known: dict[str, int] = {}  # the same words come back in every row
    for row in rows[:WIDTH_SAMPLE]:
        for c, v in enumerate(row[: len(widths)]):
            if v is not None and v != "":
                if type(v) is str:
                    w = known.get(v)
                    if w is None:
                        w = known[v] = display_width(v)
                else:
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
