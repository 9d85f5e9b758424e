"""The writer's whole-row fast path (fieldkit.sheets.writer.RowSheet) writes the same workbook,
byte for byte, as stock XlsxWriter's per-cell calls; and text shaped like XlsxWriter's raw
rich-string convention (``<r>…</r>``) stays text instead of breaking or rewriting the file."""

from __future__ import annotations

import io
import zipfile
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import pytest
from python_calamine import CalamineWorkbook
from xlsxwriter.worksheet import Worksheet

from fieldkit.sheets.writer import Book, ChartBlock, RowSheet, Series, stock_rows

TEXTS = [
    "张*",
    "放行",
    "a & b < c > d \"q\" 's'",
    " leading space",
    "trailing space ",
    "\u3000全角空格",
    "tab\tinside",
    "line\nbreak",
    "cr\rinside",
    "ctrl\x01\x02\x1fgone",
    "\x0b\x0c",
    "_x0041_ looks like an escape",
    "_x00zz_ does not",
    '=HYPERLINK("http://evil.example","点我")',
    "+1+cmd|' /C calc'!A0",
    "emoji 😷 and 𠀀",
    "\ufffe\uffff",
    "x" * 20000,
    "长" * 17000,
]


def mixed_rows(n: int) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for i in range(n):
        rows.append(
            [
                datetime(2026, 12, 2, i % 24, i % 60, i % 60, (i * 7919) % 1_000_000),
                TEXTS[i % len(TEXTS)] if i % 7 else "",
                f"1101051990{i:08d}"[-18:],
                36.0 + (i % 15) / 10,
                i if i % 5 else -i,
                None if i % 3 else date(2026, 1 + i % 12, 1 + i % 28),
                time(i % 24, i % 60, i % 60),
                bool(i % 2),
                Decimal("1.10") if i % 11 == 0 else 0.1 + 0.2,
                "进" if i % 2 else "出",
                2**60 + i if i % 13 == 0 else -0.0,
            ][: 11 - (i % 4 == 0) * 3]  # some rows shorter
        )
        if i % 17 == 0:
            rows.append([None, "", None])  # a row with no cells at all
    return rows


class StockRowSheet(RowSheet):
    """RowSheet through XlsxWriter's per-cell calls (only its ``<r>…</r>`` rule differs)."""

    def write_rows(self, r, rows, fmts, when):  # type: ignore[no-untyped-def]
        return stock_rows(self, r, rows, fmts, when)


def workbook(tmp_path, name: str, sheet_class: type[Worksheet], rows) -> dict[str, bytes]:
    path = tmp_path / name
    with open(path, "wb") as fh:
        book = Book(fh, title="t", sheet_class=sheet_class)
        kinds = ["datetime", "text", "id", "number", "int", "date", "text", "text", "text"]
        book.table("通行记录", [f"h{i}" for i in range(11)], rows, kinds=kinds + ["text"] * 2)
        book.table(
            "标题", ["a", "b"], [r[:2] for r in rows[:50]], title="<台账> & 标题", widths=[10, 12]
        )
        book.chart_sheet(
            "图表",
            [
                ChartBlock(
                    "t",
                    "x",
                    "y",
                    ["h", "in", "out"],
                    [["00", 1, 2], ["01", 3, 0]],
                    [Series(1, "#3C8D5A"), Series(2, "#D68A2E")],
                ),
                ChartBlock("t2", "x", "y", ["h", "n"], [], [Series(1, "#4A78B5")], stacked=True),
            ],
        )
        book.close()
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist() if n != "docProps/core.xml"}


@pytest.mark.parametrize("n", [1, 40, 2500])
def test_fast_rows_write_the_same_bytes_as_stock_xlsxwriter(tmp_path, n):
    rows = mixed_rows(n)
    fast = workbook(tmp_path, "fast.xlsx", RowSheet, rows)
    stock = workbook(tmp_path, "stock.xlsx", Worksheet, rows)
    assert fast.keys() == stock.keys()
    for part in stock:
        assert fast[part] == stock[part], part
    assert b"<sheetData>" in fast["xl/worksheets/sheet1.xml"]


RICH = [
    "<r>&</r>",
    '<r><t>a</t></r></is><f>HYPERLINK("http://evil.example/","x")</f><is><r><t>b</t></r>',
    "<r> spaced </r>",
    "<r>" + "&" * 9000 + "</r>",
]


