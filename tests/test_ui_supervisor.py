"""Supervisor console, driven by Textual's Pilot through the real app on a real store.

Shift open/close with the supervisor's PIN, handover and reconciliation; reports with charts;
exports from the app (opened back with openpyxl); retention purge; operators; the sync screen
against an in-process town server.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

import pytest
from openpyxl import load_workbook
from textual.widgets import Checkbox, ContentSwitcher, DataTable, Input, ProgressBar, Static

from fieldkit.reports import daily_report
from fieldkit.store import open_store
from fieldkit.ui import supervisor_common
from fieldkit.ui.app import make_app
from fieldkit.ui.exports_dialog import ExportDialog
from fieldkit.ui.login import LoginScreen
from fieldkit.ui.operators import OperatorDialog, OperatorsScreen
from fieldkit.ui.reports_screen import ReportsScreen
from fieldkit.ui.supervisor import (
    PurgeDialog,
    ShiftCloseDialog,
    ShiftOpenDialog,
    SupervisorScreen,
)
from fieldkit.ui.supervisor_common import ConfirmDialog
from fieldkit.ui.sync_screen import SyncScreen
from tests.conftest import SUPERVISOR, SUPERVISOR_PIN
from tests.reports_support import busy_day, passages_at
from tests.store_support import resealed
from tests.test_ui_app import settle as _settle_workers

GATE, GATE_PIN = "李明", "1357"
SIZE = (80, 24)


@pytest.fixture
def ready_store(settings):
    s = open_store(settings, create=True)
    s.setup(SUPERVISOR, SUPERVISOR_PIN, checkpoint_name="东门卡口", checkpoint_code="CP-0101")
    s.keyring.add(s.operator, s.master, GATE, "gate", GATE_PIN)
    yield s
    s.close()


async def settle(pilot) -> None:
    await _settle_workers(pilot, 4)


async def login(pilot, name: str = SUPERVISOR, pin: str = SUPERVISOR_PIN) -> None:
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, LoginScreen), screen
    screen.query_one("#login-operator", Input).value = name
    screen.query_one("#login-pin", Input).focus()
    await pilot.press(*pin, "enter")
    await settle(pilot)


def text(screen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def type_into(pilot, selector: str, value: str) -> None:
    field = pilot.app.screen.query_one(selector, Input)
    field.value = ""
    field.focus()
    await pilot.press(*value)


# -- console, shifts ----------------------------------------------------------------------------


async def test_supervisor_lands_on_the_console_with_todays_figures(settings, ready_store):
    busy_day(ready_store)
    ready_store.lock("test")
    app = make_app(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot)
        screen = app.screen
        assert isinstance(screen, SupervisorScreen)
        assert "当前没有开班" in text(screen, "#shift-text")
        report = daily_report(ready_store, date.today())
        figures = text(screen, "#today-text")
        assert re.search(rf"转诊 +{report.counts.referred}\b", figures)
        assert re.search(rf"进 +{report.counts.entries}\b", figures)
        assert "需关注" in text(screen, "#today-verdict")


async def test_gate_staff_cannot_open_the_console(settings, ready_store):
    ready_store.lock("test")
    app = make_app(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot, GATE, GATE_PIN)
        await pilot.press("f12")
        await settle(pilot)
        assert not isinstance(app.screen, SupervisorScreen)


async def test_open_and_close_a_shift_with_pin_handover_and_reconciliation(settings, ready_store):
    ready_store.lock("test")
    app = make_app(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot)
        await pilot.press("o")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, ShiftOpenDialog)
        assert "第一个班次" in text(dialog, "#handover-text")
        await type_into(pilot, "#shift-note", "早班")
        await type_into(pilot, "#pin-pin", "0000")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ShiftOpenDialog)  # wrong PIN: still asking
        assert "PIN" in text(dialog, "#dialog-message")
        assert ready_store.shifts.current() is None
        await type_into(pilot, "#pin-pin", SUPERVISOR_PIN)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, SupervisorScreen)
        shift = ready_store.shifts.current()
        assert shift is not None and shift["opened_by"] == SUPERVISOR

        busy_day(ready_store)  # the gate works through the shift
        await pilot.press("f5")
        await settle(pilot)
        panel = text(app.screen, "#shift-text")
        assert "相差 +1" in panel and "未处理警示 3 条" in panel

        await pilot.press("c")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, ShiftCloseDialog)
        preview = text(dialog, "#close-preview")
        assert "进 3 − 出 2" in preview and "待同步 9" in preview
        await type_into(pilot, "#pin-pin", SUPERVISOR_PIN)
        await pilot.press("enter")  # no handover note yet: refused
        await settle(pilot)
        assert isinstance(app.screen, ShiftCloseDialog)
        assert "交接说明" in text(dialog, "#dialog-message")
        await type_into(pilot, "#handover-note", "王五已转诊孙八无进入记录")
        await type_into(pilot, "#pin-pin", SUPERVISOR_PIN)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, SupervisorScreen)
        closed = ready_store.shifts.last_closed()
        assert closed["handover_note"] == "王五已转诊孙八无进入记录"
        assert closed["closed_by"] == SUPERVISOR
        assert "王五已转诊" in text(app.screen, "#shift-text")  # the next shift sees it

        await pilot.press("o")
        await settle(pilot)
        assert "王五已转诊" in text(app.screen, "#handover-text")


# -- reports and exports --------------------------------------------------------------------------


async def test_reports_day_navigation_zero_report_charts_and_totals(settings, ready_store):
    busy_day(ready_store)
    # The device was set up a week ago: yesterday is a quiet day it was there for (a day
    # before the set-up has no report at all: tests/test_trial_monitoring_reports.py).
    ready_store.g.db.execute(
        "UPDATE operators SET created_at = ?",
        [(datetime.now().astimezone() - timedelta(days=7)).isoformat(timespec="seconds")],
    )
    ready_store.lock("test")
    app = make_app(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot)
        await pilot.press("r")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ReportsScreen) and screen.day == date.today()
        assert "需关注" in text(screen, "#report-verdict")
        await pilot.press("left")
        await settle(pilot)
        assert screen.day == date.today() - timedelta(days=1)
        assert "零报告" in text(screen, "#report-verdict")
        await pilot.press("right", "right")  # no reports from the future
        await settle(pilot)
        assert screen.day == date.today()
        await pilot.press("2")
        assert screen.query_one("#charts", ContentSwitcher).current == "chart-temperature"
        await pilot.press("a")
        await settle(pilot)
        assert "截止到" in text(screen, "#report-figures")
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, SupervisorScreen)


async def test_export_from_the_app_masked_then_full_with_pin(settings, ready_store, tmp_path):
    busy_day(ready_store)
    ready_store.lock("test")
    app = make_app(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot)
        await pilot.press("r")
        await settle(pilot)
        await pilot.press("x")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, ExportDialog) and dialog.kind == "daily"
        assert dialog.query_one("#export-path", Input).value.endswith(
            f"卡口日报-{date.today().isoformat()}.xlsx"
        )
        out = tmp_path / "daily.xlsx"
        await type_into(pilot, "#export-path", str(out))
        await pilot.press("f10")
        await settle(pilot)
        assert not isinstance(app.screen, ExportDialog)
        summary = {r[0].value: r[1].value for r in load_workbook(out)["汇总"].iter_rows(min_row=2)}
        assert summary["转诊"] == 2 and summary["零报告"] == "否"

        # Full export: the PIN is needed, and the audit says who.
        await pilot.press("x")
        await settle(pilot)
        full = tmp_path / "full.csv"
        app.screen.query_one("#export-kind").value = "passages"
        app.screen.query_one("#export-format").value = "csv"
        app.screen.query_one("#export-full", Checkbox).value = True
        await pilot.pause()
        await type_into(pilot, "#export-path", str(full))
        await pilot.press("f10")
        await settle(pilot)
        assert isinstance(app.screen, ExportDialog) and not full.exists()
        await type_into(pilot, "#pin-pin", SUPERVISOR_PIN)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ExportDialog) and not full.exists()  # no reason yet
        assert "理由" in text(app.screen, "#dialog-message")
        await type_into(pilot, "#export-reason", "疾控流调")
        await pilot.press("enter")
        await settle(pilot)
        assert not isinstance(app.screen, ExportDialog), text(app.screen, "#dialog-message")
        assert "11010519491231002X" in full.read_text("utf-8-sig")
        entry = ready_store.audit.entries(1, "export")[0]
        assert entry["detail"]["full"] and entry["operator"] == SUPERVISOR
        assert entry["detail"]["reason"] == "疾控流调"


async def test_export_to_a_bad_place_keeps_the_dialog_open_with_the_reason(
    settings, ready_store, tmp_path
):
    ready_store.lock("test")
    (tmp_path / "afile").write_text("x")
    app = make_app(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot)
        await pilot.press("x")
        await settle(pilot)
        await type_into(pilot, "#export-path", str(tmp_path / "afile" / "log.xlsx"))
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ExportDialog)
        assert "不是文件夹" in text(app.screen, "#dialog-message")


# -- purge ----------------------------------------------------------------------------------------


async def test_purge_with_confirmation_keeps_unsynced(settings, ready_store):
    old = datetime.now().astimezone() - timedelta(days=45)
    passages_at(ready_store, old, 4)
    ids = [r["id"] for r in ready_store.g.query("SELECT id FROM passages ORDER BY ts")]
    ready_store.outbox.mark_synced(ids[:3], "b1", kind="passage")
    ready_store.lock("test")
    app = make_app(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot)
        await pilot.press("d")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, PurgeDialog)
        plan = text(dialog, "#purge-plan")
        assert "3 条已同步" in plan and "1 条早于该日期但尚未同步" in plan
        await pilot.press("escape")
        await settle(pilot)
        assert ready_store.g.scalar("SELECT count(*) FROM passages") == 4
        await pilot.press("d")
        await settle(pilot)
        await type_into(pilot, "#pin-pin", SUPERVISOR_PIN)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, SupervisorScreen)
        assert [r["id"] for r in ready_store.g.query("SELECT id FROM passages")] == [ids[3]]
        assert ready_store.audit.entries(1, "purge")[0]["detail"]["deleted"] == {"passages": 3}


# -- operators ------------------------------------------------------------------------------------


async def test_operators_add_reset_remove(settings, ready_store):
    ready_store.lock("test")
    app = make_app(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot)
        await pilot.press("u")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, OperatorsScreen)
        table = screen.query_one("#ops-table", DataTable)
        rows = {table.get_row_at(i)[0]: table.get_row_at(i) for i in range(table.row_count)}
        assert set(rows) == {SUPERVISOR, GATE}
        assert rows[GATE][2] == "从未" and rows[SUPERVISOR][2].startswith(date.today().isoformat())

        await pilot.press("a")
        await settle(pilot)
        assert isinstance(app.screen, OperatorDialog)
        await type_into(pilot, "#op-name", "赵六")
        await type_into(pilot, "#op-pin", "2222")
        await type_into(pilot, "#op-pin2", "2223")
        await pilot.press("enter")
        await settle(pilot)
        assert "不一致" in text(app.screen, "#op-message")
        await type_into(pilot, "#op-pin2", "2222")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, OperatorsScreen)
        assert ready_store.keyring.get("赵六").role == "gate"
        assert ready_store.keyring.verify_pin("赵六", "2222").name == "赵六"

        table = app.screen.query_one("#ops-table", DataTable)
        names = [table.get_row_at(i)[0] for i in range(table.row_count)]
        table.move_cursor(row=names.index("赵六"))
        await pilot.press("p")
        await settle(pilot)
        await type_into(pilot, "#op-pin", "4444")
        await type_into(pilot, "#op-pin2", "4444")
        await pilot.press("enter")
        await settle(pilot)
        assert ready_store.keyring.verify_pin("赵六", "4444").name == "赵六"

        table.move_cursor(row=names.index(SUPERVISOR))
        await pilot.press("delete")
        await settle(pilot)
        assert isinstance(app.screen, OperatorsScreen)  # not yourself
        table.move_cursor(row=names.index("赵六"))
        await pilot.press("delete")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("enter")  # a stray Enter does not confirm
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("y")
        await settle(pilot)
        assert ready_store.keyring.get("赵六") is None
        assert ready_store.audit.entries(1)[0]["action"] == "operator_remove"


# -- sync -----------------------------------------------------------------------------------------


async def test_sync_screen_not_enrolled_says_so(settings, ready_store):
    busy_day(ready_store)
    ready_store.lock("test")
    app = make_app(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot)
        await pilot.press("s")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, SyncScreen)
        assert "尚未在镇防控办登记" in text(screen, "#sync-warnings")
        assert "待同步 9" in text(screen, "#sync-info")
        await pilot.press("s")
        await settle(pilot)
        assert "同步失败" in text(screen, "#sync-result")
        assert ready_store.outbox.counts()["pending"] == 9


async def test_sync_now_with_progress_rejections_and_requeue(settings, ready_store, tmp_path):
    from sync import client as sc
    from sync.testing import SyncASGITransport, TestTown, drop_repo, make_repo

    (tmp_path / "town").mkdir()
    repo = make_repo("sqlite", str(tmp_path / "town"))
    town = TestTown(repo)
    transport = SyncASGITransport(town.app)
    try:
        sc.enroll(ready_store, "http://town", town.new_token("east-gate"), transport=transport)
        settings.sync.batch_size = 3
        busy_day(ready_store)
        assert sc.run_sync(ready_store, settings, transport=transport).ok
        # One record comes back changed (restored from an old backup): the town rejects it.
        rid = ready_store.g.query("SELECT id FROM passages ORDER BY ts LIMIT 1")[0]["id"]
        ready_store.g.db.execute(
            "UPDATE passages SET sync_state='pending', sealed_enc=? WHERE id=?",
            [resealed(ready_store, rid, temperature=39.9), rid],
        )
        passages_at(ready_store, datetime.now().astimezone(), 7)
        ready_store.lock("test")
        app = make_app(settings, ready_store)
        app.sync_transport = transport
        async with app.run_test(size=SIZE) as pilot:
            await login(pilot)
            await pilot.press("s")
            await settle(pilot)
            screen = app.screen
            assert "待同步 8" in text(screen, "#sync-info")
            await pilot.press("s")
            await settle(pilot)
            bar = screen.query_one("#sync-progress", ProgressBar)
            assert bar.total == 8 and bar.progress == 8
            result = text(screen, "#sync-result")
            assert "同步完成" in result and "被拒 1" in result
            assert "上次成功同步" in text(screen, "#sync-info")
            assert "无" not in text(screen, "#sync-info").splitlines()[1]
            table = screen.query_one("#sync-rejected", DataTable)
            assert table.row_count == 1 and "kept for review" in str(table.get_row_at(0)[2])
            assert ready_store.outbox.counts() == {"pending": 0, "synced": 15, "quarantined": 1}
            await pilot.press("q")
            await settle(pilot)
            assert ready_store.outbox.counts()["pending"] == 1
            assert screen.query_one("#sync-rejected", DataTable).row_count == 0
    finally:
        transport.shutdown()
        drop_repo(repo)


# -- snapshots ------------------------------------------------------------------------------------

SNAP_DAY = date(2024, 3, 15)


@pytest.fixture
def snapshot_store(settings, monkeypatch):
    """A fixed day at the gate (15 March 2024), so the screens render the same every time."""
    from fieldkit.domain import Decision, Outcome, Reason
    from fieldkit.store import PassageInput

    monkeypatch.setattr(supervisor_common, "today", lambda: SNAP_DAY)
    s = open_store(settings, create=True)
    s.setup(SUPERVISOR, SUPERVISOR_PIN, checkpoint_name="东门卡口", checkpoint_code="CP-0101")
    base = datetime(2024, 3, 15, 7, 0).astimezone()
    ok = Decision(Outcome.ADMIT, (Reason("ok", Outcome.ADMIT),))
    fever = Decision(
        Outcome.REFER,
        (
            Reason(
                "fever",
                Outcome.REFER,
                True,
                {"temperature": "37.9", "threshold": "37.3", "call": "120"},
            ),
        ),
    )
    items = []
    for i in range(30):
        when = base + timedelta(minutes=23 * i)
        temp = 36.0 + (i % 9) / 10
        items.append(
            (
                PassageInput(
                    direction="in" if i % 3 else "out",
                    ts=when,
                    temperature=temp,
                    code_colour="green",
                ),
                ok,
            )
        )
    items.append(
        (
            PassageInput(
                direction="in", ts=base + timedelta(hours=3), temperature=37.9, code_colour="green"
            ),
            fever,
        )
    )
    s.passages.record_many(items)
    s.lock("test")
    yield s
    s.close()


def _snap_app(settings, store):
    """Only the supervisor's screens: other modules' keys in the footer do not move the picture."""
    from fieldkit.ui.supervisor import SCREENS

    return make_app(settings, store, entries=SCREENS)


def test_snapshot_console(snap_compare, settings, snapshot_store):
    """The supervisor console at 80×24 after login: no shift open, "no handover yet" on the left;
    on the right today's verdict in amber (1 referral, 1 fever) and the figures in two aligned
    columns (in 20, out 10, referred 1 …); the footer lists o/c/r/x/s/u/d."""

    async def run_before(pilot):
        await login(pilot)

    assert snap_compare(
        _snap_app(settings, snapshot_store), terminal_size=SIZE, run_before=run_before
    )


def test_snapshot_reports_with_temperature_chart(snap_compare, settings, snapshot_store):
    """Reports for 2024-03-15: figures on the left; on the right the temperature chart with
    blue bars from 36.0 to 36.8 °C, one red bar at 37.9 and the 37.3 tick on the threshold."""

    async def run_before(pilot):
        await login(pilot)
        await pilot.press("r")
        await settle(pilot)
        await pilot.press("2")
        await settle(pilot)

    assert snap_compare(
        _snap_app(settings, snapshot_store), terminal_size=SIZE, run_before=run_before
    )


def test_snapshot_sync_not_enrolled(snap_compare, settings, snapshot_store):
    """The sync screen of a kit never enrolled: server "not set", last sync "none", the amber
    warning to run `fieldkit enroll`, 31 pending, an empty progress bar, no rejected records."""

    async def run_before(pilot):
        await login(pilot)
        await pilot.press("s")
        await settle(pilot)

    assert snap_compare(
        _snap_app(settings, snapshot_store), terminal_size=SIZE, run_before=run_before
    )
