"""居家监测 (F9) in a worker's rhythm, at 80x24 with the frozen clock of test_ui_monitoring:
after a save the cursor goes to the next person due (not back to the one just measured); a slot
already measured asks before a second reading replaces the first; a reading without a temperature
keeps the dialog and what was typed; outside the windows the people under monitoring are listed
with their next window, and the CLI says so (trial_town items 6, 14, 11)."""

# ruff: noqa: F811  (fixtures imported from other test modules)
from __future__ import annotations

import json
from datetime import datetime

from textual.widgets import DataTable, Input, Static

from fieldkit.ui import monitoring as monitoring_ui
from fieldkit.ui.monitoring import MonitoringScreen, ReadingDialog
from tests.ledger_support import make_id
from tests.test_ui_app import PATROL, PATROL_PIN, SIZE, ready_store, settle  # noqa: F401
from tests.test_ui_monitoring import NOW, TZ, frozen_clock, open_monitoring, rows, seed  # noqa: F401
from tests.test_ui_patrol import patrol_app


def cursor_row(screen) -> list[str]:
    table = screen.query_one("#due", DataTable)
    return [str(c) for c in table.get_row_at(table.cursor_row)]


def temperatures(store, member_id: str) -> list[float | None]:
    return [r["temperature"] for r in store.monitoring.readings(member_id)]


async def test_after_a_save_the_cursor_is_on_the_next_person_due(settings, ready_store):
    """Two people due: Enter, 365, save → the cursor is on the other person, and the worker's
    next Enter opens that person's reading."""
    a, b = seed(ready_store)
    app = patrol_app(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_monitoring(pilot)
        assert cursor_row(screen)[3] == "张*"
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press(*"365", "enter", "enter")
        await settle(pilot)
        assert isinstance(app.screen, MonitoringScreen)
        assert cursor_row(screen)[:4] == ["待测", "早", "5栋-2单元-302", "李*"]
        await pilot.press("enter")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, ReadingDialog) and dialog.item.member_id == b
        await pilot.press(*"366", "enter", "enter")
        await settle(pilot)
        assert temperatures(ready_store, a) == [36.5]
        assert temperatures(ready_store, b) == [36.6]


async def test_the_cursor_goes_down_to_the_next_due_not_to_the_row_index(settings, ready_store):
    """Evening (18:00): one overdue morning, two due evenings, one morning done. Saving the last
    due row leaves nothing below it that is due: the cursor goes to the first row still owed,
    not to whatever row slid into its place (the morning already measured)."""
    a, b = seed(ready_store)
    ready_store.unlock(PATROL, PATROL_PIN)
    ready_store.monitoring.record_reading(a, 36.4, slot="morning")
    ready_store.lock("test")
    NOW["value"] = datetime(2022, 4, 3, 18, 0, tzinfo=TZ)
    app = patrol_app(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_monitoring(pilot)
        assert [r[:3] for r in rows(screen, "#due")][:4] == [
            ["超时", "早", "5栋-2单元-302"],
            ["待测", "晚", "3栋-1单元-101"],
            ["待测", "晚", "5栋-2单元-302"],
            ["已测", "早", "3栋-1单元-101"],
        ]
        screen.query_one("#due", DataTable).move_cursor(row=2)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press(*"365", "enter", "enter")
        await settle(pilot)
        assert cursor_row(screen)[:3] == ["超时", "早", "5栋-2单元-302"]
        # And from the middle: 张* evening → the row below it before the save (none due) …
        screen.query_one("#due", DataTable).move_cursor(row=1)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press(*"366", "enter", "enter")
        await settle(pilot)
        assert cursor_row(screen)[:3] == ["超时", "早", "5栋-2单元-302"]


async def test_a_measured_slot_asks_before_it_is_overwritten(settings, ready_store):
    """The trial's rhythm: save, then Down + Enter lands on the person just measured. That asks
    (已测过 … 是否覆盖？): Esc keeps the first reading; Enter, a new reading, replaces it."""
    a, b = seed(ready_store)
    app = patrol_app(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_monitoring(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press(*"365", "enter", "enter")
        await settle(pilot)
        await pilot.press("down")
        assert cursor_row(screen)[:4] == ["已测", "早", "3栋-1单元-101", "张*"]
        await pilot.press("enter")
        await settle(pilot)
        ask = app.screen
        assert isinstance(ask, monitoring_ui.OverwriteDialog)
        text = " ".join(str(s.render()) for s in ask.query(Static))
        assert "已测过" in text and "张*" in text and "36.5" in text and "是否覆盖" in text
        await pilot.press(*"386", "enter")  # digits do nothing here; Esc below cancels
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, MonitoringScreen)
        assert temperatures(ready_store, a) == [36.5]
        assert not [r for r in rows(screen, "#alerts") if r[0] == "转诊"]
        # y (or Enter) says yes: the reading dialog opens, and the new reading is the one shown.
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, monitoring_ui.OverwriteDialog)
        await pilot.press("enter")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, ReadingDialog) and dialog.item.member_id == a
        await pilot.press(*"368", "enter", "enter")
        await settle(pilot)
        assert isinstance(app.screen, MonitoringScreen)
        done = [r for r in rows(screen, "#due") if r[0] == "已测" and r[3] == "张*"]
        assert [r[6] for r in done] == ["36.8"]
        assert temperatures(ready_store, b) == []


