"""Issue 13: an ID typed by hand is never drawn in full, not even while it is being typed; every
key still reaches the ID field in order, and a scanner's burst is still a scan.

What the screen draws is taken from the fields' own rendering (every line Textual asks them
for while the keys are handled), at 0 ms and at 100 ms a key."""

# ruff: noqa: F811  (the ready_store fixture is imported from test_ui_app)
from __future__ import annotations

import asyncio

import pytest
from textual import events
from textual.widgets import Input

from fieldkit.gate import mask_typing
from tests.test_ui_app import SIZE, app_for, ready_store, wedge  # noqa: F401
from tests.test_ui_gate import open_gate, passages, value
from tests.test_ui_pin_dialogs import settle

TYPED = "440305197809233450"  # valid check digit
TYPED_MASKED = "440305********3450"


def test_mask_typing_shows_no_more_than_the_masked_number():
    assert mask_typing("") == "" and mask_typing("44030") == "44030"
    assert mask_typing(TYPED[:10]) == "440305****"
    assert mask_typing(TYPED) == TYPED_MASKED
    for n in range(len(TYPED) + 1):
        shown = mask_typing(TYPED[:n])
        assert len(shown) == n  # one character for one: the cursor stays put
        assert not any(TYPED[i : i + 7] in shown for i in range(len(TYPED) - 6))


def painted(app) -> list[str]:
    """Record every line the form's input fields draw from now on."""
    lines: list[str] = []
    for field in app.screen.query(Input):
        draw = field.render_line

        def recording(y, draw=draw):
            strip = draw(y)
            lines.append(strip.text)
            return strip

        field.render_line = recording
    return lines


def full_runs(lines: list[str], number: str = TYPED) -> list[str]:
    """Lines showing 7 or more characters of the number in a row (more than its masked form)."""
    runs = {number[i : i + 7] for i in range(len(number) - 6)}
    return [line for line in lines if any(r in line for r in runs)]


async def keys(app, text: str, gap: float) -> None:
    for ch in text:
        app.post_message(events.Key("enter", "\r") if ch == "\n" else events.Key(ch, ch))
        if gap:
            await asyncio.sleep(gap)


@pytest.mark.parametrize("gap", [0.0, 0.1])
@pytest.mark.parametrize("start_in", ["#f-temp", "#f-id"])
async def test_an_id_being_typed_is_drawn_masked_and_every_key_arrives(
    settings, ready_store, gap, start_in
):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate(pilot)
        gate.query_one(start_in, Input).focus()
        await settle(pilot)
        lines = painted(app)
        await keys(app, TYPED, gap)
        await settle(pilot)
        await pilot.pause(0.1)  # the field's cursor blinks: drawn again at least once
        assert value(gate, "#f-id") == TYPED  # every key, in order, in the ID field
        assert gate.focused is gate.query_one("#f-id")
        assert any(TYPED_MASKED in line for line in lines), lines[-5:]
        assert not full_runs(lines), full_runs(lines)[:3]
        await keys(app, "\n365\n", 0.1)
        await settle(pilot)
        assert not full_runs(lines)
    rows = passages(ready_store)
    assert len(rows) == 1
    assert rows[0]["id_masked"] == TYPED_MASKED and rows[0]["temperature"] == 36.5
    assert rows[0]["source"] == "manual"


async def test_editing_a_typed_id_keeps_its_keys_in_order(settings, ready_store):
    """Backspace and typing again: the value is what was typed, the drawing stays masked."""
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate(pilot)
        lines = painted(app)
        await keys(app, TYPED[:12] + "9", 0.06)
        await pilot.press("backspace")
        await keys(app, TYPED[12:], 0.06)
        await settle(pilot)
        assert value(gate, "#f-id") == TYPED
        assert not full_runs(lines)


async def test_a_scanner_burst_into_the_masked_field_is_still_a_scan(settings, ready_store):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate(pilot)
        gate.query_one("#f-id", Input).focus()
        await settle(pilot)
        lines = painted(app)
        wedge(app, TYPED)
        await settle(pilot)
        assert value(gate, "#f-id") == TYPED_MASKED  # taken as a scan, shown masked
        assert gate.captured.id_number == TYPED and gate.captured.source == "wedge"
        assert not full_runs(lines)
        await keys(app, "365\n", 0.1)
        await settle(pilot)
    rows = passages(ready_store)
    assert len(rows) == 1 and rows[0]["source"] == "wedge"
    assert rows[0]["id_masked"] == TYPED_MASKED
