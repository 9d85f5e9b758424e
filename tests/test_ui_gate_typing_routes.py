"""Where typed keys go between the gate form's fields (trial at the gate, items 2, 6, 7, 13, 15),
driven by Pilot against a real store, keys stamped as a person types them.

2. a mobile number typed into 电话, then the reading: the phone stays, the reading is the
   temperature, the ID in 证件 is untouched (and an ID typed into 电话 by mistake still goes
   to 证件 whole);
6. after a typed ID is refused for its check digit, the reading typed next goes to 体温;
7. an ID typed in groups (spaces or dashes) into 体温 goes to 证件 like the unspaced one;
13. an implausible reading is echoed as typed (3.65, not 3.6);
15. Ctrl+Y with the reading already typed records at once; without it, it says what's next.
"""

# ruff: noqa: F811  (the ready_store fixture is imported from test_ui_app)
from __future__ import annotations

import time

import pytest
from textual import events
from textual.widgets import Input

from tests.test_ui_app import GATE, GATE_PIN, SIZE, app_for, login, ready_store  # noqa: F401
from tests.test_ui_gate import after, open_gate
from tests.test_ui_gate_trial_defects import banner, passages, scan, value
from tests.test_ui_pin_dialogs import settle

ID = "11010519491231002X"  # valid
ID_MASKED = "110105********002X"
ID_GROUPED = "440306199003071232"  # valid
ID_GROUPED_MASKED = "440306********1232"
ID_BAD_CHECK = "510107197701014564"  # wrong check digit (3 expected)
ID_BAD_MASKED = "510107********4564"
HEBEI_ID = "130102199001011237"  # starts like a mobile number (13…)
PHONE = "13900001111"

KEY_NAMES = {" ": "space", "-": "minus", ".": "full_stop"}


def person(app, text: str, gap: float = 0.08, start: float | None = None) -> float:
    """A person's keys, ``gap`` apart (spaces and dashes as the terminal names them)."""
    start = time.monotonic() if start is None else start
    for i, ch in enumerate(text):
        event = events.Key(KEY_NAMES.get(ch, ch), ch)
        event.time = start + i * gap
        app.post_message(event)
    return start + (len(text) - 1) * gap


async def types(pilot, text: str, gap: float = 0.08) -> None:
    await after(pilot, person(pilot.app, text, gap))


# -- 2: phone, then the reading -------------------------------------------------------------------


@pytest.mark.parametrize("gap", [0.08, 0.01])  # a person; a fast one (keys held back together)
async def test_a_mobile_number_then_the_reading_keeps_the_phone_and_the_id(
    settings, ready_store, gap
):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate(pilot)
        await types(pilot, ID)  # from 体温: goes to 证件
        assert value(gate, "#f-id") == ID
        await pilot.press("tab")  # 姓名
        await types(pilot, "Zhao")
        await pilot.press("tab")  # 电话
        assert app.focused is gate.query_one("#f-phone")
        await types(pilot, PHONE + "365", gap)
        assert value(gate, "#f-phone") == PHONE
        assert value(gate, "#f-id") == ID  # nothing moved into 证件
        assert value(gate, "#f-temp") == "365"
        assert app.focused is gate.query_one("#f-temp")
        await pilot.press("enter")
        await settle(pilot)
        (row,) = passages(ready_store)
        assert row["temperature"] == 36.5 and row["id_masked"] == ID_MASKED
        full = ready_store.passages.full(row["id"], purpose="test")
        assert full["phone"] == PHONE and full["id_number"] == ID


async def test_a_mobile_number_then_the_reading_with_no_id_yet(settings, ready_store):
    """证件 empty: the reading after the phone is still the reading, nothing goes to 证件."""
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate(pilot)
        gate.query_one("#f-phone", Input).focus()
        await settle(pilot)
        await types(pilot, PHONE + "36.5")
        assert value(gate, "#f-phone") == PHONE
        assert value(gate, "#f-id") == ""
        assert value(gate, "#f-temp") == "36.5"
        await scan(pilot, ID)
        await pilot.press("enter")
        await settle(pilot)
        (row,) = passages(ready_store)
        assert row["temperature"] == 36.5 and row["id_masked"] == ID_MASKED
        assert ready_store.passages.full(row["id"], purpose="test")["phone"] == PHONE


@pytest.mark.parametrize("number", [HEBEI_ID, ID])
async def test_an_id_typed_into_the_phone_field_still_goes_to_the_id_field(
    settings, ready_store, number
):
    """Also one that starts like a mobile number (Hebei, 13…): whole, the phone left empty."""
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate(pilot)
        gate.query_one("#f-phone", Input).focus()
        await settle(pilot)
        await types(pilot, number)
        assert value(gate, "#f-id") == number
        assert value(gate, "#f-phone") == ""
        assert value(gate, "#f-temp") == ""
        assert app.focused is gate.query_one("#f-id")


# -- 6: the reading after a refused ID ------------------------------------------------------------


