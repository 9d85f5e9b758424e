"""Defects a new-user trial found in home monitoring, reports and the vehicle lane
(/work/notes/report-trial.md items 9, 24, 23, 25, 11, 12, 14), each through the screen, the CLI
or the function a user meets, against a real store."""

# ruff: noqa: F811  (the ready_store fixture is imported from test_ui_app)
from __future__ import annotations

from datetime import date, datetime, timedelta

import openpyxl
import pytest
from textual.widgets import DataTable, Static

from fieldkit.reports import daily_report, open_shift, shift_summary
from fieldkit.reports.export import export
from fieldkit.reports.text import daily_text, shift_text
from fieldkit.ui.monitoring import MonitoringScreen
from tests.conftest import SUPERVISOR, SUPERVISOR_PIN
from tests.ledger_support import known_since, make_id
from tests.reports_support import ID_ZHANG, person
from tests.test_ui_app import PATROL, PATROL_PIN, SIZE, ready_store, settle  # noqa: F401
from tests.test_ui_patrol import patrol_app, start

A, B = make_id(71), make_id(72)
TZ = datetime.now().astimezone().tzinfo
DAY = "2022-04-03"
NOW = {"value": datetime(2022, 4, 3, 11, 22, tzinfo=TZ)}


@pytest.fixture
def frozen_clock(monkeypatch):
    from fieldkit.ledger import households, monitoring

    NOW["value"] = datetime(2022, 4, 3, 11, 22, tzinfo=TZ)
    monkeypatch.setattr(monitoring, "now_local", lambda: NOW["value"])
    monkeypatch.setattr(households, "now_local", lambda: NOW["value"])


def late_arrival(store) -> tuple[str, str]:
    """张三 known to the device since March, under home isolation since 1 April; 王磊 added at
    11:22 on 3 April (the morning window 06:00-10:00 had closed), home monitoring from today."""
    store.unlock(SUPERVISOR, SUPERVISOR_PIN)
    ledger = store.ledger
    hid, _ = ledger.save_household({"building": "3栋", "unit": "1单元", "room": "101"})
    other, _ = ledger.save_household({"building": "3栋", "unit": "1单元", "room": "102"})
    old, _ = ledger.save_member(
        hid,
        {
            "name": "张三",
            "id_number": A,
            "health_status": "home_isolation",
            "status_start": "2022-04-01",
        },
    )
    known_since(store, "2022-03-01T00:00:00+00:00")
    new, _ = ledger.save_member(  # as the member form or an import does, at 11:22
        other,
        {"name": "王磊", "id_number": B, "health_status": "home_monitoring", "status_start": DAY},
    )
    return old, new


def at(hhmm: str) -> datetime:
    return datetime.fromisoformat(f"{DAY}T{hhmm}").replace(tzinfo=TZ)


# -- 9: no 超时 for a window that closed before the person came under monitoring here ------------


def test_due_list_and_missed_alerts_use_one_rule_for_a_late_arrival(store, frozen_clock):
    old, new = late_arrival(store)
    mon = store.monitoring
    NOW["value"] = at("11:30")
    due = {(d.member_id, d.slot): d.state for d in mon.due(at("11:30"))}
    assert due == {(old, "morning"): "overdue"}  # 张三 was known: his morning is overdue
    assert mon.check_missed(at("11:30")) >= 1
    missed = {(a["member_id"], a["day"], a["slot"]) for a in mon.alerts() if a["kind"] == "missed"}
    assert (new, DAY, "morning") not in missed and (old, DAY, "morning") in missed
    # The evening window is his: due while open, overdue (and one 漏测) once it has closed.
    assert {(d.member_id, d.slot): d.state for d in mon.due(at("19:00"))}[(new, "evening")] == "due"
    assert {(d.member_id, d.slot): d.state for d in mon.due(at("23:30"))}[
        (new, "evening")
    ] == "overdue"
    mon.check_missed(at("23:30"))
    assert (new, DAY, "evening") in {
        (a["member_id"], a["day"], a["slot"]) for a in mon.alerts() if a["kind"] == "missed"
    }
    # A reading he did give in the morning slot still shows as done.
    mon.record_reading(new, 36.6, ts=at("11:40"), slot="morning")
    assert {(d.member_id, d.slot): d.state for d in mon.due(at("11:45"))}[
        (new, "morning")
    ] == "done"


def test_a_person_imported_after_the_window_is_not_overdue(store, frozen_clock):
    """The trial's steps: a ledger imported at 11:22 with a person under home monitoring."""
    from fieldkit.ledger.importer import import_rows

    store.g.db.execute("UPDATE operators SET created_at = '2022-03-01T00:00:00+00:00'")
    header = ["楼栋", "单元", "房号", "姓名", "身份证号", "管控状态", "开始时间"]
    summary = import_rows(
        store, [header, ["3栋", "1单元", "102", "王磊", B, "居家健康监测", DAY]], lang="zh"
    )
    assert summary.imported == 1, summary
    mon = store.monitoring
    assert [d.state for d in mon.due(at("11:30"))] == []
    assert mon.check_missed(at("11:30")) == 0
    assert [(d.slot, d.state) for d in mon.due(at("23:30"))] == [("evening", "overdue")]


