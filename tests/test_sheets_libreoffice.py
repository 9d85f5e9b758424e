"""The exported workbook opens in LibreOffice Calc with its charts (skipped where LibreOffice is
not installed: `apt-get install libreoffice-calc-nogui`)."""

from __future__ import annotations

import re
import shutil
import subprocess
import zipfile

import pytest
from python_calamine import CalamineWorkbook

from fieldkit.reports import export
from tests.reports_support import busy_day

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")


@pytest.mark.skipif(SOFFICE is None, reason="LibreOffice is not installed")
def test_libreoffice_opens_the_export_with_both_charts(store, tmp_path):
    store.shifts.open("王芳")
    busy_day(store)
    export(store, "shift-log", tmp_path / "shift.xlsx")
    subprocess.run(
        [
            SOFFICE,
            "--headless",
            "--convert-to",
            "ods",
            "--outdir",
            str(tmp_path),
            str(tmp_path / "shift.xlsx"),
        ],
        check=True,
        capture_output=True,
        timeout=180,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    with zipfile.ZipFile(tmp_path / "shift.ods") as z:
        charts = [
            z.read(n).decode() for n in z.namelist() if re.fullmatch(r"Object \d+/content.xml", n)
        ]
    assert len(charts) == 2
    ranges = {r for c in charts for r in re.findall(r'values-cell-range-address="([^"]+)"', c)}
    assert {"图表.B2:图表.B25", "图表.C2:图表.C25"} <= ranges  # 进/出 of hours 00–23
    # The numbers LibreOffice keeps under the chart are the summary's: 3 in, 2 out.
    with CalamineWorkbook.from_path(str(tmp_path / "shift.ods")) as wb:
        hours = wb.get_sheet_by_name("图表").to_python()[1:25]
    assert [r[0] for r in hours] == [f"{h:02d}" for h in range(24)]
    assert (sum(r[1] for r in hours), sum(r[2] for r in hours)) == (3, 2)
