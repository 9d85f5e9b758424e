"""App shell behaviour, driven by Textual's Pilot on a real store in tmp_path.

First-run set-up with the recovery key, login, wrong PINs and lock-out, idle lock, role-based
home screens from the registry, the status bar, the area-mode change with the supervisor PIN,
and the command palette offering every action.
"""

from __future__ import annotations

import inspect
import time

import pytest
from textual import events
from textual.widgets import Input, Static

from fieldkit.store import open_store
from fieldkit.ui.app import FieldkitApp, make_app
from fieldkit.ui.gate import GateScreen
from fieldkit.ui.login import LoginScreen, RecoveryKeyScreen, SetupScreen
from fieldkit.ui.registry import SCREEN_MODULES, ScreenEntry, home_entry, screen_entries
from fieldkit.ui.widgets.statusbar import StatusBar
from tests.conftest import SUPERVISOR, SUPERVISOR_PIN

GATE, GATE_PIN = "李明", "1357"
PATROL, PATROL_PIN = "赵六", "9753"
SIZE = (80, 24)
MY_MODULES = ("fieldkit.ui.gate", "fieldkit.ui.vehicle")


@pytest.fixture
def ready_store(settings):
    """A set-up store with a supervisor, a gate operator and a patrol worker; locked."""
    s = open_store(settings, create=True)
    s.setup(SUPERVISOR, SUPERVISOR_PIN, checkpoint_name="东门卡口", checkpoint_code="CP-0101")
    s.keyring.add(s.operator, s.master, GATE, "gate", GATE_PIN)
    s.keyring.add(s.operator, s.master, PATROL, "patrol", PATROL_PIN)
    s.lock("test")
    yield s
    s.close()


async def settle(pilot, rounds: int = 3) -> None:
    """Let workers finish and their messages land. An exclusive worker replaced by a newer one
    (the status bar's) is cancelled, which is not a failure: on a loaded machine the newer one
    can start while the older is awaited (two CI runs under load failed on WorkerCancelled)."""
    from textual.worker import WorkerCancelled

    for _ in range(rounds):
        try:
            await pilot.app.workers.wait_for_complete()
        except WorkerCancelled:
            pass
        await pilot.pause()


async def login(pilot, name: str, pin: str) -> None:
    screen = pilot.app.screen
    assert isinstance(screen, LoginScreen), screen
    screen.query_one("#login-operator", Input).value = name
    screen.query_one("#login-pin", Input).focus()
    await pilot.press(*pin, "enter")
    await settle(pilot)


def app_for(settings, store, **kwargs) -> FieldkitApp:
    """The app with only the gate engineer's screens, so other screens landing cannot change
    what these tests see (the registry itself is tested above)."""
    return make_app(settings, store, entries=screen_entries(MY_MODULES), **kwargs)


def wedge(app: FieldkitApp, text: str, gap: float = 0.006, start: float | None = None) -> None:
    """What a USB scanner does: a burst of keys, much faster than a person, then Enter.

    ``start``: when its first key comes (default now), so a test can place the burst exactly
    against a person's keys (see :func:`typed`)."""
    start = time.monotonic() if start is None else start
    for i, ch in enumerate([*text, "enter"]):
        event = events.Key("enter", "\r") if ch == "enter" else events.Key(ch, ch)
        event.time = start + i * gap
        app.post_message(event)


def typed(app: FieldkitApp, text: str, gap: float = 0.1, start: float | None = None) -> float:
    """A person's keys ``gap`` apart, stamped as the terminal driver stamps them (not when a busy
    test loop gets round to them); returns the last key's time."""
    start = time.monotonic() if start is None else start
    for i, ch in enumerate(text):
        event = events.Key(ch, ch)
        event.time = start + i * gap
        app.post_message(event)
    return start + (len(text) - 1) * gap


def status_text(app) -> str:
    return str(app.screen.query_one(StatusBar).render())


# -- registry ---------------------------------------------------------------------------------


def test_registry_collects_screens_and_skips_missing_modules():
    entries = screen_entries(("fieldkit.ui.gate", "fieldkit.ui.not_written_yet"))
    assert [e.id for e in entries] == ["gate"]
    assert entries[0].key == "f2" and "gate" in entries[0].roles
    assert "fieldkit.ui.gate" in SCREEN_MODULES and "fieldkit.ui.supervisor" in SCREEN_MODULES