async def test_monitoring_screen_shows_no_overdue_for_someone_added_after_the_window(
    settings, ready_store, frozen_clock
):
    late_arrival(ready_store)
    ready_store.lock("test")
    NOW["value"] = at("11:30")
    app = patrol_app(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("f9")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, MonitoringScreen)
        table = screen.query_one("#due", DataTable)
        due = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        assert due == [["超时", "早", "3栋-1单元-101", "张*", "居家隔离医学观察", "2022-04-15", ""]]
        summary = str(screen.query_one("#mon-summary", Static).render())
        assert "超时 1 · 待测 0 · 已测 0" in summary
        alerts = screen.query_one("#alerts", DataTable)
        names = [str(alerts.get_row_at(i)[3]) for i in range(alerts.row_count)]
        assert "王*" not in names  # no 漏测 for him either: screen and report agree


# -- 24: an open home-monitoring referral at handover and in 需关注 -------------------------------


def test_home_referral_is_in_the_handover_and_the_daily_report(store):
    open_shift(store, "早班")
    hid, _ = store.ledger.save_household({"building": "3栋", "unit": "1单元", "room": "102"})
    mid, _ = store.ledger.save_member(
        hid,
        {"name": "孙八", "id_number": A, "health_status": "home_monitoring"},
    )
    before = shift_text(shift_summary(store), "zh")
    assert "无未处理警示" in before
    reading = store.monitoring.record_reading(mid, 38.5, symptoms=["cough"])
    assert reading["alert_id"]
    text = shift_text(shift_summary(store), "zh")
    assert "无未处理警示" not in text
    assert "未处理警示 1 条" in text and "居家监测转诊" in text and "孙*" in text
    today = date.today().isoformat()
    report = daily_report(store, today)
    assert not report.zero_report and report.abnormal.get("home_referrals") == 1
    assert "需关注：居家监测转诊 1" in daily_text(report, "zh")
    # Marked handled (F6 on the monitoring screen): no longer open at handover; the day still
    # had its referral.
    store.monitoring.acknowledge(reading["alert_id"])
    assert "无未处理警示" in shift_text(shift_summary(store), "zh")
    assert daily_report(store, today).abnormal.get("home_referrals") == 1


async def test_console_and_close_dialog_show_the_home_referral(settings):
    from fieldkit.store import open_store
    from fieldkit.ui.app import make_app
    from fieldkit.ui.supervisor import ShiftCloseDialog, SupervisorScreen
    from tests.test_ui_supervisor import login, text

    store = open_store(settings, create=True)
    store.setup(SUPERVISOR, SUPERVISOR_PIN, checkpoint_name="东门卡口", checkpoint_code="CP-0101")
    try:
        open_shift(store, "早班")
        hid, _ = store.ledger.save_household({"building": "3栋", "unit": "1单元", "room": "102"})
        mid, _ = store.ledger.save_member(
            hid, {"name": "孙八", "id_number": A, "health_status": "home_monitoring"}
        )
        store.monitoring.record_reading(mid, 38.5, symptoms=["cough"])
        store.lock("test")
        app = make_app(settings, store)
        async with app.run_test(size=SIZE) as pilot:
            await login(pilot)
            screen = app.screen
            assert isinstance(screen, SupervisorScreen)
            panel = text(screen, "#shift-text")
            assert "未处理警示 1 条" in panel and "居家监测转诊" in panel
            assert "居家监测转诊 1" in text(screen, "#today-verdict")
            await pilot.press("c")
            await settle(pilot)
            assert isinstance(app.screen, ShiftCloseDialog)
            assert "居家监测转诊" in text(app.screen, "#close-preview")
    finally:
        store.close()


# -- 23: no zero report for a day before the device was set up ------------------------------------


def test_no_report_for_a_day_before_the_device_was_set_up(store):
    today = date.today()
    yesterday = (today - timedelta(days=1)).isoformat()
    report = daily_report(store, yesterday)
    assert report.before_setup and not report.zero_report
    text = daily_text(report, "zh")
    assert "零报告" not in text and "没有日报" in text
    assert len(text.splitlines()) == 2  # the heading and that one line
    assert daily_report(store, today.isoformat()).zero_report  # set up today: a zero report


async def test_reports_screen_says_there_is_no_report_before_set_up(settings, ready_store):
    from tests.test_ui_supervisor import login

    ready_store.lock("test")
    from fieldkit.ui.app import make_app

    app = make_app(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot)
        await pilot.press("r")
        await settle(pilot)
        verdict = app.screen.query_one("#report-verdict", Static)
        assert "零报告" in str(verdict.render())
        await pilot.press("left")
        await settle(pilot)
        said = str(verdict.render())
        assert "零报告" not in said and "没有日报" in said


