"""A ledger cell the importer cannot place no longer costs a person their record (trial_town
items 2, 3, 23, 24): unknown 人员类别 words are kept in the member's notes and reported as
warnings, 户籍人口/外来人员 … are ordinary ledger words, an unknown 健康管理状态 imports the
person without a status (a warning naming the accepted values), wrong-length IDs and phones are
refused as the add-member form refuses them, and the household head is listed first.
Real .xlsx files written with openpyxl, imported into a real store."""

from __future__ import annotations

import json

from openpyxl import Workbook, load_workbook

from fieldkit.ledger.exporter import export_households
from fieldkit.ledger.importer import import_file
from tests.conftest import SUPERVISOR_PIN
from tests.ledger_support import make_id

HEADER = ["姓名", "身份证号码", "联系电话", "楼栋", "单元", "房号", "与户主关系", "人员类别"]
HEADER += ["健康管理状态", "备注"]
ZHANG, ZHAO, WANG, LI, SUN, ZHOU = (make_id(n, "19780112") for n in range(61, 67))


def _write(path, rows):
    wb = Workbook()
    ws = wb.active
    ws.append(HEADER)
    for r in rows:
        ws.append(r)
    for row in ws.iter_rows(min_row=2, min_col=2, max_col=3):
        for cell in row:
            cell.number_format = "@"
    wb.save(path)
    return path


def _trial_rows():
    """Rows 2..: the trial's household heads with 户籍人口 / 外来人员, a person under 居家观察,
    a category and a status nobody knows."""
    return [
        ["张伟", ZHANG, "13800138001", "1栋", "1单元", "101", "户主", "户籍人口", "", ""],  # 2
        [
            "王强",
            WANG,
            "13800138002",
            "1栋",
            "1单元",
            "102",
            "户主",
            "外来人员",
            "居家健康监测",
            "",
        ],
        ["赵敏", ZHAO, "", "1栋", "1单元", "102", "配偶", "", "居家观察", ""],  # 4
        ["李娜", LI, "", "1栋", "1单元", "103", "户主", "外星人、独居老人", "", "腿脚不便"],  # 5
        ["孙丽", SUN, "", "1栋", "1单元", "104", "户主", "", "重点关注", ""],  # 6
    ]


def test_unknown_category_and_status_words_import_the_person(store, tmp_path):
    path = _write(tmp_path / "台账.xlsx", _trial_rows())
    s = import_file(store, path, lang="zh")
    assert s.rejected == [], [(r.row, r.message) for r in s.rejected]
    assert (s.imported, s.rows) == (5, 5)
    ledger = store.ledger

    # 户籍人口 / 外来人员: ordinary ledger words, no watch category: kept in the notes.
    zhang = ledger.find_member(ZHANG)
    assert zhang.categories == ()
    assert ledger.member_full(zhang.id, purpose="test")["notes"] == "人员类别：户籍人口"
    wang = ledger.find_member(WANG)
    assert wang.health_status == "home_monitoring"  # the head under monitoring is there
    assert store.isolation.status(store.index(WANG)) == "home_monitoring"
    assert ledger.member_full(wang.id, purpose="test")["notes"] == "人员类别：外来人员"
    # 居家观察: 居家(医学)观察, home isolation (REQUIREMENTS §4: 居家隔离医学观察).
    assert ledger.find_member(ZHAO).health_status == "home_isolation"

    # A word nobody knows: the known ones kept as categories, the rest in the notes, a warning.
    li = ledger.find_member(LI)
    assert li.categories == ("elderly_alone",)
    assert ledger.member_full(li.id, purpose="test")["notes"] == "腿脚不便；人员类别：外星人"
    sun = ledger.find_member(SUN)
    assert sun.health_status == "none"

    warned = {w.row: w for w in s.warnings}
    assert sorted(warned) == [5, 6]
    assert warned[5].reason == "unknown_category" and warned[5].name_masked == "李*"
    assert "外星人" in warned[5].message and "备注" in warned[5].message
    assert "密接" in warned[5].message  # the accepted values are named
    assert warned[6].reason == "unknown_status" and "重点关注" in warned[6].message
    for word in ("集中隔离", "居家隔离医学观察", "居家健康监测", "日常健康监测", "解除"):
        assert word in warned[6].message
    assert s.as_dict()["warning_count"] == 2

    # Importing the same file again changes nothing and says the same.
    again = import_file(store, path, lang="zh")
    assert (again.imported, again.updated, again.unchanged) == (0, 0, 5)
    assert [w.row for w in again.warnings] == [5, 6]


