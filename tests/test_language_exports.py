"""Exports follow the export language in every header and cell (reasons, outcomes, categories,
directions), and the CSV and the XLSX say the same thing."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from openpyxl import load_workbook

from fieldkit.gate import GateService
from fieldkit.reports.export import export
from tests.reports_support import busy_day, person
from tests.test_language_leaks import english_runs

TODAY = date.today().isoformat()


def _vehicle_with_a_yellow_code_passenger(store) -> None:
    GateService(store).commit_vehicle(
        direction="in",
        plate="京B54321",
        kind="outside",
        occupants=[
            person("in", None, "吴十", 36.4),
            person("in", None, "郑一", 36.6, colour="yellow"),
        ],
        disinfected=True,
    )


def _text(value) -> str:
    if value is None:
        return ""
    if hasattr(value, "strftime"):
        return value.strftime("%Y-%m-%d %H:%M:%S") if hasattr(value, "hour") else str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _csv_rows(path) -> list[list[str]]:
    text = path.read_bytes().decode("utf-8-sig")
    return [row for row in csv.reader(io.StringIO(text))]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_export_cells_follow_the_language_and_csv_equals_xlsx(store, tmp_path, lang):
    busy_day(store)
    _vehicle_with_a_yellow_code_passenger(store)
    xlsx, csv_path = tmp_path / "p.xlsx", tmp_path / "p.csv"
    # The shift log: people and vehicles (the vehicle row holds the occupants' reasons).
    export(store, "shift-log", xlsx, day=TODAY, lang=lang)
    export(store, "shift-log", csv_path, day=TODAY, lang=lang)
    wb = load_workbook(xlsx)
    sheet = wb.worksheets[1]  # the table (summary first, charts last)
    table = [[_text(c) for c in row] for row in sheet.iter_rows(values_only=True)]
    rows = _csv_rows(csv_path)
    # The CSV is the table: the same header and the same words in every cell that is text.
    header_at = next(i for i, r in enumerate(rows) if r and r[0] == table[0][0])
    csv_table = rows[header_at : header_at + len(table)]
    assert csv_table[0] == table[0]
    for x_row, c_row in zip(table[1:], csv_table[1:], strict=True):
        for x, c in zip(x_row, c_row, strict=False):
            if x and not x[0].isdigit():  # words; numbers and times have their own formats
                assert x == c, (x, c)
    cells = " | ".join(" | ".join(r) for r in table)
    if lang == "zh":
        assert english_runs(cells) == [], english_runs(cells)
        assert "第 2 位乘车人：劝返" in cells  # the occupant's outcome as a word, not "turn_back"
        assert "turn_back" not in cells and "REFER" not in cells
        assert all(h and not h.isascii() for h in table[0]), table[0]
    else:
        assert "Occupant 2: TURN BACK" in cells and "turn_back" not in cells
        assert "REFER" in cells and "转诊" not in cells
