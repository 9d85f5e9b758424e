"""Issue 13, the vehicle lane as at the gate: an occupant's ID typed by hand lands in the ID
field wherever focus is (after the first occupant it sits in 体温), is drawn masked while typed
and after Enter, and Enter after the ID goes to the reading, not to the name. Checked at 0 ms
and at 100 ms a key, and the vehicle and every occupant record read back from the store."""

# ruff: noqa: F811  (the ready_store fixture is imported from test_ui_app)
from __future__ import annotations

import asyncio

import pytest
from textual import events
from textual.widgets import Input

from tests.test_ui_app import SIZE, app_for, ready_store, settle, wedge  # noqa: F401
from tests.test_ui_gate_typing_mask import full_runs, painted
from tests.test_ui_gate_vehicle import open_vehicle

FIRST = "11010519491231002X"
TYPED = "440305197809233450"
TYPED_MASKED = "440305********3450"


async def keys(app, text: str, gap: float) -> int:
    for ch in text:
        app.post_message(events.Key("enter", "\r") if ch == "\n" else events.Key(ch, ch))
        if gap:
            await asyncio.sleep(gap)
    return len(text)


@pytest.mark.parametrize("gap", [0.0, 0.1])
async def test_a_typed_occupant_id_is_masked_and_goes_to_the_reading(settings, ready_store, gap):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_vehicle(pilot)
        await keys(app, "B12345\n\n", 0.05)  # plate, Enter past the pass number
        await settle(pilot)
        assert screen.focused is screen.query_one("#o-id")
        wedge(app, FIRST)  # the first occupant's card
        await settle(pilot)
        await keys(app, "365\n", 0.05)
        await settle(pilot)
        assert len(screen.occupants) == 1
        assert screen.focused is screen.query_one("#o-temp")  # where the next one starts
        lines = painted(app)
        used = await keys(app, TYPED, gap)  # typed from the reading field
        await settle(pilot)
        assert screen.query_one("#o-id", Input).value == TYPED  # every key, in order
        await pilot.pause(0.2)  # a person's Enter (one right behind 0 ms keys is a scanner's)
        used += await keys(app, "\n", 0.05)
        await settle(pilot)
        assert screen.focused is screen.query_one("#o-temp")  # not the name
        assert screen.query_one("#o-id", Input).value == TYPED_MASKED
        used += await keys(app, "366\n", 0.1)
        await settle(pilot)
        assert used <= 24
        assert len(screen.occupants) == 2
        assert not full_runs(lines), full_runs(lines)[:3]
        await keys(app, "\n", 0.05)  # Enter on the empty reading: the vehicle is recorded
        await settle(pilot)
        assert not screen.occupants
    vehicle = ready_store.vehicles.rows()[0]
    assert vehicle["plate"] == "B12345" and vehicle["occupants"] == 2
    people = sorted(ready_store.passages.rows(), key=lambda r: r["ts"])
    assert [(p["id_masked"], p["temperature"], p["source"]) for p in people] == [
        ("110105********002X", 36.5, "wedge"),
        (TYPED_MASKED, 36.6, "manual"),
    ]


async def test_a_wrong_occupant_id_is_caught_at_enter_without_showing_it(settings, ready_store):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_vehicle(pilot)
        screen.query_one("#o-id", Input).focus()
        await settle(pilot)
        wrong = TYPED[:-1] + "1"  # check digit wrong
        await keys(app, wrong + "\n", 0.05)
        await settle(pilot)
        banner = str(screen.query_one("#banner").render())
        assert screen.focused is screen.query_one("#o-id")
        assert wrong not in banner and "核对" in banner
        assert not screen.occupants


async def test_ctrl_y_confirms_an_occupant_id_with_a_wrong_check_digit(settings, ready_store):
    """The banner says "确属证件原样按 Ctrl+Y 确认": in the vehicle lane that key works too."""
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_vehicle(pilot)
        screen.query_one("#o-id", Input).focus()
        await settle(pilot)
        wrong = TYPED[:-1] + "1"  # check digit wrong: the card says so, the operator looked
        await keys(app, wrong + "\n", 0.05)
        await settle(pilot)
        assert "Ctrl+Y" in str(screen.query_one("#banner").render())
        await pilot.press("ctrl+y")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert screen.focused is screen.query_one("#o-temp")
        await keys(app, "365\n", 0.05)
        await settle(pilot)
        assert len(screen.occupants) == 1