def test_home_screen_follows_the_role():
    entries = [
        ScreenEntry("gate", "gate.title", GateScreen, ("gate", "supervisor")),
        ScreenEntry("patrol", "x", GateScreen, ("patrol",)),
    ]
    assert home_entry(entries, "gate").id == "gate"
    assert home_entry(entries, "patrol").id == "patrol"
    assert home_entry(entries, "supervisor").id == "gate"  # no supervisor console registered
    assert home_entry(entries[1:], "gate") is None


# -- first run ----------------------------------------------------------------------------------


async def test_first_run_sets_up_checkpoint_and_supervisor_and_shows_recovery_key_once(settings):
    store = open_store(settings, create=True)
    app = app_for(settings, store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, SetupScreen)
        screen = app.screen
        screen.query_one("#setup-cp-name", Input).value = "西门卡口"
        screen.query_one("#setup-cp-code", Input).value = "CP-0202"
        screen.query_one("#setup-supervisor", Input).focus()
        await pilot.press(*"Boss", "enter", *"12", "enter", *"12", "enter")
        assert "4" in str(screen.query_one("#setup-message", Static).render())  # PIN too short
        assert not store.initialised
        screen.query_one("#setup-pin", Input).value = "2468"
        screen.query_one("#setup-pin2", Input).value = "2469"
        screen.query_one("#setup-pin2", Input).focus()
        await pilot.press("enter")
        assert "不一致" in str(screen.query_one("#setup-message", Static).render())
        screen.query_one("#setup-pin2", Input).value = "2468"
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, RecoveryKeyScreen)
        key = app.screen.recovery
        assert len(key) > 20
        await pilot.press("enter")  # a stray Enter does not skip the key
        assert isinstance(app.screen, RecoveryKeyScreen)
        footer_keys = {b.description for b in app.screen._bindings.key_to_bindings["f10"]}
        assert footer_keys == {"已抄写"}  # the footer speaks the screen language too
        await pilot.press("f10")
        await settle(pilot)
        assert isinstance(app.screen, GateScreen)  # supervisor, no console yet: the gate
        assert store.operator.name == "Boss" and store.operator.is_supervisor
        assert settings.checkpoint.name == "西门卡口" and settings.checkpoint.code == "CP-0202"
        assert "西门卡口 CP-0202" in status_text(app)
    store.close()
    # the key really recovers the store
    again = open_store(settings)
    again.recover(key, "Boss", "8642")
    assert again.is_unlocked
    again.close()


# -- login, wrong PINs, lock-out, idle lock ------------------------------------------------------


async def test_gate_operator_logs_in_to_the_gate_screen_with_the_status_bar(settings, ready_store):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, LoginScreen)
        await login(pilot, GATE, GATE_PIN)
        assert isinstance(app.screen, GateScreen)
        assert ready_store.operator.name == GATE
        await settle(pilot)
        text = status_text(app)
        for part in ("东门卡口 CP-0101", "常态化", GATE, "待同步 0", "名单 无", "未开班"):
            assert part in text, (part, text)
        assert ready_store.kv.get("ui.last_operator") == GATE


async def test_patrol_worker_may_not_open_the_gate(settings, ready_store):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await login(pilot, PATROL, PATROL_PIN)
        assert not isinstance(app.screen, GateScreen)
        await pilot.press("f2")
        await pilot.pause()
        assert not isinstance(app.screen, GateScreen)


async def test_wrong_pins_count_down_then_lock_out(settings, ready_store):
    settings.security.max_pin_failures = 2
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await login(pilot, GATE, "0000")
        message = str(app.screen.query_one("#login-message", Static).render())
        assert "PIN 码错误" in message and "1 次" in message
        await login(pilot, GATE, "0000")
        message = str(app.screen.query_one("#login-message", Static).render())
        assert "已锁定" in message and "秒" in message
        await login(pilot, GATE, GATE_PIN)  # even the right PIN waits out the lock-out
        assert isinstance(app.screen, LoginScreen)
        assert "已锁定" in str(app.screen.query_one("#login-message", Static).render())
        assert not ready_store.is_unlocked
    actions = [e["action"] for e in ready_store.audit.entries(50)]
    assert "lockout" in actions


