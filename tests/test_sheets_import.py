"""One reader for every import: .xls and .ods ledgers import like .xlsx (merged cells, two-row
headers, row-level rejections), footers are skipped, the gate's ID rules apply, a moved person is
an update, and hostile workbooks are refused with one line, importing nothing."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest

from fieldkit.ledger.importer import ImportFileError, import_file
from fieldkit.sheets.guard import Limits, SheetError
from fieldkit.sheets.reader import read_rows
from fieldkit.sheets.writer import Book
from tests import sheets_support as hostile
from tests.ledger_support import MESSY_HEADER_SUB, MESSY_HEADER_TOP, make_id
from tests.sheets_support import write_ods, write_xls
from tests.test_ledger_import import A, B, messy_rows

TITLE = "幸福社区一户一档台账"
WIDTH = len(MESSY_HEADER_TOP)


def messy_sheet() -> tuple[list[list], list[tuple[int, int, int, int]]]:
    """The messy ledger of test_ledger_import as rows and merged ranges (0-based), with a
    17-digit ID and a totals footer at the end."""
    rows = [[TITLE] + [None] * (WIDTH - 1), list(MESSY_HEADER_TOP), list(MESSY_HEADER_SUB)]
    rows += [list(r) for r in messy_rows()]
    rows.append([7, "周九", "51010719650430221", "", "3栋", "1单元", "103", "", "", None, None])
    rows.append(["合计", None, None, None, None, None, None, "7人", None, None, None])
    merges = [(0, 0, 0, WIDTH - 1), (1, 4, 1, 6)]
    merges += [(1, c, 2, c) for c, v in enumerate(MESSY_HEADER_TOP) if v and v != "地址"]
    merges += [(3, c, 4, c) for c in (4, 5, 6)]  # the household's address over its two rows
    return rows, merges


def assert_messy_import(store, path) -> None:
    s = import_file(store, path, lang="en")
    assert s.header_rows == (2, 3)
    assert (s.imported, s.updated, s.unchanged) == (4, 0, 0)
    bad = {r.row: r.reason for r in s.rejected}
    assert bad == {7: "id_check_digit", 8: "address_missing", 12: "id_invalid"}
    # 外星人 is no category: the person is imported, the word kept and warned about.
    assert [(w.row, w.reason) for w in s.warnings] == [(9, "unknown_category")]
    assert s.footer_rows == [13]  # 合计: skipped, not a bad person
    assert s.imported + s.updated + s.unchanged + len(s.rejected) == s.rows
    ledger = store.ledger
    hid = ledger.find_household("", "3栋", "2单元", "501")
    members = ledger.members(hid)
    assert [m.name_masked for m in members] == ["张*", "李*"]  # merged-down address shared
    assert ledger.member_full(members[0].id, purpose="test")["id_number"] == A
    assert ledger.member_full(members[1].id, purpose="test")["id_number"] == B
    assert members[0].categories == ("close_contact", "elderly_alone")
    # The 17-digit ID is named masked, never in full.
    rejected = next(r for r in s.rejected if r.row == 12)
    assert "51010719650430221" not in rejected.message + (rejected.id_masked or "")


def test_xls_ledger_imports_with_row_level_rejections(store, tmp_path):
    rows, merges = messy_sheet()
    assert_messy_import(store, write_xls(tmp_path / "台账.xls", rows, merges))


def test_ods_ledger_imports_with_row_level_rejections(store, tmp_path):
    rows, merges = messy_sheet()
    assert_messy_import(store, write_ods(tmp_path / "台账.ods", rows, merges))


def test_xlsx_written_by_the_export_writer_reads_back_cell_by_cell(tmp_path):
    path = tmp_path / "t.xlsx"
    rows = [
        ["张三", 36.5, 3, datetime(2024, 3, 1, 8, 5, 0), date(2024, 3, 2), "=1+1"],
        ["李四", 37.3, 0, datetime(2024, 3, 1, 23, 59, 59), None, "@SUM(A1)"],
    ]
    with path.open("wb") as fh:
        book = Book(fh, title="t")
        book.table(
            "表",
            ["姓名", "体温", "人数", "时间", "日期", "备注"],
            rows,
            kinds=["text", "number", "int", "datetime", "date", "text"],
            title="标题",
        )
        book.close()
    got = read_rows(path)
    assert got[0] == ["标题"] * 6  # the merged title row, filled
    assert got[1] == ["姓名", "体温", "人数", "时间", "日期", "备注"]
    assert got[2] == rows[0]  # the formula-like text stays text
    assert got[3] == ["李四", 37.3, 0, datetime(2024, 3, 1, 23, 59, 59), "", "@SUM(A1)"]
    assert [type(v) for v in got[2]] == [str, float, float, datetime, date, str]


def test_a_person_who_moved_household_is_an_update_logged_as_an_edit(store, tmp_path):
    first = [
        ["姓名", "身份证号", "楼栋", "房号"],
        ["张三", A, "1栋", "101"],
        ["李四", B, "1栋", "101"],
    ]
    moved = [
        ["姓名", "身份证号", "楼栋", "房号"],
        ["张三", A, "9栋", "901"],  # a household that does not exist yet
        ["李四", B, "1栋", "101"],
        ["王五", make_id(7), "1栋", "102"],
    ]
    import_file(store, write_ods(tmp_path / "a.ods", first))
    s = import_file(store, write_ods(tmp_path / "b.ods", moved))
    assert (s.imported, s.updated, s.unchanged, s.rejected) == (1, 1, 1, [])
    ledger = store.ledger
    new_home = ledger.find_household("", "9栋", "", "901")
    assert [m.name_masked for m in ledger.members(new_home)] == ["张*"]
    old_home = ledger.find_household("", "1栋", "", "101")
    assert [m.name_masked for m in ledger.members(old_home)] == ["李*"]
    edits = store.g.query("SELECT * FROM ledger_edits WHERE entity = 'member' AND base_version = 1")
    assert len(edits) == 1  # the move, logged as a ledger edit


@pytest.mark.parametrize(
    "build, code",
    [
        (hostile.far_cell, "rows"),
        (hostile.far_cell_spelt_oddly, "rows"),
        (hostile.whole_sheet_merge, "rows"),
        (hostile.huge_column, "rows"),
        (hostile.wide_row, "columns"),
        (hostile.zip_bomb, "unzipped"),
        (hostile.huge_shared_strings, "unzipped"),  # 80 MB at 1000:1: a bomb first
        (hostile.billion_laughs, "entity"),
    ],
)
def test_hostile_workbook_refused_in_one_line_importing_nothing(store, tmp_path, build, code):
    path = build(tmp_path / "hostile.xlsx")
    before = store.g.scalar("SELECT count(*) FROM households")
    with pytest.raises(ImportFileError) as err:
        import_file(store, path)
    assert err.value.code == f"sheets.refused.{code}"
    for lang in ("zh", "en"):
        text = err.value.render(lang)
        assert "\n" not in text and "Traceback" not in text
    assert "nothing was imported" in err.value.render("en")
    assert store.g.scalar("SELECT count(*) FROM households") == before == 0
    assert not store.audit.entries(5, "ledger_import")


def test_far_cell_file_is_small(tmp_path):
    assert hostile.far_cell(tmp_path / "f.xlsx").stat().st_size < 2000


def test_reader_errors_are_sheet_errors(tmp_path):
    bad = tmp_path / "x.ods"
    bad.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(SheetError) as err:
        read_rows(bad)
    assert err.value.code == "sheets.error.not_workbook"
    with pytest.raises(SheetError) as err:
        read_rows(tmp_path / "none.xlsx")
    assert err.value.code == "sheets.error.not_found"


def test_shared_strings_bound_on_its_own(tmp_path):
    """Text that does not compress like a bomb still stops at the shared-strings bound."""
    import random

    rnd = random.Random(7)
    words = [
        "".join(rnd.choice("甲乙丙丁戊己庚辛壬癸子丑寅卯") for _ in range(40)).encode()
        for _ in range(64)
    ]

    def pieces():
        yield b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        for i in range(30_000):
            yield b"<si><t>" + words[i % 64] + str(i).encode() + b"</t></si>"
        yield b"</sst>"

    path = hostile.write_raw_xlsx(tmp_path / "s.xlsx", "", extra={"xl/sharedStrings.xml": pieces()})
    with pytest.raises(SheetError) as err:
        read_rows(path, Limits(shared_strings_bytes=1 << 20))
    assert err.value.code == "sheets.refused.shared_strings"
    assert read_rows(path)[1] == ["张三", 1.0, 101.0]  # within the default bounds it reads


DATA = Path(__file__).parent / "data" / "sheets"


@pytest.mark.parametrize("name", ["messy_ledger.xls", "messy_ledger.ods"])
def test_ledgers_saved_by_libreoffice_import_like_xlsx(store, name):
    """The same messy ledger saved by LibreOffice Calc 7 as .xls (BIFF8) and .ods (made with
    `soffice --headless --convert-to xls|ods` from the openpyxl .xlsx; committed, so the test
    needs no LibreOffice)."""
    assert_messy_import(store, DATA / name)


def test_hostile_xls_refused_without_building_its_grid(store, tmp_path):
    path = hostile.far_cells_xls(tmp_path / "far.xls")
    assert path.stat().st_size < 10_000
    with pytest.raises(ImportFileError) as err:
        import_file(store, path)
    assert err.value.code == "sheets.refused.xls_memory"
    assert "nothing was imported" in err.value.render("en")
    assert store.g.scalar("SELECT count(*) FROM households") == 0
