"""Gate defects found by the new-user trial (report-trial.md items 1, 2, 3, 8, 13, 20), driven
by Pilot against a real store, and the shared ID rule through the real ``fieldkit`` CLI.

1. a reading retyped after an implausible one replaces it (the scanned ID stays);
2. a reading typed before a hand-typed ID stays the reading; an ID of impossible length is
   refused, in the app and in ``fieldkit record``;
3. a scan during a Ctrl+R correction leaves the correction and starts an empty form;
13. a code that is no ID, pass or health code is said to be one, the temperature untouched;
20. after Ctrl+Y the first Enter records;
8. Ctrl+R: typing replaces the old reading, the correction keeps the passage's time, the
   label names the record; a corrected exit is matched to the entry before it.
"""

# ruff: noqa: F811  (the ready_store fixture is imported from test_ui_app)
from __future__ import annotations

import time

from textual.widgets import Input

from fieldkit.gate import GateEntry, GateService
from fieldkit.ui.gate import GateScreen
from scanners.idnumber import mask_id
from tests.conftest import SUPERVISOR_PIN
from tests.test_ui_app import (  # noqa: F401
    GATE,
    GATE_PIN,
    SIZE,
    app_for,
    login,
    ready_store,
    settle,
    typed,
    wedge,
)
from tests.test_ui_gate import after

ID = "11010519491231002X"  # valid
ID_MASKED = "110105********002X"
ID3 = "110101199003070038"  # valid, the next person
ID3_MASKED = "110101********0038"
ID_BAD_CHECK = "110105194912310029"  # wrong check digit (X expected)


def passages(store) -> list[dict]:
    return sorted(store.passages.rows(), key=lambda r: r["ts"])


async def open_gate(pilot) -> GateScreen:
    await pilot.pause()
    await login(pilot, GATE, GATE_PIN)
    assert isinstance(pilot.app.screen, GateScreen)
    return pilot.app.screen


async def scan(pilot, text: str) -> None:
    wedge(pilot.app, text)
    await after(pilot, time.monotonic() + 0.2)


def banner(gate) -> str:
    return str(gate.query_one("#banner").render())


def value(gate, wid: str) -> str:
    return gate.query_one(wid, Input).value


# -- 1: a reading retyped after an implausible one ----------------------------------------------


async def test_a_reading_retyped_after_an_implausible_one_replaces_it(settings, ready_store):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate(pilot)
        await scan(pilot, ID)
        await pilot.press("3", "6", "5", "5", "enter")  # a gloved double tap
        await settle(pilot)
        assert "不合理" in banner(gate) and passages(ready_store) == []
        await pilot.press("3", "6", "5")
        await settle(pilot)
        assert value(gate, "#f-temp") == "365"  # not "3655365", not moved to the ID field
        assert value(gate, "#f-id") == ID_MASKED  # the scanned ID stays
        await pilot.press("enter")
        await settle(pilot)
        (row,) = passages(ready_store)
        assert row["temperature"] == 36.5 and row["id_masked"] == ID_MASKED


# -- 2: a reading typed before a hand-typed ID; IDs of impossible length ---------------------


async def test_a_reading_typed_before_a_hand_typed_id_stays_the_reading(settings, ready_store):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate(pilot)
        last = typed(app, "365", gap=0.1)
        last = typed(app, ID3, gap=0.1, start=last + 0.1)  # a person, 100 ms a key
        await after(pilot, last)
        assert value(gate, "#f-temp") == "365"  # shown back as soon as the ID is complete
        assert value(gate, "#f-id") == ID3
        await pilot.press("enter")
        await settle(pilot)
        (row,) = passages(ready_store)
        assert row["temperature"] == 36.5
        assert row["id_masked"] == ID3_MASKED  # not 365110***********0038
        assert row["decision"] == "admit"


async def test_an_id_of_impossible_length_is_refused_in_one_sentence(settings, ready_store):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate(pilot)
        for number in ("365" + ID3, "3655365"):
            gate.query_one("#f-id", Input).value = number
            gate.query_one("#f-temp", Input).value = "365"
            gate.query_one("#f-id", Input).focus()
            await pilot.pause()
            await pilot.press("enter")
            await settle(pilot)
            shown = banner(gate)
            assert "18 位" in shown, shown
            assert number not in shown  # masked
            assert passages(ready_store) == []
            assert app.focused is gate.query_one("#f-id")


def test_the_cli_refuses_an_id_of_impossible_length(cli):
    cli.init()
    for number in ("365" + ID3, "3655365"):
        proc = cli.run(
            "record",
            "--direction",
            "in",
            "--id-number",
            number,
            "--temperature",
            "36.5",
            pin=SUPERVISOR_PIN,
            env={"FIELDKIT_LANG": ""},  # Chinese, the default
            check=False,
        )
        assert proc.returncode != 0
        said = (proc.stdout + proc.stderr).strip()
        assert "18 位" in said and "Traceback" not in said, said
        assert number not in said
        assert len(said.splitlines()) == 1, said
    assert cli.json("status")["passages"] == 0


