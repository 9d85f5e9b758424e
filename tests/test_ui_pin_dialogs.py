"""Issue 13 item 4: dialogs that take a PIN (接班, 交班, release) keep the PIN masked and in
its own field, also when keys follow Tab or Enter with no delay at all (a scanner, a fast
typist): each key lands in the field the focus moved to."""

# ruff: noqa: F811
from __future__ import annotations

import time

from textual import events
from textual.widgets import Input

from fieldkit.ui.app import make_app
from fieldkit.ui.supervisor import ShiftCloseDialog, ShiftOpenDialog, SupervisorScreen
from tests.conftest import SUPERVISOR_PIN
from tests.test_ui_app import settle as _settle_workers
from tests.test_ui_supervisor import SIZE, ready_store  # noqa: F401
from tests.test_ui_supervisor import login as _login


async def settle(pilot) -> None:
    await _settle_workers(pilot, 4)


async def login(pilot, *args) -> None:
    await _login(pilot, *args)
    await settle(pilot)


NAMED = {"enter": "\r", "tab": "\t", "shift+tab": None}


def burst(app, keys: list[str]) -> None:
    """All keys at once, stamped with one time: zero delay between them."""
    now = time.monotonic()
    for k in keys:
        event = events.Key(k, k) if len(k) == 1 else events.Key(k, NAMED.get(k))
        event.time = now
        app.post_message(event)


def pin_fields_masked(dialog) -> None:
    pins = [w for w in dialog.query(Input) if (w.id or "").endswith("-pin")]
    assert pins and all(w.password for w in pins)


async def test_shift_open_and_close_keys_after_tab_land_where_tab_went(settings, ready_store):
    ready_store.lock("test")
    app = make_app(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot)
        await pilot.press("o")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, ShiftOpenDialog)
        pin_fields_masked(dialog)
        # note, Tab, supervisor's name, Tab, PIN, Enter: all at once
        burst(app, [*"early", "tab", *"王芳", "tab", *SUPERVISOR_PIN, "enter"])
        await settle(pilot)
        assert isinstance(app.screen, SupervisorScreen), [
            (w.id, w.value) for w in dialog.query(Input)
        ]
        shift = ready_store.shifts.current()
        assert shift is not None and '"open_note": "early"' in shift["summary"]

        await pilot.press("c")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, ShiftCloseDialog)
        pin_fields_masked(dialog)
        burst(app, [*"all quiet", "enter", *SUPERVISOR_PIN, "enter"])
        await settle(pilot)
        assert isinstance(app.screen, SupervisorScreen), [
            (w.id, w.value) for w in dialog.query(Input)
        ]
        assert ready_store.shifts.current() is None
        assert ready_store.shifts.last_closed()["handover_note"] == "all quiet"


# -- item 9: quitting with a shift open asks first; quitting is audited as a lock ------------


async def test_quitting_with_a_shift_open_asks_and_is_audited(settings, ready_store):
    from fieldkit.reports.shiftwork import open_shift
    from fieldkit.ui.supervisor_common import ConfirmDialog

    open_shift(ready_store, "early", by=ready_store.operator)
    ready_store.lock("test")
    app = make_app(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot)
        for key in ("ctrl+q", "ctrl+c"):
            await pilot.press(key)
            await settle(pilot)
            assert isinstance(app.screen, ConfirmDialog) and app.is_running
            assert "班次" in str(app.screen.query_one(".dialog-title").render())
            await pilot.press("n")
            await settle(pilot)
            assert isinstance(app.screen, SupervisorScreen) and app.is_running
        await pilot.press("ctrl+q", "y")
        await settle(pilot)
    assert app.return_code == 0
    lock = ready_store.audit.entries(1, "lock")[0]
    assert lock["detail"]["reason"] == "quit"


async def test_quitting_without_a_shift_does_not_ask(settings, ready_store):
    ready_store.lock("test")
    app = make_app(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot)
        await pilot.press("ctrl+q")
        await settle(pilot)
    assert app.return_code == 0
    assert ready_store.audit.entries(1, "lock")[0]["detail"]["reason"] == "quit"
