"""Home monitoring screen, driven by Pilot against a real store with a frozen clock
(3 April 2022, 08:30): due and overdue list, reading entry, referral alert, missed windows,
acknowledging alerts, and release with a supervisor's PIN."""

# ruff: noqa: F811  (the ready_store fixture is imported from test_ui_app)
from __future__ import annotations

from datetime import datetime

import pytest
from textual.widgets import DataTable, Input, Static

from fieldkit.ui.monitoring import MonitoringScreen, ReadingDialog, ReleaseDialog
from fieldkit.ui.widgets.dialogs import AlertScreen
from tests.conftest import SUPERVISOR, SUPERVISOR_PIN
from tests.ledger_support import known_since, make_id
from tests.test_ui_app import PATROL, PATROL_PIN, SIZE, ready_store, settle  # noqa: F401
from tests.test_ui_patrol import patrol_app, start

A, B = make_id(61), make_id(62)
TZ = datetime.now().astimezone().tzinfo
NOW = {"value": datetime(2022, 4, 3, 8, 30, tzinfo=TZ)}


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch):
    from fieldkit.ledger import households, monitoring

    NOW["value"] = datetime(2022, 4, 3, 8, 30, tzinfo=TZ)
    monkeypatch.setattr(monitoring, "now_local", lambda: NOW["value"])
    monkeypatch.setattr(households, "now_local", lambda: NOW["value"])


def seed(store) -> tuple[str, str]:
    """张三 home isolation since 1 April (ends 15 April); 李四 home monitoring since 27 March
    (7 days: ended 3 April, waiting for release)."""
    store.unlock(SUPERVISOR, SUPERVISOR_PIN)
    ledger = store.ledger
    hid, _ = ledger.save_household({"building": "3栋", "unit": "1单元", "room": "101"})
    other, _ = ledger.save_household({"building": "5栋", "unit": "2单元", "room": "302"})
    a, _ = ledger.save_member(
        hid,
        {
            "name": "张三",
            "id_number": A,
            "health_status": "home_isolation",
            "status_start": "2022-04-01",
        },
    )
    b, _ = ledger.save_member(
        other,
        {
            "name": "李四",
            "id_number": B,
            "health_status": "home_monitoring",
            "status_start": "2022-03-27",
        },
    )
    # The device and the ledger entries existed before the periods began (windows before
    # either are never counted as missed: issue 13 item 11).
    known_since(store, "2022-03-01T00:00:00+00:00")
    store.lock("test")
    return a, b


async def open_monitoring(pilot) -> MonitoringScreen:
    await start(pilot)
    await pilot.press("f9")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, MonitoringScreen)
    return screen