# -- 3: a scan during a correction ----------------------------------------------------------------


async def test_a_scan_during_a_correction_starts_the_next_person_afresh(settings, ready_store):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate(pilot)
        await scan(pilot, ID)
        await pilot.press("3", "6", "5", "enter")
        await settle(pilot)
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert value(gate, "#f-temp") == "36.5"
        await scan(pilot, ID3)  # the next person, while the correction is open
        assert value(gate, "#f-id") == ID3_MASKED
        assert value(gate, "#f-temp") == ""  # not the last person's 36.5
        assert "放弃更正" in banner(gate)
        assert gate.correcting is None
        await pilot.press("enter")  # the worker thinks it confirms the correction
        await settle(pilot)
        assert len(passages(ready_store)) == 1  # nothing recorded without a reading
        await pilot.press("3", "6", "6", "enter")
        await settle(pilot)
    first, second = passages(ready_store)
    assert first["superseded"] == 0 and first["temperature"] == 36.5
    assert second["id_masked"] == ID3_MASKED and second["temperature"] == 36.6
    assert second["supersedes"] is None


# -- 13: a code the app does not know --------------------------------------------------------------


async def test_an_unknown_code_is_said_to_be_one_and_leaves_the_reading(settings, ready_store):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate(pilot)
        await scan(pilot, ID)
        for code in ("https://weixin.qq.com/x/abc123", "E12345678"):
            await scan(pilot, code)
            shown = banner(gate)
            assert "不是身份证、通行证或健康码" in shown, shown
            assert "体温不是数字" not in shown
            assert value(gate, "#f-temp") == ""
            assert value(gate, "#f-id") == ID_MASKED  # the person's ID stays
        await pilot.press("3", "6", "5")
        await settle(pilot)
        await scan(pilot, "E12345678")
        assert value(gate, "#f-temp") == "365"
        assert passages(ready_store) == []
        await pilot.press("enter")
        await settle(pilot)
        (row,) = passages(ready_store)
        assert row["id_masked"] == ID_MASKED and row["temperature"] == 36.5


# -- 20: Ctrl+Y then Enter -------------------------------------------------------------------------


async def test_the_first_enter_after_ctrl_y_records(settings, ready_store):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate(pilot)
        await scan(pilot, ID_BAD_CHECK)
        await pilot.press("f7", "3", "6", "6", "enter")
        await settle(pilot)
        assert "Ctrl+Y" in banner(gate) and passages(ready_store) == []
        await pilot.press("ctrl+y")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        (row,) = passages(ready_store)
        assert row["temperature"] == 36.6 and row["id_check_ok"] == 0


# -- 8: Ctrl+R ------------------------------------------------------------------------------------


async def test_a_correction_replaces_the_reading_keeps_the_time_and_names_the_record(
    settings, ready_store
):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate(pilot)
        await scan(pilot, ID)
        await pilot.press("3", "6", "2", "enter")
        await settle(pilot)
        await pilot.press("ctrl+r")
        await settle(pilot)
        shown = banner(gate)
        assert ID_MASKED in shown and "进" in shown, shown
        await pilot.press("3", "6", "8")
        await settle(pilot)
        assert value(gate, "#f-temp") == "368"  # not "36836.2"
        await pilot.press("enter")
        await settle(pilot)
        assert "已更正" in banner(gate)
    old, new = sorted(ready_store.passages.rows(), key=lambda r: r["superseded"])[::-1]
    assert old["superseded"] == 1 and new["supersedes"] == old["id"]
    assert new["temperature"] == 36.8
    assert new["ts"] == old["ts"]  # the passage's time, not the correction's


def test_a_corrected_exit_keeps_its_entry_not_a_later_one(ready_store):
    ready_store.unlock(GATE, GATE_PIN)
    service = GateService(ready_store)
    person = GateEntry(direction="in", id_number=ID, temperature=36.5)
    _, entry = service.commit(person)
    _, exit_ = service.commit(GateEntry(direction="out", id_number=ID, temperature=36.2))
    assert exit_.entry_id == entry.id
    _, later = service.commit(person)  # back in (a vehicle, say)
    _, fixed = service.correct(exit_.id, GateEntry(direction="out", id_number=ID, temperature=36.8))
    assert fixed.ts == exit_.ts
    assert fixed.entry_id == entry.id  # not the later entry
    assert ready_store.passages.open_entry_for(ready_store.index(ID)) == later.id
    assert mask_id(ID) == fixed.id_masked