def test_rich_string_lookalikes_stay_text_and_match_the_per_cell_path(tmp_path):
    rows = mixed_rows(30) + [[None, text] for text in RICH]
    fast = workbook(tmp_path, "fast.xlsx", RowSheet, rows)
    slow = workbook(tmp_path, "slow.xlsx", StockRowSheet, rows)
    for part in slow:
        assert fast[part] == slow[part], part
    assert b"<f>" not in fast["xl/worksheets/sheet1.xml"]
    wb = CalamineWorkbook.from_filelike(io.BytesIO((tmp_path / "fast.xlsx").read_bytes()))
    got = [r[1] for r in wb.get_sheet_by_index(0).to_python()[-len(RICH) :]]
    assert got[:3] == RICH[:3]
    assert got[3].startswith("<r>&&&") and len(got[3]) <= 32767


@pytest.mark.parametrize("in_memory", [True, False])
def test_rich_string_lookalikes_in_a_header_a_title_and_in_memory(tmp_path, in_memory):
    """Headers and titles go through XlsxWriter's own calls; a buffer is written in memory
    (shared strings): the same rule holds."""
    fh: Any = io.BytesIO() if in_memory else open(tmp_path / "b.xlsx", "wb")  # noqa: SIM115
    with fh:
        book = Book(fh)
        book.table("s", [RICH[0], "b"], [[RICH[1], RICH[2]]], title=RICH[0])
        book.close()
        data = fh.getvalue() if in_memory else (tmp_path / "b.xlsx").read_bytes()
    sheet = CalamineWorkbook.from_filelike(io.BytesIO(data)).get_sheet_by_index(0).to_python()
    assert sheet[0][0] == RICH[0]
    assert sheet[1] == [RICH[0], "b"]
    assert sheet[2] == [RICH[1], RICH[2]]


def test_temporary_files_stay_beside_the_export_and_are_removed(tmp_path):
    """The atomic write opens its temporary file by descriptor (os.fdopen): the workbook's own
    temporary files (personal data in a full export) go to that folder, not /tmp, and are
    gone after close, as after a failed write."""
    import os
    import tempfile as tf

    fd, name = tf.mkstemp(dir=tmp_path, suffix=".part")
    with os.fdopen(fd, "wb") as fh:
        book = Book(fh)
        book.table("s", ["a"], [["张三"]] * 3)
        row_file = book.wb.worksheets()[0].row_data_filename
        assert os.path.dirname(os.path.dirname(row_file)) == str(tmp_path)
        book.close()
    assert os.listdir(tmp_path) == [os.path.basename(name)]

    class FullDisk(io.BytesIO):
        name = str(tmp_path / "full.xlsx")

        def write(self, data):  # type: ignore[no-untyped-def]
            raise OSError(28, "No space left on device")

    book = Book(FullDisk())
    book.table("s", ["a"], [["张三"]] * 3)
    with pytest.raises(OSError, match="No space left"):  # the OSError itself, for the caller
        book.close()
    assert os.listdir(tmp_path) == [os.path.basename(name)]  # no temporary folder left


def test_not_a_number_is_an_empty_cell(tmp_path):
    for sheet_class in (RowSheet, StockRowSheet):
        buf = io.BytesIO()
        with open(tmp_path / "n.xlsx", "wb") as fh:
            book = Book(fh, sheet_class=sheet_class)
            rows = [[1.5, float("nan")], [float("inf"), 2], [float("nan")], [-float("inf"), 3]]
            book.table("s", ["a", "b"], rows, kinds=["number", "int"])
            book.close()
        buf = io.BytesIO((tmp_path / "n.xlsx").read_bytes())
        got = CalamineWorkbook.from_filelike(buf).get_sheet_by_index(0).to_python()
        assert got[1:] == [[1.5, ""], ["", 2.0], ["", ""], ["", 3.0]]


def test_a_failure_while_writing_rows_removes_the_temporary_folder_at_once(tmp_path):
    """The rows come from the store (decrypted as they go): if that fails half-way, the
    temporary files holding the rows so far are gone before the error reaches the user, not
    when the exception (which holds the Book) is dropped."""
    import os

    def rows():
        yield ["张三"]
        raise RuntimeError("the store failed")

    with open(tmp_path / "out.xlsx", "wb") as fh:
        book = Book(fh)
        with pytest.raises(RuntimeError) as err:
            book.table("s", ["a"], rows())
        assert os.listdir(tmp_path) == ["out.xlsx"], err.value  # the Book is still held here
