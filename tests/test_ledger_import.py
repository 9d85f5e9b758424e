"""Importing the ledgers offices keep: messy XLSX and CSV files, built here with openpyxl and
codecs, imported into a real store and read back."""

from __future__ import annotations

import codecs
import json

import pytest
from openpyxl import Workbook

from fieldkit.ledger.importer import ImportFileError, import_file
from tests.ledger_support import (
    fullwidth,
    make_id,
    simple_rows,
    spaced,
    write_messy_xlsx,
    wrong_check,
)

A, B, C, D = make_id(1), make_id(2), make_id(3), make_id(4)


def messy_rows():
    """Rows 4..: a household of two with its address merged down, blank rows, full-width
    digits, spaces inside an ID, then bad rows."""
    return [
        [
            1,
            "张三",
            spaced(A),
            "138 0013 8000",
            "3栋",
            "2单元",
            "501",
            "密接、独居老人",
            "居家隔离医学观察",
            "李干部",
            None,
        ],  # row 4
        [
            2,
            "李四",
            fullwidth(B),
            fullwidth("13900139000"),
            None,
            None,
            None,
            "",
            "",
            None,
            "户主妻子",
        ],  # row 5 (merged)
        [None] * 11,  # row 6 blank
        [3, "王五", wrong_check(C), "", "3栋", "2单元", "502", "", "", "李干部", None],  # row 7
        [4, "赵六", D, "", None, None, None, "", "", None, None],  # row 8 no addr
        [5, "钱七", make_id(5), "", "3栋", "1单元", "101", "外星人", "", None, None],  # row 9
        [None, "", "", "", "", "", "", "", "", "", ""],  # row 10 blank
        [
            6,
            "孙八",
            make_id(6),
            "",
            "3栋",
            "1单元",
            "102",
            "境外返回",
            "居家健康监测",
            None,
            None,
        ],  # row 11
    ]


@pytest.fixture
def messy_xlsx(tmp_path):
    return write_messy_xlsx(
        tmp_path / "台账.xlsx",
        messy_rows(),
        merge_down=[(5, 4, 5), (6, 4, 5), (7, 4, 5), (10, 4, 5)],
    )


def test_messy_xlsx_imports_good_rows_and_reports_bad_ones(store, messy_xlsx):
    s = import_file(store, messy_xlsx, lang="en")
    assert (s.imported, s.updated, s.unchanged) == (4, 0, 0)
    assert s.blank_rows == 2 and s.rows == 6
    assert s.header_rows == (2, 3)  # Excel rows of the two-row header
    bad = {r.row: r.reason for r in s.rejected}
    assert bad == {7: "id_check_digit", 8: "address_missing"}
    # An unknown category word costs nobody their record: imported, the word in a warning.
    assert [(w.row, w.reason) for w in s.warnings] == [(9, "unknown_category")]
    assert "外星人" in s.warnings[0].message
    # Nothing dropped silently: every data row is in exactly one bucket.
    assert s.imported + s.updated + s.unchanged + len(s.rejected) == s.rows

    # The two members share the household whose address cells were merged down.
    ledger = store.ledger
    hid = ledger.find_household("", "3栋", "2单元", "501")
    members = ledger.members(hid)
    assert [m.name_masked for m in members] == ["张*", "李*"]
    zhang = ledger.member_full(members[0].id, purpose="test")
    assert zhang["id_number"] == A  # spaces removed
    assert zhang["phone"] == "13800138000"
    assert ledger.member_full(members[1].id, purpose="test")["id_number"] == B  # full-width
    assert ledger.member_full(members[1].id, purpose="test")["phone"] == "13900139000"
    assert members[0].categories == ("close_contact", "elderly_alone")
    assert members[0].health_status == "home_isolation"
    assert ledger.household(hid).worker == "李干部"


def test_second_import_of_the_same_file_changes_nothing(store, messy_xlsx):
    import_file(store, messy_xlsx)
    before = store.g.query("SELECT id, version FROM members ORDER BY id")
    edits = store.g.scalar("SELECT count(*) FROM ledger_edits")
    again = import_file(store, messy_xlsx)
    assert (again.imported, again.updated, again.unchanged) == (0, 0, 4)
    assert len(again.rejected) == 2
    assert store.g.query("SELECT id, version FROM members ORDER BY id") == before
    assert store.g.scalar("SELECT count(*) FROM ledger_edits") == edits


def test_changed_row_is_an_update_with_a_new_version(store, tmp_path):
    rows = simple_rows(2, 1)
    path = tmp_path / "a.xlsx"
    _write(path, rows)
    import_file(store, path)
    rows[1][2] = "13700000000"
    _write(path, rows)
    s = import_file(store, path)
    assert (s.imported, s.updated, s.unchanged) == (0, 1, 1)
    m = store.ledger.find_member(rows[1][1])
    assert m.version == 2 and m.phone_masked == "137****0000"
    edit = store.g.query("SELECT * FROM ledger_edits WHERE entity_id = ? AND version = 2", [m.id])
    body = store.ledger.edit_body(edit[0])
    assert body["changes"] == {"phone": "13700000000"} and body["base_version"] == 1


