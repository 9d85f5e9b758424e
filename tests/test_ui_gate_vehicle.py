"""Vehicle lane with Pilot on a real store: occupants, outside vehicles, supply whitelist."""

# ruff: noqa: F811  (the ready_store fixture is imported from test_ui_app)
from __future__ import annotations

import json

from textual.widgets import DataTable, Input

from fieldkit.ui.gate import GateScreen
from fieldkit.ui.vehicle import VehicleScreen
from fieldkit.ui.widgets.dialogs import AlertScreen
from tests.test_ui_app import GATE, GATE_PIN, SIZE, app_for, login, ready_store, settle, wedge  # noqa: F401

ID = "11010519491231002X"
ID_B = "110105198001010016"


async def open_vehicle(pilot) -> VehicleScreen:
    await pilot.pause()
    await login(pilot, GATE, GATE_PIN)
    assert isinstance(pilot.app.screen, GateScreen)
    await pilot.press("f3")
    await pilot.pause()
    assert isinstance(pilot.app.screen, VehicleScreen)
    return pilot.app.screen


async def add_person(pilot, screen, id_number: str, temp: str, scanned: bool) -> None:
    if scanned:
        wedge(pilot.app, id_number)
        await settle(pilot)
        assert screen.query_one("#o-id", Input).value.startswith(id_number[:6] + "****")
    else:
        screen.query_one("#o-id", Input).value = id_number
        screen.query_one("#o-temp", Input).focus()
    await pilot.press(*temp, "f5", "enter")
    await pilot.pause()


async def test_resident_vehicle_with_every_occupant_is_admitted(settings, ready_store):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_vehicle(pilot)
        await pilot.press("ctrl+s")
        assert "车牌" in str(screen.query_one("#banner").render())
        screen.query_one("#v-plate", Input).value = "京A12345"
        screen.query_one("#o-temp", Input).focus()
        await pilot.press("ctrl+s")
        assert "乘员" in str(screen.query_one("#banner").render())  # every occupant registered
        await add_person(pilot, screen, ID, "365", scanned=True)
        await add_person(pilot, screen, ID_B, "366", scanned=False)
        assert screen.query_one("#occupants", DataTable).row_count == 2
        await pilot.press("f8", "ctrl+s")
        await settle(pilot)
        assert "放 行" in str(screen.query_one("#banner").render())
        assert screen.query_one("#occupants", DataTable).row_count == 0
    vehicle = ready_store.vehicles.rows()[0]
    assert vehicle["plate"] == "京A12345" and vehicle["occupants"] == 2
    assert vehicle["disinfected"] == 1 and vehicle["decision"] == "admit"
    people = sorted(ready_store.passages.rows(), key=lambda r: r["ts"])
    assert [p["vehicle_id"] for p in people] == [vehicle["id"]] * 2
    assert [p["temperature"] for p in people] == [36.5, 36.6]


async def test_outside_vehicle_is_barred_in_medium_mode_and_the_alert_is_acknowledged(
    settings, ready_store
):
    settings.checkpoint.area_mode = "medium"
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_vehicle(pilot)
        screen.query_one("#v-plate", Input).value = "沪B99999"
        await pilot.press("f9")
        assert screen.kind == "outside"
        await add_person(pilot, screen, ID, "365", scanned=False)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, AlertScreen)
        await pilot.press("f10")
        await settle(pilot)
    vehicle = ready_store.vehicles.rows()[0]
    assert vehicle["decision"] == "deny" and "outside_vehicle_barred" in vehicle["reasons"]
    person = ready_store.passages.rows()[0]
    assert person["decision"] == "deny"
    assert "outside_vehicle_barred" in json.loads(person["alerts_ack"])["alerts"]


async def test_whitelisted_supply_vehicle_passes_in_sealed_mode(settings, ready_store):
    settings.checkpoint.area_mode = "sealed"
    settings.rules.supply_whitelist = ["京C00001"]
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_vehicle(pilot)
        screen.query_one("#v-plate", Input).value = "京C 00001"
        await pilot.press("f9", "f9")
        assert screen.kind == "supply"
        await add_person(pilot, screen, ID, "365", scanned=False)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, VehicleScreen)
    vehicle = ready_store.vehicles.rows()[0]
    assert "supply_whitelisted" in vehicle["reasons"]


# -- issue 13 item 7 ---------------------------------------------------------------------------


async def test_direction_disinfection_and_kind_show_their_values_from_the_start(
    settings, ready_store
):
    from textual.widgets import Static

    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_vehicle(pilot)
        shown = {w: str(screen.query_one(f"#{w}", Static).render()) for w in ("v-dir", "v-kind")}
        shown["v-disinfected"] = str(screen.query_one("#v-disinfected", Static).render())
        assert shown == {"v-dir": "进", "v-kind": "本区车辆", "v-disinfected": "未消毒"}, shown


async def test_companions_of_a_feverish_occupant_are_held_by_rule_and_said_in_words(
    settings, ready_store
):
    from fieldkit.reports.document import _reasons_text

    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_vehicle(pilot)
        screen.query_one("#v-plate", Input).value = "京A12345"
        await add_person(pilot, screen, ID, "390", scanned=True)
        await add_person(pilot, screen, ID_B, "365", scanned=False)
        await pilot.press("f8", "ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, AlertScreen)
        alert = " ".join(str(w.render()) for w in app.screen.query(".alert-line"))
        assert "转诊" in alert and "refer" not in alert and "deny" not in alert
        await pilot.press("f10")
        await settle(pilot)
    people = sorted(ready_store.passages.rows(), key=lambda r: r["ts"])
    assert [p["decision"] for p in people] == ["refer", "deny"]  # the companion is held
    companion = json.loads(people[1]["reasons"])
    assert any(r["code"] == "fever_companion_held" for r in companion)
    vehicle = ready_store.vehicles.rows()[0]
    exported = _reasons_text(vehicle["reasons"], "zh")
    assert "转诊" in exported and "refer" not in exported


async def test_with_the_rule_set_to_each_companions_are_judged_on_their_own(settings, ready_store):
    settings.rules.fever_companions = "each"
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_vehicle(pilot)
        screen.query_one("#v-plate", Input).value = "京A12345"
        await add_person(pilot, screen, ID, "390", scanned=True)
        await add_person(pilot, screen, ID_B, "365", scanned=False)
        await pilot.press("f8", "ctrl+s")
        await settle(pilot)
        await pilot.press("f10")
        await settle(pilot)
    people = sorted(ready_store.passages.rows(), key=lambda r: r["ts"])
    assert [p["decision"] for p in people] == ["refer", "admit"]
