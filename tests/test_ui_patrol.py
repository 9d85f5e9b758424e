"""Patrol screen behaviour, driven by Pilot against a real store: the patrol worker lands on
it after login, picks building and unit, records visits with one key or the visit form
(temperatures, symptoms → referral alert), filters households not reached, and scans IDs to
find or add people. 80×24 throughout."""

# ruff: noqa: F811  (the ready_store fixture is imported from test_ui_app)
from __future__ import annotations

import pytest
from textual.widgets import DataTable, Input, OptionList, Static

from fieldkit.ui.app import make_app
from fieldkit.ui.patrol import (
    HouseholdCard,
    MemberDialog,
    PatrolScreen,
    VisitDialog,
    parse_symptoms,
)
from fieldkit.ui.registry import screen_entries
from fieldkit.ui.widgets.dialogs import AlertScreen
from tests.conftest import SUPERVISOR
from tests.ledger_support import make_id
from tests.test_ui_app import PATROL, PATROL_PIN, SIZE, login, ready_store, settle, wedge  # noqa: F401

A, B, C = make_id(51), make_id(52), make_id(53)
MY_MODULES = ("fieldkit.ui.patrol", "fieldkit.ui.monitoring")


def seed(store) -> dict[str, str]:
    """Building 3栋: unit 1 with rooms 101 (张三, 李四), 102, 1001; unit 2 with 201."""
    store.unlock(SUPERVISOR, "2468")
    ledger = store.ledger
    ids = {}
    for unit, room in (("1单元", "101"), ("1单元", "102"), ("1单元", "1001"), ("2单元", "201")):
        ids[room], _ = ledger.save_household(
            {"grid": "网格1", "building": "3栋", "unit": unit, "room": room, "worker": PATROL}
        )
    ledger.save_member(
        ids["101"], {"name": "张三", "id_number": A, "categories": ["elderly_alone"]}
    )
    ledger.save_member(ids["101"], {"name": "李四", "id_number": B})
    store.lock("test")
    return ids


def patrol_app(settings, store, lang="zh"):
    settings.ui.language = lang
    return make_app(settings, store, entries=screen_entries(MY_MODULES))


async def start(pilot) -> PatrolScreen:
    await pilot.pause()
    await login(pilot, PATROL, PATROL_PIN)
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, PatrolScreen)
    return screen