# -- 25: the export's row count is the data rows ---------------------------------------------------


def test_daily_workbook_export_counts_the_data_rows(store, tmp_path):
    from fieldkit.gate import GateService

    gate = GateService(store)
    for _ in range(3):
        gate.commit(person("in", ID_ZHANG, "张三", 36.5))
    out = tmp_path / "daily.xlsx"
    result = export(store, "daily", out, day=date.today().isoformat())
    book = openpyxl.load_workbook(out, read_only=True)
    data = [ws for ws in book.worksheets if ws.title == "进出登记"]
    assert data, book.sheetnames
    rows = sum(1 for row in data[0].iter_rows(min_row=2) if any(c.value for c in row))
    assert result.rows == rows == 3


# -- 11: a vehicle's reason never claims a code nobody checked -------------------------------------


async def test_vehicle_reason_says_the_code_was_not_checked(settings, ready_store):
    from textual.widgets import Input

    from tests.test_ui_app import app_for
    from tests.test_ui_gate_vehicle import ID, ID_B, open_vehicle

    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_vehicle(pilot)
        screen.query_one("#v-plate", Input).value = "粤B88888"
        screen.query_one("#o-id", Input).value = ID
        screen.query_one("#o-temp", Input).focus()
        await pilot.press(*"366", "enter")  # no F5: the code was not looked at
        await pilot.pause()
        screen.query_one("#o-id", Input).value = ID_B
        screen.query_one("#o-temp", Input).focus()
        await pilot.press(*"365", "f5", "enter")  # this one showed a green code
        await pilot.pause()
        await pilot.press("ctrl+s")
        await settle(pilot)
        banner = str(screen.query_one("#banner").render())
        assert "放 行" in banner
        assert "未查验健康码" in banner and "绿码" not in banner
    vehicle = ready_store.vehicles.rows()[0]
    assert "code_not_checked" in str(vehicle["reasons"]) and '"ok"' not in str(vehicle["reasons"])


# -- 12: an ID typed by hand into 通行证 goes to the ID field, masked ------------------------------


@pytest.mark.parametrize("gap", [0.0, 0.1])
async def test_an_id_typed_into_the_pass_field_goes_to_the_id_field(settings, ready_store, gap):
    from textual.widgets import Input

    from tests.test_ui_app import app_for
    from tests.test_ui_gate_typing_mask import full_runs, painted
    from tests.test_ui_gate_vehicle import open_vehicle
    from tests.test_ui_vehicle_typing import keys

    typed, masked = "110101199003070038", "110101********0038"
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_vehicle(pilot)
        await keys(app, "B00001\n", 0.05)  # plate, Enter: the focus is in 通行证
        await settle(pilot)
        assert screen.focused is screen.query_one("#v-pass")
        lines = painted(app)
        await keys(app, "365" + typed, gap)
        await settle(pilot)
        assert screen.query_one("#v-pass", Input).value == "365"
        assert screen.query_one("#o-id", Input).value == typed  # every key, in order
        assert screen.focused is screen.query_one("#o-id")
        await pilot.pause(0.2)  # a person's Enter
        await keys(app, "\n", 0.05)
        await settle(pilot)
        assert screen.query_one("#o-id", Input).value == masked
        await keys(app, "366\n", 0.1)
        await settle(pilot)
        assert len(screen.occupants) == 1
        assert not full_runs(lines), full_runs(lines)[:3]
        # A pass number of digits stays a pass number.
        screen.query_one("#v-pass", Input).value = ""
        screen.query_one("#v-pass", Input).focus()
        await keys(app, "2022040300123", gap)
        await settle(pilot)
        assert screen.query_one("#v-pass", Input).value == "2022040300123"


# -- 14: every reason on the gate's result panel; the 未测原因 field shows what is typed -----------


async def test_gate_panel_shows_every_reason_and_the_not_measured_reason_fits(
    settings, ready_store
):
    from textual.widgets import Input

    from tests.test_ui_app import app_for
    from tests.test_ui_gate import open_gate, scan

    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate(pilot)
        await pilot.press("f9")  # 外来
        await settle(pilot)
        await pilot.press("ctrl+t")
        await settle(pilot)
        temp = gate.query_one("#f-temp", Input)
        hint = str(temp.placeholder)
        assert temp.content_size.width >= len(hint) * 2  # 如：无体温计, full width
        await pilot.press(*"体温计坏了")
        await settle(pilot)
        assert temp.content_size.width > len("体温计坏了") * 2  # the whole reason in view
        await scan(pilot, "110105198001010032")
        await pilot.press("enter")
        await settle(pilot)
        banner = gate.query_one("#banner")
        lines = str(banner.render()).splitlines()
        assert any("外来人员" in x for x in lines)  # the third reason
        assert banner.content_size.height >= len(lines)  # every line is on screen
        assert banner.region.bottom <= app.screen.region.bottom
