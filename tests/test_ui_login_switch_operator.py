"""New-user trial (/work/notes/trial_gate.md) item 10: on the lock screen the operator field
holds the previous operator and focus is in PIN 码. A supervisor typing her own name there and
Enter got "李明 的 PIN 码错误，还可尝试 4 次": a failed try counted against the previous
operator and written to the audit trail as theirs. Text that cannot be a PIN, typed into the
PIN field, now goes to 操作员 (as digits typed into an empty 操作员 go to the PIN); a PIN with
no digit is refused without being a try; the screen says how to change operator."""

# ruff: noqa: F811  (the ready_store fixture is imported from test_ui_app)
from __future__ import annotations

import time

from textual.widgets import Input, Static

from fieldkit.ui.gate import GateScreen
from fieldkit.ui.login import LoginScreen
from tests.conftest import SUPERVISOR, SUPERVISOR_PIN
from tests.test_ui_app import (
    GATE,
    GATE_PIN,
    SIZE,
    app_for,
    login,
    ready_store,  # noqa: F401  (fixture)
    settle,
    typed,
)
from tests.test_ui_login_trial_defects import enter_after, failures, message


def audit_count(store) -> int:
    return len(store.audit.entries(1000))


async def locked_after(pilot, name: str, pin: str) -> LoginScreen:
    """``name`` logged in, then Ctrl+L: the lock screen offers ``name``, focus in PIN 码."""
    await pilot.pause()
    await login(pilot, name, pin)
    assert isinstance(pilot.app.screen, GateScreen)
    await pilot.press("ctrl+l")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, LoginScreen)
    assert screen.query_one("#login-operator", Input).value == name
    assert pilot.app.focused is screen.query_one("#login-pin", Input)
    return screen


async def type_slowly(pilot, text: str) -> float:
    """A person's keys, each handled before the next (an IME commits a name a key at a time)."""
    start, last = time.monotonic(), 0.0
    for i, ch in enumerate(text):
        last = typed(pilot.app, ch, start=start + i * 0.15)
        await settle(pilot)
    return last


async def test_a_name_typed_into_the_pin_field_goes_to_the_operator_not_a_pin_try(
    settings, ready_store
):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await locked_after(pilot, GATE, GATE_PIN)
        name = screen.query_one("#login-operator", Input)
        pin = screen.query_one("#login-pin", Input)
        entries = audit_count(ready_store)
        enter_after(app, await type_slowly(pilot, SUPERVISOR), gap=0.3)  # 王芳, Enter
        await settle(pilot)
        assert failures(ready_store, GATE) == 0
        assert audit_count(ready_store) == entries  # no "登录失败" blamed on 李明
        assert "PIN 码错误" not in message(app)
        assert name.value == SUPERVISOR and pin.value == ""
        assert app.focused is pin  # Enter after the name: her PIN next
        enter_after(app, await type_slowly(pilot, SUPERVISOR_PIN), gap=0.3)
        await settle(pilot)
        assert ready_store.is_unlocked and ready_store.operator.name == SUPERVISOR
        assert failures(ready_store, GATE) == 0 and failures(ready_store, SUPERVISOR) == 0


async def test_a_name_in_letters_goes_to_the_operator_too(settings, ready_store):
    ready_store.unlock(SUPERVISOR, SUPERVISOR_PIN)
    ready_store.keyring.add(ready_store.operator, ready_store.master, "Wang", "gate", "86420")
    ready_store.lock("test")
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await locked_after(pilot, GATE, GATE_PIN)
        entries = audit_count(ready_store)
        enter_after(app, await type_slowly(pilot, "Wang"), gap=0.3)
        await settle(pilot)
        assert screen.query_one("#login-operator", Input).value == "Wang"
        assert failures(ready_store, GATE) == 0 and audit_count(ready_store) == entries
        enter_after(app, await type_slowly(pilot, "86420"), gap=0.3)
        await settle(pilot)
        assert ready_store.is_unlocked and ready_store.operator.name == "Wang"


