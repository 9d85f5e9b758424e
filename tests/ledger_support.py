"""Helpers for the ledger, patrol and monitoring tests (and bench/patrol.py): valid ID numbers
and the messy spreadsheets real offices keep."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scanners.idnumber import resident_check_char


def known_since(store: Any, ts: str) -> None:
    """Backdate the device and its ledger to ``ts``: its operators, members and the ledger
    edits that entered them (with their home statuses). Windows that closed before the device
    knew someone was to be monitored are never counted as missed (issue 13 item 11)."""
    for sql in (
        "UPDATE operators SET created_at = ?",
        "UPDATE members SET created_at = ?",
        "UPDATE ledger_edits SET ts = ?",
    ):
        store.g.db.execute(sql, [ts])


def make_id(n: int, birth: str = "19800101", region: str = "110105") -> str:
    """A valid 18-digit resident ID number, different for every ``n`` < 1000 per birth date."""
    first17 = f"{region}{birth}{n % 1000:03d}"
    return first17 + resident_check_char(first17)


def wrong_check(idn: str) -> str:
    good = idn[-1]
    return idn[:-1] + ("0" if good != "0" else "1")


def fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in text)


def spaced(idn: str) -> str:
    return f"{idn[:6]} {idn[6:14]} {idn[14:]}"


MESSY_HEADER_TOP = [
    "序号",
    "姓名",
    "身份证号码",
    "联系电话",
    "地址",
    None,
    None,
    "人员类别",
    "健康管理状态",
    "包户干部",
    "备注",
]
MESSY_HEADER_SUB = [None, None, None, None, "楼栋", "单元", "门牌号", None, None, None, None]


def write_messy_xlsx(
    path: Path,
    rows: list[list[Any]],
    *,
    title: str = "幸福社区一户一档台账",
    merge_down: list[tuple[int, int, int]] = (),
) -> Path:
    """Title row merged across, a two-row header with 地址 merged over 楼栋/单元/门牌号 and the
    other headers merged down; data from row 4. ``merge_down``: (column, first row, last row)
    ranges of data cells merged vertically (a household's address over its members)."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append([title] + [None] * (len(MESSY_HEADER_TOP) - 1))
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(MESSY_HEADER_TOP))
    ws.append(MESSY_HEADER_TOP)
    ws.append(MESSY_HEADER_SUB)
    ws.merge_cells(start_row=2, start_column=5, end_row=2, end_column=7)
    for col, value in enumerate(MESSY_HEADER_TOP, start=1):
        if value and value != "地址":
            ws.merge_cells(start_row=2, start_column=col, end_row=3, end_column=col)
    for r in rows:
        ws.append(r)
    for col, first, last in merge_down:
        ws.merge_cells(start_row=first, start_column=col, end_row=last, end_column=col)
    # ID and phone columns as text, the way a careful office formats them.
    for row in ws.iter_rows(min_row=4, min_col=3, max_col=4):
        for cell in row:
            cell.number_format = "@"
    wb.save(path)
    return path


def simple_rows(
    households: int, per_household: float = 2, *, building_count: int = 10, start: int = 0
) -> list[list[Any]]:
    """Clean template-layout rows (header first): 姓名 身份证号码 联系电话 楼栋 单元 房号 人员类别
    健康管理状态. IDs vary with the birth date so up to ~3.6M persons are distinct."""
    rows: list[list[Any]] = [
        [
            "姓名",
            "身份证号码",
            "联系电话",
            "楼栋",
            "单元",
            "房号",
            "人员类别",
            "健康管理状态",
            "包户干部",
        ]
    ]
    n = start
    for h in range(households):
        building = f"{h % building_count + 1}栋"
        unit = f"{h // building_count % 4 + 1}单元"
        room = f"{h // (building_count * 4) + 101}"
        # 2.5 per household: alternately 2 and 3 members.
        for _m in range(int(per_household) + (h % 2 if per_household % 1 else 0)):
            day = n // 1000
            birth = f"{1950 + day // 365:04d}{(day // 28) % 12 + 1:02d}{day % 28 + 1:02d}"
            rows.append(
                [
                    f"居民{n}",
                    make_id(n, birth),
                    f"138{n:08d}",
                    building,
                    unit,
                    room,
                    "独居老人" if n % 50 == 0 else "",
                    "",
                    f"干部{h % 30}",
                ]
            )
            n += 1
    return rows
