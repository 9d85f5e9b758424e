"""The exported workbook opens in LibreOffice Calc with its charts and the same cells.

LibreOffice comes from the system packages (`libreoffice-calc-nogui`, in the Makefile's
SYSPKGS: `make system-deps` installs it). On CI (CI=true) a missing LibreOffice fails the test
unless this machine cannot install it at all (no apt-get, not root, or no such package in
its apt sources), which is then the skip reason; elsewhere it is a skip."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import zipfile
from datetime import datetime, timedelta

import pytest
from python_calamine import CalamineWorkbook

from fieldkit.i18n import t
from fieldkit.reports import export
from tests.reports_support import busy_day

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
PACKAGE = "libreoffice-calc-nogui"


def cannot_install() -> str | None:
    """Why this machine cannot install LibreOffice from its packages, or None if it can."""
    if shutil.which("apt-get") is None or shutil.which("apt-cache") is None:
        return "no apt-get here: install LibreOffice Calc with this system's package manager"
    if os.geteuid() != 0:
        return f"not root: sudo apt-get install -y --no-install-recommends {PACKAGE}"
    policy = subprocess.run(
        ["apt-cache", "policy", PACKAGE], capture_output=True, text=True, check=False
    ).stdout
    if not re.search(r"Candidate: (?!\(none\))\S+", policy):
        return f"{PACKAGE} is not in this machine's apt sources"
    return None


@pytest.fixture(scope="module")
def soffice() -> str:
    if SOFFICE is not None:
        return SOFFICE
    why = cannot_install()
    if os.environ.get("CI") == "true" and why is None:
        pytest.fail(f"LibreOffice missing on CI: `make system-deps` installs {PACKAGE} (SYSPKGS)")
    pytest.skip(f"LibreOffice is not installed ({why or f'apt-get install {PACKAGE}'})")


def to_ods(soffice: str, src, outdir) -> None:
    subprocess.run(
        [soffice, "--headless", "--convert-to", "ods", "--outdir", str(outdir), str(src)],
        check=True,
        capture_output=True,
        timeout=180,
        env={"HOME": str(outdir), "PATH": "/usr/bin:/bin"},
    )


def test_libreoffice_opens_the_export_with_both_charts(store, tmp_path, soffice):
    store.shifts.open("王芳")
    busy_day(store)
    export(store, "shift-log", tmp_path / "shift.xlsx")
    to_ods(soffice, tmp_path / "shift.xlsx", tmp_path)
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


def test_libreoffice_reads_every_cell_of_the_passages_sheet_as_written(store, tmp_path, soffice):
    """The rows the writer lays out itself (whole rows of XML): LibreOffice reads the same
    values and types as python-calamine reads from the XLSX (dates as dates, numbers as
    numbers, text as text)."""
    store.shifts.open("王芳")
    busy_day(store)
    export(store, "passages", tmp_path / "p.xlsx")
    to_ods(soffice, tmp_path / "p.xlsx", tmp_path)
    sheet = t("export.sheet.passages", "zh")
    with CalamineWorkbook.from_path(str(tmp_path / "p.xlsx")) as wb:
        names = wb.sheet_names
        written = wb.get_sheet_by_name(sheet).to_python() if sheet in names else None
    with CalamineWorkbook.from_path(str(tmp_path / "p.ods")) as wb:
        read = wb.get_sheet_by_name(sheet).to_python() if sheet in names else None
    assert written is not None and len(written) > 3, names
    assert read is not None and len(read) == len(written)
    for got, want in zip(read, written, strict=True):
        assert len(got) == len(want)
        for a, b in zip(got, want, strict=True):
            if isinstance(b, datetime):  # LibreOffice keeps hundredths of a second
                assert isinstance(a, datetime) and abs(a - b) < timedelta(milliseconds=10)
            else:
                assert (type(a), a) == (type(b), b)