async def test_a_reading_without_temperature_keeps_the_dialog(settings, ready_store):
    """Tab, Tab (测量人), Enter: the dialog stays, says why under the temperature, the cursor
    goes there, and what was typed is kept; typing the temperature then saves."""
    a, _ = seed(ready_store)
    app = patrol_app(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        await open_monitoring(pilot)
        await pilot.press("enter")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, ReadingDialog)
        await pilot.press("tab", "tab")
        assert dialog.focused is dialog.query_one("#r-by", Input)
        await pilot.press("backspace", "w", "enter")
        await settle(pilot)
        assert app.screen is dialog
        message = dialog.query_one("#r-temp-message", Static)
        assert message.display and "测量记录须有体温（或所见症状）" in str(message.render())
        # right under the temperature field
        assert message.region.y == dialog.query_one("#r-temp", Input).region.y + 1
        assert dialog.focused is dialog.query_one("#r-temp", Input)
        assert dialog.query_one("#r-by", Input).value == "w"
        assert ready_store.g.query("SELECT id FROM readings") == []
        await pilot.press(*"372", "enter", "enter")
        await settle(pilot)
        assert isinstance(app.screen, MonitoringScreen)
        (reading,) = ready_store.monitoring.readings(a)
        assert (reading["temperature"], reading["measured_by"]) == (37.2, "worker")