def test_home_isolation_from_import_reaches_the_gate(store, messy_xlsx):
    import_file(store, messy_xlsx)
    assert store.isolation.status(store.index(A)) == "home_isolation"
    assert store.isolation.status(store.index(make_id(6))) == "home_monitoring"
    assert store.isolation.status(store.index(B)) is None
    m = store.ledger.find_member(A)
    # End date = start + configured days (none given in the file: start today).
    from datetime import date, timedelta

    start = date.fromisoformat(m.status_start)
    assert date.fromisoformat(m.status_end) - start == timedelta(
        days=store.settings.rules.isolation_days
    )


def test_gbk_csv_with_header_variants(store, tmp_path):
    text = (
        "证件号码,名字,手机号,楼栋号,单元号,房间号,人员分类,管控状态,开始日期,备注\n"
        f"{A},张三,13800138000,5幢,1,101,次密接,居家隔离,2022/4/1,\n"
        f"{B},李四,,5幢,1,102,租户,,,\n"
        ",,,,,,,,,\n"
        f"{C},王五,,5幢,1,103,,,2022年4月31日,\n"
    )
    path = tmp_path / "gbk.csv"
    path.write_bytes(codecs.encode(text, "gbk"))
    s = import_file(store, path, lang="zh")
    assert (s.imported, len(s.rejected), s.blank_rows) == (2, 1, 1)
    assert s.rejected[0].row == 5 and s.rejected[0].reason == "bad_date"
    m = store.ledger.find_member(A)
    assert m.categories == ("secondary_contact",)
    assert (m.status_start, m.status_end) == ("2022-04-01", "2022-04-15")


def test_utf8_bom_csv_and_address_in_one_column(store, tmp_path):
    text = f"姓名,身份证号,详细地址,人员类别\n张三,{A},幸福小区7栋2单元301室,\n李四,{B},7-2-302,\n"
    path = tmp_path / "u8.csv"
    path.write_bytes(codecs.BOM_UTF8 + text.encode("utf-8"))
    s = import_file(store, path)
    assert s.imported == 1 and [r.reason for r in s.rejected] == ["address_missing"]
    hid = store.ledger.find_household("幸福小区", "7", "2", "301")
    assert hid and store.ledger.household(hid).building == "7"


def test_id_stored_as_a_number_is_rejected_not_truncated(store, tmp_path):
    wb = Workbook()
    ws = wb.active
    ws.append(["姓名", "身份证号", "楼栋", "房号"])
    ws.append(["张三", float(A[:17] + "0"), "1", "101"])
    ws.append(["李四", B, "1", "102"])
    path = tmp_path / "num.xlsx"
    wb.save(path)
    s = import_file(store, path)
    assert s.imported == 1 and s.rejected[0].reason == "id_as_number"


def test_duplicate_person_in_one_file(store, tmp_path):
    rows = [["姓名", "身份证号", "楼栋", "房号"], ["张三", A, "1", "101"], ["张三", A, "1", "102"]]
    path = tmp_path / "dup.xlsx"
    _write(path, rows)
    s = import_file(store, path)
    assert s.imported == 1
    assert s.rejected[0].row == 3 and s.rejected[0].reason == "duplicate_in_file"


def test_same_as_above_and_household_only_rows(store, tmp_path):
    rows = [
        ["楼栋", "单元", "房号", "姓名", "身份证号", "户籍人口数", "是否出租", "房东"],
        ["2栋", "1", "101", "张三", A, 2, "是", "周房东"],
        ["同上", "同上", "同上", "李四", B, None, None, None],
        ["2栋", "1", "102", None, None, 0, "否", None],
    ]
    path = tmp_path / "same.xlsx"
    _write(path, rows)
    s = import_file(store, path)
    assert (s.imported, s.rejected) == (3, [])
    h = store.ledger.household(store.ledger.find_household("", "2栋", "1", "101"))
    assert h.members == 2 and h.registered_count == 2 and h.is_rental
    empty = store.ledger.household(store.ledger.find_household("", "2栋", "1", "102"))
    assert empty.members == 0 and not empty.is_rental


def test_not_a_ledger(store, tmp_path):
    path = tmp_path / "x.xlsx"
    _write(path, [["a", "b"], [1, 2]])
    with pytest.raises(ImportFileError) as err:
        import_file(store, path)
    assert err.value.render("en").startswith("no header row")
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ImportFileError) as err:
        import_file(store, bad)
    assert "not a readable spreadsheet" in err.value.render("en")
    (tmp_path / "old.xls").write_bytes(b"x")
    with pytest.raises(ImportFileError) as err:
        import_file(store, tmp_path / "old.xls")
    assert "not a readable spreadsheet" in err.value.render("en")
    assert "nothing was imported" in err.value.render("en")


def test_import_is_audited_without_personal_data(store, messy_xlsx):
    import_file(store, messy_xlsx)
    entry = store.audit.entries(1, "ledger_import")[0]
    assert entry["detail"]["imported"] == 4 and entry["detail"]["rejected"] == 2
    assert A not in json.dumps(entry, ensure_ascii=False)
    assert store.audit.verify()[1] is None


def _write(path, rows):
    wb = Workbook()
    ws = wb.active
    for r in rows:
        ws.append(r)
    wb.save(path)