def test_cli_prints_each_warning_on_one_chinese_line(cli, tmp_path):
    cli.init()
    path = _write(tmp_path / "台账.xlsx", _trial_rows())
    out = cli.run("ledger", "import", str(path), pin=SUPERVISOR_PIN, env={"FIELDKIT_LANG": "zh"})
    assert out.returncode == 0  # nobody was rejected
    lines = out.stdout.splitlines()
    assert "导入 5" in lines[0] and "提醒 2" in lines[0], out.stdout
    row5 = [ln for ln in lines if ln.strip().startswith("第 5 行")]
    row6 = [ln for ln in lines if ln.strip().startswith("第 6 行")]
    assert len(row5) == len(row6) == 1, out.stdout
    assert "外星人" in row5[0] and "李*" in row5[0] and "备注" in row5[0]
    assert "重点关注" in row6[0] and "居家健康监测" in row6[0] and "孙*" in row6[0]
    assert not any(c.isascii() and c.isalpha() for ln in row5 + row6 for c in ln), out.stdout
    data = json.loads(cli.run("ledger", "import", str(path), "--json", pin=SUPERVISOR_PIN).stdout)
    assert [w["row"] for w in data["warnings"]] == [5, 6]


def test_a_phone_number_of_the_wrong_length_is_refused(store, tmp_path):
    rows = [
        ["张伟", ZHANG, "1330000", "2栋", "1单元", "101", "户主", "", "", ""],  # 2: 7 digits
        ["王强", WANG, "0571-87654321", "2栋", "1单元", "102", "户主", "", "", ""],  # landline
        ["赵敏", ZHAO, "138 0013 8000", "2栋", "1单元", "103", "户主", "", "", ""],
        ["李娜", LI, "138001380001", "2栋", "1单元", "104", "户主", "", "", ""],  # 5: 12 digits
        ["孙丽", SUN, "13800138000/87654321", "2栋", "1单元", "105", "户主", "", "", ""],
    ]
    s = import_file(store, _write(tmp_path / "p.xlsx", rows), lang="zh")
    bad = {r.row: r for r in s.rejected}
    assert sorted(bad) == [2, 5] and s.imported == 3
    assert bad[2].reason == "bad_phone" and "1330000" in bad[2].message
    assert "11 位" in bad[2].message  # what a phone number should look like
    assert bad[2].name_masked == "张*"
    wang = store.ledger.find_member(WANG)
    assert store.ledger.member_full(wang.id, purpose="test")["phone"] == "057187654321"


def test_an_id_number_of_19_characters_is_refused_like_the_form_refuses_it(store, tmp_path):
    from fieldkit.i18n import id_problem
    from fieldkit.shared.identity import parse_identity

    nineteen = ZHANG[:-1] + "X1"  # '…X1': the trial's 32010619781203302X1
    rows = [
        ["张伟", nineteen, "", "3栋", "1单元", "101", "户主", "", "", ""],
        ["王强", WANG, "", "3栋", "1单元", "102", "户主", "", "", ""],
    ]
    s = import_file(store, _write(tmp_path / "id.xlsx", rows), lang="zh")
    assert s.imported == 1 and [r.row for r in s.rejected] == [2]
    r = s.rejected[0]
    assert r.reason == "id_invalid" and nineteen not in r.message + (r.id_masked or "")
    assert id_problem(parse_identity(nineteen)).render("zh") in r.message  # as the form says


def test_the_head_of_household_is_listed_first(store, tmp_path):
    rows = [
        ["李梅", LI, "", "4栋", "1单元", "101", "配偶", "", "", ""],
        ["张小明", SUN, "", "4栋", "1单元", "101", "子女", "", "", ""],
        ["张强", ZHANG, "", "4栋", "1单元", "101", "户主", "", "", ""],
        ["张老", ZHOU, "", "4栋", "1单元", "101", "父母", "", "", ""],
    ]
    assert import_file(store, _write(tmp_path / "h.xlsx", rows)).imported == 4
    hid = store.ledger.find_household("", "4栋", "1单元", "101")
    listed = [m.relation for m in store.ledger.members(hid)]
    assert listed == ["户主", "配偶", "子女", "父母"]
    export_households(store, tmp_path / "e.xlsx")
    values = [list(r) for r in load_workbook(tmp_path / "e.xlsx").active.values]
    col = next(r for r in values if "与户主关系" in r).index("与户主关系")
    assert [r[col] for r in values if r[col] in ("户主", "配偶", "子女", "父母")] == listed