async def test_an_implausible_temperature_stays_in_the_dialog(settings, ready_store):
    """A temperature out of range is refused by the store: said in the dialog, not a toast
    after it closed."""
    seed(ready_store)
    app = patrol_app(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        await open_monitoring(pilot)
        await pilot.press("enter")
        await settle(pilot)
        dialog = app.screen
        await pilot.press(*"250", "enter", "3", "enter")
        await settle(pilot)
        assert app.screen is dialog
        assert str(dialog.query_one("#r-temp-message", Static).render()).strip()
        assert dialog.focused is dialog.query_one("#r-temp", Input)
        assert dialog.query_one("#r-sym", Input).value == "3"
        assert ready_store.g.query("SELECT id FROM readings") == []


async def test_between_windows_the_people_under_monitoring_are_listed(settings, ready_store):
    """05:00, before the morning window: nobody is due, but both people are listed with their
    next window and planned end; Enter on one says the window is not open yet."""
    seed(ready_store)
    NOW["value"] = datetime(2022, 4, 3, 5, 0, tzinfo=TZ)
    app = patrol_app(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_monitoring(pilot)
        assert rows(screen, "#due") == [
            ["下次", "早 06:00", "3栋-1单元-101", "张*", "居家隔离医学观察", "2022-04-15", ""],
            ["下次", "早 06:00", "5栋-2单元-302", "李*", "居家健康监测", "2022-04-03", ""],
        ]
        summary = str(screen.query_one("#mon-summary", Static).render())
        assert "目前没有到时的测量；监测中 2 人 · 下次 早 06:00" in summary
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, MonitoringScreen)
        assert any("张*：下次测量 早 06:00" in n.message for n in app._notifications)
        assert ready_store.g.query("SELECT id FROM readings") == []


async def test_after_the_morning_the_summary_says_the_next_window(settings, ready_store):
    """14:21, both measured this morning: the morning rows are 已测, and the line under the list
    says nothing is due, who is monitored and when the next window opens (晚 17:00); after
    the evening, tomorrow morning."""
    a, b = seed(ready_store)
    ready_store.unlock(PATROL, PATROL_PIN)
    for m in (a, b):
        ready_store.monitoring.record_reading(m, 36.4, slot="morning")
    ready_store.lock("test")
    NOW["value"] = datetime(2022, 4, 3, 14, 21, tzinfo=TZ)
    app = patrol_app(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_monitoring(pilot)
        assert [r[:4] for r in rows(screen, "#due")] == [
            ["已测", "早", "3栋-1单元-101", "张*"],
            ["已测", "早", "5栋-2单元-302", "李*"],
        ]
        summary = str(screen.query_one("#mon-summary", Static).render())
        assert "目前没有到时的测量；监测中 2 人 · 下次 晚 17:00 · 已测 2" in summary
        NOW["value"] = datetime(2022, 4, 3, 21, 30, tzinfo=TZ)
        for m in (a, b):
            ready_store.monitoring.record_reading(m, 36.5, slot="evening")
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert [r[0] for r in rows(screen, "#due")] == ["已测"] * 4
        summary = str(screen.query_one("#mon-summary", Static).render())
        assert "监测中 2 人 · 下次 明早 06:00 · 已测 4" in summary


async def test_a_person_added_after_the_morning_is_listed_with_the_evening(settings, ready_store):
    """12:00, the morning readings done; a person put under home monitoring now owes no morning
    reading: still listed, with the evening window, and Enter says it has not opened yet."""
    a, b = seed(ready_store)
    ready_store.unlock(PATROL, PATROL_PIN)
    for m in (a, b):
        ready_store.monitoring.record_reading(m, 36.4, slot="morning")
    NOW["value"] = datetime(2022, 4, 3, 12, 0, tzinfo=TZ)
    hid, _ = ready_store.ledger.save_household({"building": "1栋", "unit": "1单元", "room": "201"})
    ready_store.ledger.save_member(
        hid,
        {
            "name": "王五",
            "id_number": make_id(63),
            "health_status": "home_monitoring",
            "status_start": "2022-04-03",
        },
    )
    ready_store.lock("test")
    app = patrol_app(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_monitoring(pilot)
        due = rows(screen, "#due")
        assert due[-1][:4] == ["下次", "晚 17:00", "1栋-1单元-201", "王*"]
        assert [r[0] for r in due[:-1]] == ["已测", "已测"]  # the two others' mornings
        screen.query_one("#due", DataTable).move_cursor(row=len(due) - 1)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, MonitoringScreen)
        assert any("王*：下次测量 晚 17:00" in n.message for n in app._notifications)
        assert len(ready_store.g.query("SELECT id FROM readings")) == 2  # the mornings only


def test_cli_says_who_is_monitored_when_nothing_is_due(settings, ready_store, capsys, monkeypatch):
    """`fieldkit ledger monitoring` before the morning window: not a bare "-", but who is
    monitored and when they are next due."""
    from fieldkit import cliparts
    from fieldkit.cli import main

    seed(ready_store)
    NOW["value"] = datetime(2022, 4, 3, 5, 0, tzinfo=TZ)
    monkeypatch.setattr(cliparts, "settings_from_args", lambda args: settings)
    monkeypatch.setenv("FIELDKIT_OPERATOR", PATROL)
    monkeypatch.setenv("FIELDKIT_PIN", PATROL_PIN)
    assert main(["ledger", "monitoring"]) == 0
    out = capsys.readouterr().out
    assert "目前没有到时的测量；监测中 2 人" in out
    line = next(x for x in out.splitlines() if "张*" in x)
    assert "下次：早测 06:00" in line and "3栋-1单元-101" in line and "2022-04-15" in line
    assert main(["ledger", "monitoring", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["due"] == [] and "监测中 2 人" in data["message"]