@pytest.mark.parametrize("gap", [0.08, 0.01])
async def test_the_reading_after_a_refused_id_goes_to_the_temperature(settings, ready_store, gap):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate(pilot)
        await types(pilot, ID_BAD_CHECK)
        await pilot.press("enter")
        await settle(pilot)
        assert "Ctrl+Y" in banner(gate) and app.focused is gate.query_one("#f-id")
        await pilot.press("f7")
        await types(pilot, "365", gap)
        assert value(gate, "#f-id") == ID_BAD_CHECK  # not 510107…4564365
        assert value(gate, "#f-temp") == "365"
        await pilot.press("enter")
        await settle(pilot)
        shown = banner(gate)
        assert "Ctrl+Y" in shown and "18 位" not in shown, shown  # still the check digit
        assert passages(ready_store) == []
        await pilot.press("ctrl+y")  # item 15: records at once
        await settle(pilot)
        (row,) = passages(ready_store)
        assert row["temperature"] == 36.5 and row["id_masked"] == ID_BAD_MASKED
        assert row["id_check_ok"] == 0 and row["code_colour"] == "red"


# -- 7: an ID typed in groups ---------------------------------------------------------------------


@pytest.mark.parametrize("grouped", ["4403 0619 9003 0712 32", "440306-19900307-1232"])
async def test_an_id_typed_in_groups_goes_to_the_id_field(settings, ready_store, grouped):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate(pilot)
        assert app.focused is gate.query_one("#f-temp")
        await types(pilot, grouped)
        assert value(gate, "#f-temp") == ""
        await pilot.press("enter")
        await settle(pilot)
        shown = banner(gate)
        assert "体温不是数字" not in shown, shown
        assert value(gate, "#f-id") == ID_GROUPED_MASKED
        assert app.focused is gate.query_one("#f-temp")
        await types(pilot, "365")
        await pilot.press("enter")
        await settle(pilot)
        (row,) = passages(ready_store)
        assert row["id_masked"] == ID_GROUPED_MASKED and row["temperature"] == 36.5
        assert row["id_check_ok"] == 1


# -- 13: an implausible reading, echoed as typed --------------------------------------------------


@pytest.mark.parametrize(("typed", "echo"), [("3.65", "3.65"), ("455", "45.5"), ("3,2", "3.2")])
async def test_an_implausible_reading_is_echoed_as_typed(settings, ready_store, typed, echo):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate(pilot)
        await scan(pilot, ID)
        await types(pilot, typed)
        await pilot.press("enter")
        await settle(pilot)
        shown = banner(gate)
        assert f"体温 {echo} °C 不合理" in shown, shown
        assert passages(ready_store) == []


# -- 15: Ctrl+Y records when the reading is in ----------------------------------------------------


async def test_ctrl_y_with_the_reading_typed_records_at_once(settings, ready_store):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate(pilot)
        await scan(pilot, "320102198506153013")  # wrong check digit
        await pilot.press("f5")
        await types(pilot, "366")
        await pilot.press("enter")
        await settle(pilot)
        assert "Ctrl+Y" in banner(gate) and passages(ready_store) == []
        await pilot.press("ctrl+y")
        await settle(pilot)
        (row,) = passages(ready_store)
        assert row["temperature"] == 36.6 and row["id_check_ok"] == 0
        assert value(gate, "#f-id") == ""  # ready for the next person


async def test_ctrl_y_without_the_reading_says_what_to_press_next(settings, ready_store):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate(pilot)
        await types(pilot, ID_BAD_CHECK)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("ctrl+y")
        await settle(pilot)
        shown = banner(gate)
        assert "已确认证件校验位" in shown and "回车登记" in shown, shown
        assert app.focused is gate.query_one("#f-temp")
        assert passages(ready_store) == []
        await types(pilot, "365")
        await pilot.press("enter")
        await settle(pilot)
        (row,) = passages(ready_store)
        assert row["id_masked"] == ID_BAD_MASKED and row["temperature"] == 36.5


# -- 13: a reading of 40 °C or more is measured again before it is recorded ------------------------


async def test_a_reading_of_40_or_more_asks_to_measure_again_once(settings, ready_store):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate(pilot)
        await scan(pilot, ID)
        await types(pilot, "42")  # 4.2 typed without the dot? a typo either way
        await pilot.press("enter")
        await settle(pilot)
        shown = banner(gate)
        assert "请复测" in shown and "42" in shown, shown
        assert passages(ready_store) == []
        assert value(gate, "#f-temp") == "" and app.focused is gate.query_one("#f-temp")
        await pilot.press("enter")  # no new reading: still not recorded
        await settle(pilot)
        assert passages(ready_store) == []
        await types(pilot, "365")  # the real reading
        await pilot.press("enter")
        await settle(pilot)
        (row,) = passages(ready_store)
        assert row["temperature"] == 36.5 and row["decision"] == "admit"


async def test_a_reading_of_40_or_more_measured_again_the_same_is_recorded(settings, ready_store):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate(pilot)
        await scan(pilot, ID)
        await types(pilot, "401")
        await pilot.press("enter")
        await settle(pilot)
        assert "请复测" in banner(gate) and passages(ready_store) == []
        await types(pilot, "40.1")  # the same reading, measured again
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("f10")  # the fever alert
        await settle(pilot)
        (row,) = passages(ready_store)
        assert row["temperature"] == 40.1 and row["decision"] == "refer"