async def test_a_pin_without_digits_is_refused_and_not_counted(settings, ready_store):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await locked_after(pilot, GATE, GATE_PIN)
        pin = screen.query_one("#login-pin", Input)
        entries = audit_count(ready_store)
        pin.value = "王芳"  # got there some other way than keys (a paste …)
        enter_after(app, time.monotonic())
        await settle(pilot)
        assert failures(ready_store, GATE) == 0 and audit_count(ready_store) == entries
        assert "PIN 码错误" not in message(app) and "数字" in message(app)
        assert pin.value == "" and not ready_store.is_unlocked
        # A wrong PIN of digits still counts.
        enter_after(app, await type_slowly(pilot, "9999"), gap=0.3)
        await settle(pilot)
        assert failures(ready_store, GATE) == 1


async def test_the_lock_screen_says_how_to_change_operator(settings, ready_store):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await locked_after(pilot, GATE, GATE_PIN)
        hint = str(screen.query_one("#login-switch-hint", Static).render())
        assert "换人" in hint and "姓名" in hint
        assert screen.query_one("#login-switch-hint").region.height > 0  # on screen at 80x24


async def test_a_scanned_passport_number_leaves_the_operator_as_it_was(settings, ready_store):
    """A scanner's burst that starts with a letter went to 操作员 key by key: undone as any
    burst is (the name offered comes back, focus in PIN 码), and no PIN try."""
    from tests.test_ui_app import wedge

    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await locked_after(pilot, GATE, GATE_PIN)
        entries = audit_count(ready_store)
        wedge(app, "E12345678")
        await settle(pilot)
        assert screen.query_one("#login-operator", Input).value == GATE
        assert screen.query_one("#login-pin", Input).value == ""
        assert app.focused is screen.query_one("#login-pin", Input)
        assert failures(ready_store, GATE) == 0 and audit_count(ready_store) == entries
        assert "请先登录" in message(app)


async def test_set_up_asks_for_a_pin_of_digits(settings):
    """The login screen takes a PIN of digits (a letter there starts a name): set-up does not
    make a supervisor whose PIN could never be typed there."""
    from fieldkit.store import open_store
    from fieldkit.ui.login import SetupScreen

    store = open_store(settings, create=True)
    app = app_for(settings, store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, SetupScreen)
        for field, value in (
            ("setup-cp-name", "西门卡口"),
            ("setup-cp-code", "CP-0202"),
            ("setup-supervisor", "Boss"),
            ("setup-pin", "abcdef"),
            ("setup-pin2", "abcdef"),
        ):
            screen.query_one(f"#{field}", Input).value = value
        screen.query_one("#setup-pin2", Input).focus()
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is screen and not store.initialised
        assert "数字" in str(screen.query_one("#setup-message", Static).render())
        assert app.focused is screen.query_one("#setup-pin", Input)
    store.close()


async def test_a_name_committed_at_once_by_an_input_method_is_kept_whole(settings, ready_store):
    """A Chinese input method commits 王芳 as one write: two keys at once into the PIN field.
    The second arrived before the focus had moved and emptied the operator field again, which
    was left holding 芳 (seen in tmux at 80x24, stop 21)."""
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await locked_after(pilot, GATE, GATE_PIN)
        name = screen.query_one("#login-operator", Input)
        pin = screen.query_one("#login-pin", Input)
        last = typed(app, SUPERVISOR, gap=0.002)  # both keys queued before either is handled
        await settle(pilot)
        assert name.value == SUPERVISOR and pin.value == ""
        enter_after(app, last, gap=0.4)
        await settle(pilot)
        enter_after(app, await type_slowly(pilot, SUPERVISOR_PIN), gap=0.3)
        await settle(pilot)
        assert ready_store.is_unlocked and ready_store.operator.name == SUPERVISOR
        assert failures(ready_store, GATE) == 0
