"""The town's key-person import reads an office sheet like the ledger import does (title row,
header found among the first rows, footer skipped, .xls/.ods too) and never prints a name or
an ID number from the list, masked or not."""

from __future__ import annotations

import re

from openpyxl import Workbook

from fieldkit.crypto import keyperson_hash
from sync.server.keypersons import read_keyperson_file
from tests.ledger_support import make_id
from tests.sheets_support import write_ods

KEY = b"k" * 32
GOOD = [make_id(1, "19700101"), make_id(2, "19800202")]
BAD_CHECK = GOOD[0][:-1] + ("0" if GOOD[0][-1] != "0" else "1")
SHORT = "51010719650430221"  # 17 digits


def office_sheet() -> list[list]:
    return [
        ["幸福镇重点人员名单（2022年4月）", None, None, None],
        ["序号", "姓名", "身份证号", "人员类别"],
        [1, "孙强", GOOD[0], "密接"],
        [2, "钱芳", GOOD[1], "次密接"],
        [3, "周敏", BAD_CHECK, "密接"],
        [4, "吴磊", SHORT, "密接"],
        ["合计", None, None, "4人"],
    ]


def assert_keyperson_rows(entries, problems) -> None:
    assert {e["id_hash"] for e in entries} == {keyperson_hash(KEY, i) for i in GOOD}
    assert {e["category"] for e in entries} == {"密接", "次密接"}
    assert [p.split(":")[0].split("：")[0] for p in problems] in (
        ["row 5", "row 6"],
        ["第 5 行", "第 6 行"],
    )
    text = "\n".join(problems)
    for secret in ("孙", "钱", "周", "吴", "强", "敏", "磊"):
        assert secret not in text
    # No run of digits from any ID, masked or not (a masked ID keeps 6 + 4 digits).
    assert not re.search(r"\d{4,}|\*{3,}", text)


def test_title_row_and_footer_xlsx(tmp_path):
    wb = Workbook()
    for row in office_sheet():
        wb.active.append(row)
    wb.save(tmp_path / "kp.xlsx")
    assert_keyperson_rows(*read_keyperson_file(tmp_path / "kp.xlsx", KEY))


def test_title_row_and_footer_ods(tmp_path):
    path = write_ods(tmp_path / "kp.ods", office_sheet(), [(0, 0, 0, 3)])
    assert_keyperson_rows(*read_keyperson_file(path, KEY))


def test_no_header_first_column_is_the_id(tmp_path):
    path = tmp_path / "kp.csv"
    path.write_text(f"{GOOD[0]}\n{GOOD[1]}\n", encoding="utf-8")
    entries, problems = read_keyperson_file(path, KEY)
    assert len(entries) == 2 and problems == []