def rows(screen, wid: str) -> list[list[str]]:
    table = screen.query_one(wid, DataTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def test_due_list_and_missed_windows(settings, ready_store):
    seed(ready_store)
    app = patrol_app(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_monitoring(pilot)
        due = rows(screen, "#due")
        assert due == [
            ["待测", "早", "3栋-1单元-101", "张*", "居家隔离医学观察", "2022-04-15", ""],
            # the last day of 李四's period: still measured, and ready for release
            ["待测", "早", "5栋-2单元-302", "李*", "居家健康监测", "2022-04-03", ""],
        ]
        alerts = rows(screen, "#alerts")
        # 1 and 2 April, morning and evening, for 张三; 李四's last days too.
        assert sum(1 for r in alerts if r[0] == "漏测" and r[3] == "张*") == 4
        assert "李*" in str(screen.query_one("#mon-ending", Static).render())
        summary = str(screen.query_one("#mon-summary", Static).render())
        assert "超时 0 · 待测 2 · 已测 0 · 未处理提醒 18" in summary  # 4 + 14 missed windows


async def test_reading_entry_and_referral(settings, ready_store):
    seed(ready_store)
    app = patrol_app(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_monitoring(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ReadingDialog)
        await pilot.press(*"366", "enter", "enter")
        await settle(pilot)
        assert isinstance(app.screen, MonitoringScreen)
        done = [r for r in rows(screen, "#due") if r[2] == "3栋-1单元-101"]
        assert done == [
            ["已测", "早", "3栋-1单元-101", "张*", "居家隔离医学观察", "2022-04-15", "36.6"]
        ]
        # The temperature is sealed on disk (reading_enc): read through the monitoring facade.
        reading = ready_store.monitoring.reading_body(
            ready_store.g.query("SELECT * FROM readings")[0]
        )
        assert (
            reading["temperature"],
            reading["slot"],
            reading["measured_by"],
            reading["operator"],
        ) == (36.6, "morning", "doctor", PATROL)
        # Evening: 38.1 with a cough, measured by the person (s).
        NOW["value"] = datetime(2022, 4, 3, 18, 0, tzinfo=TZ)
        await pilot.press("ctrl+r")
        await settle(pilot)
        due = rows(screen, "#due")
        assert [r[:3] for r in due] == [
            ["超时", "早", "5栋-2单元-302"],
            ["待测", "晚", "3栋-1单元-101"],
            ["待测", "晚", "5栋-2单元-302"],
            ["已测", "早", "3栋-1单元-101"],
        ]
        screen.query_one("#due", DataTable).move_cursor(row=0)
        await pilot.press("down", "enter")
        await settle(pilot)
        await pilot.press(*"381", "enter")
        app.screen.query_one("#r-by", Input).value = "s"  # reached with Tab; Enter saves
        await pilot.press("5", "enter")
        await settle(pilot)
        assert isinstance(app.screen, AlertScreen)
        assert "38.1" in str(app.screen.query_one(".alert-line").render())
        await pilot.press("f10")
        await settle(pilot)
        bodies = map(
            ready_store.monitoring.reading_body, ready_store.g.query("SELECT * FROM readings")
        )
        assert [
            {"measured_by": b["measured_by"], "slot": b["slot"]}
            for b in bodies
            if b["temperature"] == 38.1
        ] == [{"measured_by": "self", "slot": "evening"}]
        alerts = rows(screen, "#alerts")
        assert alerts[0][0] == "转诊" and "38.1°C" in alerts[0][4] and "咳嗽" in alerts[0][4]
        # F6 acknowledges the highlighted alert (the referral is listed first).
        await pilot.press("f6")
        await settle(pilot)
        assert not [r for r in rows(screen, "#alerts") if r[0] == "转诊"]
        ack = ready_store.g.query(
            "SELECT acknowledged_by FROM monitoring_alerts WHERE kind = 'referral'"
        )
        assert ack == [{"acknowledged_by": PATROL}]


async def test_release_needs_the_supervisor_pin(settings, ready_store):
    _, b = seed(ready_store)
    app = patrol_app(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_monitoring(pilot)
        screen.query_one("#alerts", DataTable).focus()  # not the due list: the ending person
        await pilot.press("f7")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, ReleaseDialog) and dialog.person["id"] == b
        assert dialog.query_one("#rel-supervisor", Input).value == SUPERVISOR
        await pilot.press(*"0000", "enter")
        await settle(pilot)
        assert isinstance(app.screen, ReleaseDialog)
        assert "PIN" in str(dialog.query_one("#release-message", Static).render())
        await pilot.press(*SUPERVISOR_PIN, "enter")
        await settle(pilot)
        assert isinstance(app.screen, MonitoringScreen)
        assert ready_store.ledger.member(b).health_status == "released"
        assert ready_store.isolation.status(ready_store.index(B), today="2022-04-01") is None
        assert str(screen.query_one("#mon-ending", Static).render()) == ""
        entry = ready_store.audit.entries(1, "monitoring_release")[0]
        assert entry["operator"] == PATROL and entry["detail"]["confirmed_by"] == SUPERVISOR