def table_rows(screen) -> list[list[str]]:
    table = screen.query_one("#households", DataTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def test_symptom_digits():
    assert parse_symptoms("15") == ["fever", "cough"]
    assert parse_symptoms(" 1 1 6") == ["fever", "chest_tightness"]
    with pytest.raises(Exception, match="未知的症状「7」"):  # in the run's language
        parse_symptoms("7")


async def test_patrol_worker_lands_on_the_building_list(settings, ready_store):
    seed(ready_store)
    app = patrol_app(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await start(pilot)
        options = screen.query_one("#places", OptionList)
        assert [
            str(options.get_option_at_index(i).prompt) for i in range(options.option_count)
        ] == ["3栋 1单元  0/3", "3栋 2单元  0/1"]
        rows = table_rows(screen)
        assert [r[0] for r in rows] == ["101", "102", "1001"]
        assert rows[0][1] == "2" and "独居老人" in rows[0][3] and rows[0][2] == "未走访"
        assert "本单元 0/3" in str(screen.query_one("#patrol-coverage", Static).render())
        # The second unit: arrow down + Enter in the place list.
        options.focus()
        await pilot.press("down", "enter")
        await settle(pilot)
        assert [r[0] for r in table_rows(screen)] == ["201"]
        assert screen.list_ms is not None


async def test_one_key_outcomes_and_not_reached_filter(settings, ready_store):
    seed(ready_store)
    app = patrol_app(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await start(pilot)
        screen.query_one("#households", DataTable).focus()
        await pilot.press("down", "f6")  # 102: nobody home
        await settle(pilot)
        await pilot.press("f6")  # and again
        await settle(pilot)
        rows = {r[0]: r for r in table_rows(screen)}
        assert rows["102"][2] == "无人在家" and "两次无人" in rows["102"][3]
        await pilot.press("down", "f7")  # 1001: refused
        await settle(pilot)
        assert {r[0]: r for r in table_rows(screen)}["1001"][2] == "拒绝"
        visits = ready_store.g.query("SELECT outcome, operator FROM visits ORDER BY ts")
        assert [v["outcome"] for v in visits] == ["nobody_home", "nobody_home", "refused"]
        assert {v["operator"] for v in visits} == {PATROL}
        await pilot.press("f8")
        await settle(pilot)
        assert [r[0] for r in table_rows(screen)] == ["101", "102", "1001"]  # none reached
        assert "只看未走访：3 户" in str(screen.query_one("#patrol-coverage", Static).render())


async def test_visit_form_with_fever_raises_a_referral(settings, ready_store):
    seed(ready_store)
    app = patrol_app(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await start(pilot)
        screen.query_one("#households", DataTable).focus()
        await pilot.press("f5")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, VisitDialog)
        assert dialog.query_one("#temp-0", Input).has_focus
        await pilot.press(*"382", "enter", "1", "enter", *"365", "enter", "enter")
        await pilot.press(*"米面油", "enter")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, AlertScreen)
        assert "转诊" in str(app.screen.query_one("#alert-title").render())
        await pilot.press("f10")
        await settle(pilot)
        assert isinstance(app.screen, PatrolScreen)
        visit = ready_store.g.query("SELECT * FROM visits")[0]
        assert visit["outcome"] == "seen" and visit["follow_up"] == 1 and visit["supply_need"] == 1
        # Temperatures and symptoms are sealed on disk (members_enc): read through the ledger.
        members = ready_store.ledger.visit_body(visit)["members"]
        assert [(m["temperature"], m["symptoms"]) for m in members] == [
            (38.2, ["fever"]),
            (36.5, []),
        ]
        row = table_rows(screen)[0]
        assert row[2].startswith("已入户") and row[2].endswith("*") and "物资" in row[3]
        assert "本单元 1/3" in str(screen.query_one("#patrol-coverage", Static).render())


async def test_visit_outcome_keys_in_the_form(settings, ready_store):
    seed(ready_store)
    app = patrol_app(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await start(pilot)
        screen.query_one("#households", DataTable).focus()
        await pilot.press("f5")
        await settle(pilot)
        app.screen.query_one("#visit-notes", Input).focus()
        await pilot.press("3")  # typed in a text field: it is text, not the outcome
        assert app.screen.outcome == "seen"
        app.screen.query_one("#visit-notes", Input).value = ""
        app.screen.set_focus(None)
        await pilot.press("3")
        assert app.screen.outcome == "refused"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert ready_store.g.scalar("SELECT outcome FROM visits") == "refused"


async def test_bad_temperature_keeps_the_form_open(settings, ready_store):
    seed(ready_store)
    app = patrol_app(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await start(pilot)
        screen.query_one("#households", DataTable).focus()
        await pilot.press("f5")
        await settle(pilot)
        await pilot.press(*"455", "ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, VisitDialog)  # still open, the reading to re-measure
        assert "重新测量" in str(app.screen.query_one("#visit-message", Static).render())
        assert app.screen.query_one("#temp-0", Input).has_focus
        await pilot.press("backspace", "backspace", "backspace", *"366", "ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, PatrolScreen)
        assert ready_store.g.scalar("SELECT members FROM visits") is not None


async def test_scan_finds_the_household_or_adds_the_person(settings, ready_store):
    ids = seed(ready_store)
    app = patrol_app(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await start(pilot)
        screen.query_one("#households", DataTable).focus()
        wedge(app, B)
        await settle(pilot)
        assert isinstance(app.screen, HouseholdCard)
        assert app.screen.household.id == ids["101"]
        card = app.screen.query_one("#card-members", DataTable)
        assert card.row_count == 2 and B not in repr([card.get_row_at(i) for i in range(2)])
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("down")  # 102
        wedge(app, C)
        await settle(pilot)
        assert isinstance(app.screen, MemberDialog)
        assert app.screen.query_one("#m-name", Input).has_focus
        await pilot.press(*"王五", "enter", "enter", *"租户", "enter")
        await settle(pilot)
        assert isinstance(app.screen, PatrolScreen)
        member = ready_store.ledger.find_member(C)
        assert member.household_id == ids["102"] and member.relation == "租户"
        assert {r[0]: r for r in table_rows(screen)}["102"][1] == "1"


async def test_card_opens_with_enter_and_offers_a_visit(settings, ready_store):
    seed(ready_store)
    app = patrol_app(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await start(pilot)
        screen.query_one("#households", DataTable).focus()
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, HouseholdCard)
        assert "包户 赵六" in str(app.screen.query_one(".dialog-title").render())
        await pilot.press("f5")
        await settle(pilot)
        assert isinstance(app.screen, VisitDialog)
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, PatrolScreen)
        assert ready_store.g.scalar("SELECT count(*) FROM visits") == 0


async def test_english_and_empty_ledger(settings, ready_store):
    app = patrol_app(settings, ready_store, "en")
    async with app.run_test(size=SIZE) as pilot:
        screen = await start(pilot)
        assert "import" in str(screen.query_one("#patrol-coverage", Static).render())
        await pilot.press("f5", "f6", "f8")  # nothing highlighted: nothing happens
        await settle(pilot)
        assert isinstance(app.screen, PatrolScreen)