async def test_unknown_operator_is_told_so_in_english(settings, ready_store):
    settings.ui.language = "en"
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await login(pilot, "nobody", "1234")
        assert "No operator named nobody" in str(
            app.screen.query_one("#login-message", Static).render()
        )


async def test_idle_lock_covers_the_screen_and_the_same_operator_carries_on(settings, ready_store):
    settings.ui.idle_lock_minutes = 0.5
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await login(pilot, GATE, GATE_PIN)
        gate = app.screen
        gate.query_one("#f-temp", Input).value = "36"  # work in progress
        app.check_idle_lock()
        assert ready_store.is_unlocked  # not idle yet
        app.last_input -= 31
        app.check_idle_lock()
        await pilot.pause()
        assert isinstance(app.screen, LoginScreen) and not ready_store.is_unlocked
        assert "无操作" in str(app.screen.query_one("#login-reason", Static).render())
        assert app.screen.query_one("#login-operator", Input).value == GATE
        await login(pilot, GATE, GATE_PIN)
        assert app.screen is gate
        assert gate.query_one("#f-temp", Input).value == "36"
    assert any(
        e["action"] == "lock" and e["detail"].get("reason") == "idle"
        for e in ready_store.audit.entries(50)
    )


async def test_another_operator_after_the_lock_starts_fresh(settings, ready_store):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await login(pilot, GATE, GATE_PIN)
        gate = app.screen
        gate.query_one("#f-temp", Input).value = "36"
        await pilot.press("ctrl+l")
        await pilot.pause()
        assert isinstance(app.screen, LoginScreen)
        await login(pilot, SUPERVISOR, SUPERVISOR_PIN)
        assert isinstance(app.screen, GateScreen) and app.screen is not gate
        assert app.screen.query_one("#f-temp", Input).value == ""


# -- area mode ----------------------------------------------------------------------------------


async def test_area_mode_change_needs_the_supervisor_pin(settings, ready_store):
    from fieldkit.ui.widgets.dialogs import ModeChangeScreen

    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await login(pilot, GATE, GATE_PIN)
        app.action_change_mode()
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ModeChangeScreen)
        assert dialog.query_one("#mode-supervisor", Input).value == SUPERVISOR
        await pilot.press("down", "down", "enter")  # normal → low → medium
        dialog.query_one("#mode-supervisor", Input).value = GATE
        await pilot.press(*GATE_PIN, "enter")
        await settle(pilot)
        assert "不是负责人" in str(dialog.query_one("#mode-message", Static).render())
        dialog.query_one("#mode-supervisor", Input).value = SUPERVISOR
        await pilot.press(*"0000", "enter")
        await settle(pilot)
        assert "PIN 码错误" in str(dialog.query_one("#mode-message", Static).render())
        assert settings.checkpoint.area_mode == "normal"
        await pilot.press(*SUPERVISOR_PIN, "enter")
        await settle(pilot)
        assert isinstance(app.screen, GateScreen)
        assert settings.checkpoint.area_mode == "medium"
        assert "中风险" in status_text(app)
        assert ready_store.operator.name == GATE  # the gate operator stays logged in
    change = [e for e in ready_store.audit.entries(50) if e["action"] == "setting_change"]
    assert change and change[0]["operator"] == SUPERVISOR
    assert change[0]["detail"]["to"] == "medium"


# -- command palette ----------------------------------------------------------------------------


async def test_command_palette_offers_screens_and_every_gate_action(settings, ready_store):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await login(pilot, GATE, GATE_PIN)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for wanted in (
            "卡口登记",
            "更改区域风险等级",
            "锁屏",
            "退出",
            "进/出",
            "绿码",
            "黄码",
            "红码",
            "核酸",
            "类别",
            "清空",
            "更正上条",
            "未测体温",
        ):
            assert wanted in titles, (wanted, titles)
        red = next(c for c in app.get_system_commands(app.screen) if c.title == "红码")
        result = red.callback()
        if inspect.isawaitable(result):
            await result
        await pilot.pause()
        assert app.screen.colour == "red"
