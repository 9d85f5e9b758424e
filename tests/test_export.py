"""Exports opened back the way the office opens them: XLSX with openpyxl, cell by cell; CSV with
the csv module and ``utf-8-sig`` as Excel reads it."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
from datetime import date, datetime

import pytest
from openpyxl import load_workbook

from fieldkit.errors import PermissionDenied
from fieldkit.gate import GateService
from fieldkit.i18n import t
from fieldkit.reports import ExportError, daily_report, export
from fieldkit.reports.document import LOG_COLUMNS, PASSAGE_COLUMNS
from tests.conftest import SUPERVISOR, SUPERVISOR_PIN
from tests.reports_support import ID_WANG, ID_ZHANG, busy_day, person, run_cli

TODAY = date.today().isoformat()
SECRET_STRINGS = (ID_ZHANG, ID_WANG, "张三", "王五", "13812345678")


def cells(ws):
    return [[c.value for c in row] for row in ws.iter_rows()]


def all_text(wb) -> str:
    return "\n".join(
        str(v) for ws in wb.worksheets for row in cells(ws) for v in row if v is not None
    )


def column(ws, header: str) -> list:
    headers = [c.value for c in ws[1]]
    idx = headers.index(header)
    return [row[idx] for row in cells(ws)[1:]]


def test_shift_log_xlsx_masked_cell_by_cell(store, tmp_path):
    store.shifts.open(SUPERVISOR)
    expected = busy_day(store)
    out = tmp_path / "值班登记.xlsx"
    result = export(store, "shift-log", out)
    assert result.format == "xlsx" and not result.full and out.stat().st_size == result.size

    wb = load_workbook(out)
    assert wb.sheetnames == ["汇总", "值班登记", "图表"]
    log = wb["值班登记"]
    masked_columns = [c for c in LOG_COLUMNS if not c.full_only]
    assert [c.value for c in log[1]] == [t(f"export.col.{c.key}", "zh") for c in masked_columns]
    assert log.freeze_panes == "A2" and log[1][0].font.bold
    # One row per passage and per vehicle, in time order.
    passages = sorted(store.passages.rows(), key=lambda r: r["ts"])
    vehicles = store.g.scalar("SELECT count(*) FROM vehicle_passages")
    assert log.max_row - 1 == len(passages) + vehicles == result.rows == 9
    times = column(log, "时间")
    assert all(isinstance(v, datetime) for v in times) and times == sorted(times)
    assert log["A2"].number_format == "yyyy-mm-dd hh:mm:ss"
    temps = column(log, "体温(°C)")
    assert sorted(v for v in temps if v is not None) == sorted(p["temperature"] for p in passages)
    assert all(isinstance(v, float) for v in temps if v is not None)
    # Masked exactly as the store masks them; nothing in clear anywhere in the workbook.
    names = column(log, "姓名")
    assert "张*" in names and "王*" in names
    assert "110105********002X" in column(log, "证件号码")
    text = all_text(wb)
    for secret in SECRET_STRINGS:
        assert secret not in text
    assert "联系电话" not in text
    assert column(log, "类型").count("车辆") == 1 and "京A12345" in column(log, "车牌")
    assert column(log, "处理结果").count("转诊") == 2
    # Widths fitted: the reasons column is wide, the direction column narrow.
    headers = [c.value for c in log[1]]

    def width(header: str) -> float:
        # A <col> element may cover several columns of the same width (min..max).
        n = headers.index(header) + 1
        return next(d.width for d in log.column_dimensions.values() if d.min <= n <= d.max)

    assert width("原因") > 30
    assert width("方向") <= 8

    summary = {row[0]: row[1] for row in cells(wb["汇总"])[1:]}
    assert wb["汇总"].freeze_panes == "A2"
    assert summary["个人信息"] == "已脱敏" and summary["导出人"] == SUPERVISOR
    assert isinstance(summary["生成时间"], datetime)
    for key in ("entries", "exits", "referred", "fever", "turned_back", "keyperson_hits"):
        assert summary[t(f"report.field.{key}", "zh")] == expected[key], key
    assert summary["无进入记录的外出"] == 1 and summary["未处理警示"] == 3

    charts = wb["图表"]._charts
    assert len(charts) == 2  # hourly in/out and temperatures (no ledger coverage yet)
    hour_rows = cells(wb["图表"])[1:25]
    # The chart's table says what the summary says (it once showed 进 6 against 3 admitted).
    assert sum(r[1] for r in hour_rows) == expected["entries"] == summary["进入"]
    assert sum(r[2] for r in hour_rows) == expected["exits"] == summary["外出"]

    entry = store.audit.entries(1)[0]
    assert entry["action"] == "export" and entry["detail"]["full"] is False
    assert entry["detail"]["rows"] == 9 and entry["detail"]["file"] == "值班登记.xlsx"


def test_english_headers_by_setting(store, tmp_path):
    busy_day(store)
    store.settings.ui.language = "en"
    out = tmp_path / "passages.xlsx"
    export(store, "passages", out, day=TODAY)
    wb = load_workbook(out)
    assert wb.sheetnames == ["Summary", "Passages", "Charts"]
    ws = wb["Passages"]
    assert [c.value for c in ws[1]] == [
        t(f"export.col.{c.key}", "en") for c in PASSAGE_COLUMNS if not c.full_only
    ]
    assert ws["A1"].value == "Time" and "REFER" in column(ws, "Decision")
    assert ws.max_row - 1 == 8  # people only, no vehicle rows


def test_full_export_needs_the_supervisor_and_is_audited(store, tmp_path):
    busy_day(store)
    store.keyring.add(store.operator, store.master, "李强", "gate", "1357")
    store.lock()
    store.unlock("李强", "1357")
    with pytest.raises(PermissionDenied, match="李强 不是负责人"):  # in the run's language
        export(store, "passages", tmp_path / "full.xlsx", full=True, reason="疾控流调")
    assert not (tmp_path / "full.xlsx").exists()
    export(store, "passages", tmp_path / "masked.xlsx")  # any operator may export masked

    store.unlock(SUPERVISOR, SUPERVISOR_PIN)
    result = export(store, "passages", tmp_path / "full.xlsx", full=True, reason="疾控流调")
    wb = load_workbook(tmp_path / "full.xlsx")
    ws = wb["进出登记"]
    assert ID_ZHANG in column(ws, "证件号码") and "张三" in column(ws, "姓名")
    assert "13812345678" in column(ws, "联系电话")
    summary = {row[0]: row[1] for row in cells(wb["汇总"])[1:]}
    assert summary["个人信息"].startswith("完整")
    entry = store.audit.entries(1, "export")[0]
    assert entry["operator"] == SUPERVISOR and entry["detail"]["full"] is True
    assert entry["detail"]["rows"] == result.rows == 8
    assert ID_ZHANG not in json.dumps(entry, ensure_ascii=False)


def test_csv_has_a_bom_and_reads_back_as_excel_reads_it(store, tmp_path):
    busy_day(store)
    out = tmp_path / "passages.csv"
    export(store, "passages", out, fmt="csv", day=TODAY)
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    with open(out, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh, dialect="excel"))
    header, body = rows[0], rows[1:]
    assert header[0] == "时间" and "证件号码" in header
    assert len(body) == store.g.scalar("SELECT count(*) FROM passages WHERE superseded = 0")
    ids = [r[header.index("证件号码")] for r in body]
    assert "110105********002X" in ids and ID_ZHANG not in raw.decode("utf-8-sig")
    assert datetime.strptime(body[0][0], "%Y-%m-%d %H:%M:%S")
    assert "38.2" in [r[header.index("体温(°C)")] for r in body]


def test_daily_export_and_zero_report(store, tmp_path):
    out = tmp_path / "daily.xlsx"
    export(store, "daily", out, day=TODAY)
    wb = load_workbook(out)
    summary = {row[0]: row[1] for row in cells(wb["汇总"])[1:]}
    assert summary["零报告"] == "是" and summary["进入"] == 0 and summary["入户走访户数"] == 0
    assert summary["日期"].date() == date.today()
    assert wb["进出登记"].max_row == 1  # header only

    busy_day(store)
    export(store, "daily", tmp_path / "daily.csv", day=TODAY)
    with open(tmp_path / "daily.csv", encoding="utf-8-sig", newline="") as fh:
        rows = dict(list(csv.reader(fh))[1:])
    report = daily_report(store, TODAY)
    assert rows["零报告"] == "否" and rows["转诊"] == str(report.counts.referred) == "2"
    assert rows["车辆"] == "1"


def test_text_typed_at_the_gate_never_becomes_a_formula(store, tmp_path):
    GateService(store).commit(
        person("in", ID_ZHANG, "张三", 36.5, trip_reason='=HYPERLINK("http://x","看病")')
    )
    export(store, "passages", tmp_path / "p.xlsx")
    export(store, "passages", tmp_path / "p.csv")
    ws = load_workbook(tmp_path / "p.xlsx")["进出登记"]
    headers = [c.value for c in ws[1]]
    cell = ws.cell(row=2, column=headers.index("事由") + 1)
    assert cell.data_type == "s" and cell.value.startswith("=HYPERLINK")
    with open(tmp_path / "p.csv", encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[1][rows[0].index("事由")] == '\'=HYPERLINK("http://x","看病")'


# -- where the file goes ------------------------------------------------------------------------


@pytest.fixture
def tmp_mount(tmp_path):
    """A real small file system, like a USB stick: full or write-protected on demand."""
    mounts = []

    def make(size: str, read_only: bool = False):
        if os.geteuid() != 0 or not shutil.which("mount"):
            pytest.skip("needs root to mount a small tmpfs")
        target = tmp_path / f"stick{len(mounts)}"
        target.mkdir()
        opts = f"size={size}" + (",ro" if read_only else "")
        r = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(target)],
            capture_output=True,
            text=True,
            check=False,
        )
        if r.returncode:
            pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
        mounts.append(target)
        return target

    yield make
    for target in mounts:
        subprocess.run(["umount", "-l", str(target)], capture_output=True, check=False)


def test_missing_folder_and_path_under_a_file(store, tmp_path):
    busy_day(store)
    with pytest.raises(ExportError, match="不存在"):
        export(store, "passages", tmp_path / "no-stick" / "p.xlsx")
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(ExportError, match="不是文件夹"):
        export(store, "passages", afile / "p.xlsx")
    with pytest.raises(ExportError, match="是一个文件夹"):
        export(store, "passages", tmp_path, fmt="xlsx")
    assert store.audit.entries(1)[0]["action"] == "export_failed"


# A half-written zip must not be finalised later onto the closed file (a warning at exit).
@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_full_disk_leaves_no_half_written_file(store, tmp_mount):
    busy_day(store)
    stick = tmp_mount(size="256k")
    old = stick / "日报.xlsx"
    old.write_bytes(b"yesterday's export")
    # Fill the stick up to the last byte.
    with open(stick / "filler", "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError:
            pass
    before = sorted(p.name for p in stick.iterdir())
    with pytest.raises(ExportError, match="磁盘已满") as err:
        export(store, "shift-log", old, day=TODAY)
    assert "没有留下半截文件" in str(err.value)
    assert sorted(p.name for p in stick.iterdir()) == before  # no temp file, no partial file
    assert old.read_bytes() == b"yesterday's export"  # the older export is untouched
    (stick / "filler").unlink()
    export(store, "shift-log", old, day=TODAY)  # with room again, it works
    assert load_workbook(old)["值班登记"].max_row == 10


def test_read_only_stick(store, tmp_mount):
    busy_day(store)
    stick = tmp_mount(size="1m", read_only=True)
    store.settings.ui.language = "en"
    with pytest.raises(ExportError, match="read-only"):
        export(store, "passages", stick / "p.csv")
    assert list(stick.iterdir()) == []


def test_export_cli(tmp_path):
    run_cli(
        tmp_path,
        "init",
        "--checkpoint-name",
        "东门卡口",
        "--checkpoint-code",
        "CP-1",
        "--supervisor",
        SUPERVISOR,
        pin=SUPERVISOR_PIN,
    )
    run_cli(
        tmp_path,
        "record",
        "--direction",
        "in",
        "--id-number",
        ID_ZHANG,
        "--name",
        "张三",
        "--temperature",
        "36.5",
        "--code-colour",
        "green",
        pin=SUPERVISOR_PIN,
    )
    out = tmp_path / "log.csv"
    r = run_cli(
        tmp_path,
        "export",
        "passages",
        "--format",
        "csv",
        "--out",
        str(out),
        "--date",
        TODAY,
        "--json",
        pin=SUPERVISOR_PIN,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["rows"] == 1 and "张*" in out.read_text("utf-8-sig")
    r = run_cli(
        tmp_path,
        "export",
        "passages",
        "--out",
        str(tmp_path / "full.xlsx"),
        "--full",
        "--reason",
        "疾控流调",
        pin=SUPERVISOR_PIN,
    )
    assert r.returncode == 0 and "审计" in r.stdout
    r = run_cli(
        tmp_path, "export", "daily", "--out", str(tmp_path / "x" / "d.xlsx"), pin=SUPERVISOR_PIN
    )
    assert r.returncode == 7 and "不存在" in r.stderr and r.stderr.count("\n") == 1
    r = run_cli(tmp_path, "export", "daily", "--out", str(tmp_path / "d.txt"), pin=SUPERVISOR_PIN)
    assert r.returncode == 2 and "--format" in r.stderr


def test_workbook_has_the_coverage_chart_when_the_ledger_exists(store, tmp_path):
    if getattr(store, "ledger", None) is None:
        pytest.skip("the household ledger is not in this build")
    homes = [
        store.ledger.save_household({"building": b, "unit": "1", "room": r})[0]
        for b, r in (("1栋", "101"), ("1栋", "102"), ("2栋", "201"))
    ]
    store.ledger.record_visit(homes[1], "seen")
    busy_day(store)
    export(store, "daily", tmp_path / "d.xlsx", day=TODAY)
    ws = load_workbook(tmp_path / "d.xlsx")["图表"]
    assert len(ws._charts) == 3
    rows = cells(ws)
    start = next(i for i, r in enumerate(rows) if r[0] == "楼栋")
    assert rows[start][:4] == ["楼栋", "户数", "已走访", "覆盖率(%)"]
    assert rows[start + 1][:4] == ["1栋", 2, 1, 50.0] and rows[start + 2][:3] == ["2栋", 1, 0]
    # The temperature table marks the threshold: bins from 37.3 up are in the fever column.
    temp_start = next(i for i, r in enumerate(rows) if r[0] == "体温(°C)")
    table = {r[0]: (r[1], r[2]) for r in rows[temp_start + 1 : start - 2] if r[0]}
    assert table["38.2"] == (0, 1) and table["36.5"][1] == 0 and table["36.5"][0] >= 1
