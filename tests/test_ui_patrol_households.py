"""Adding and editing households on the patrol screen (trial_town item 13), driven by Pilot
against a real store at 80×24: F4 新增住户 works on an empty ledger, saves through the ledger's
own save path (a versioned ledger edit that syncs) and opens the new household's card, where a
member can be added; an address already in the ledger opens that household instead of making a
second one; F4 in the card edits 包户, the counts and the landlord (shown masked); bad input is
one sentence in the dialog, which stays open with what was typed."""

# ruff: noqa: F811  (the ready_store fixture is imported from test_ui_app)
from __future__ import annotations

from textual.widgets import DataTable, Input, Static

from fieldkit.ui.household_form import HouseholdForm
from fieldkit.ui.patrol import HouseholdCard, MemberDialog, PatrolScreen
from tests.conftest import SUPERVISOR
from tests.ledger_support import make_id
from tests.test_ui_app import SIZE, ready_store, settle  # noqa: F401
from tests.test_ui_patrol import patrol_app, seed, start, table_rows

NEW_ID = make_id(61)


def text(screen, wid: str) -> str:
    return str(screen.query_one(wid, Static).render())


def screen_text(app) -> str:
    """The terminal as drawn (the footer included)."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def type_into(pilot, form, wid: str, value: str) -> None:
    """A field filled in (set, not typed key by key: a fast burst of keys on a loaded machine
    can read as a wedge scanner's)."""
    field = form.query_one(wid, Input)
    field.focus()
    field.value = value
    await pilot.pause()


def stored(store, hid: str) -> dict:
    store.unlock(SUPERVISOR, "2468")
    try:
        return store.ledger.household_fields(
            store.g.query("SELECT * FROM households WHERE id = ?", [hid])[0]
        )
    finally:
        store.lock("test")


async def test_a_household_on_an_empty_ledger_then_a_member(settings, ready_store):
    app = patrol_app(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await start(pilot)
        coverage = text(screen, "#patrol-coverage")
        assert "F4" in coverage and "新增住户" in coverage, coverage
        await pilot.press("f4")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, HouseholdForm)
        assert form.query_one("#hf-building", Input).has_focus
        await pilot.press(*"5栋", "enter", *"2单元", "enter", *"302", "enter")
        await pilot.press(*"赵六", "enter", "3", "enter", "2", "ctrl+s")
        await settle(pilot)
        card = app.screen
        assert isinstance(card, HouseholdCard), card
        assert "5栋-2单元-302" in str(card.query_one(".dialog-title").render())
        assert "户籍 3 · 常住 2" in text(card, "#card-flags")
        hid = card.household.id
        edits = ready_store.g.query(
            "SELECT entity, entity_id, version FROM ledger_edits WHERE entity = 'household'"
        )
        assert [(e["entity_id"], e["version"]) for e in edits] == [(hid, 1)]
        # the next step on the card: the family's first member
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert isinstance(app.screen, MemberDialog)
        await pilot.press(*NEW_ID, "enter", *"钱七", "enter", "enter", "enter")
        await settle(pilot)
        assert isinstance(app.screen, PatrolScreen)
        assert table_rows(app.screen) == [["302", "1", "未走访", ""]]
        assert app.screen.place == ("5栋", "2单元")


async def test_adding_at_an_address_in_the_ledger_opens_that_household(settings, ready_store):
    ids = seed(ready_store)
    app = patrol_app(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await start(pilot)
        screen.query_one("#households", DataTable).focus()
        await pilot.press("f4")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, HouseholdForm)
        # the highlighted household's building and unit are filled in
        assert form.query_one("#hf-building", Input).value == "3栋"
        assert form.query_one("#hf-unit", Input).value == "1单元"
        assert form.query_one("#hf-room", Input).has_focus
        await pilot.press(*"101", "ctrl+s")
        await settle(pilot)
        card = app.screen
        assert isinstance(card, HouseholdCard), card
        assert card.household.id == ids["101"]
        assert any("已有住户" in n.message for n in app._notifications), [
            n.message for n in app._notifications
        ]
        assert ready_store.g.scalar("SELECT count(*) FROM households") == 4


async def test_edit_the_counts_and_the_landlord_from_the_card(settings, ready_store):
    ids = seed(ready_store)
    app = patrol_app(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await start(pilot)
        screen.query_one("#households", DataTable).focus()
        await pilot.press("down", "enter")  # 102's card
        await settle(pilot)
        assert isinstance(app.screen, HouseholdCard)
        assert "编辑住户" in screen_text(app).splitlines()[-1]  # the footer at 80 columns
        await pilot.press("f4")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, HouseholdForm)
        assert form.query_one("#hf-room", Input).value == "102"
        await type_into(pilot, form, "#hf-registered", "4")
        await type_into(pilot, form, "#hf-resident", "3")
        await type_into(pilot, form, "#hf-tested", "3")
        await type_into(pilot, form, "#hf-rental", "是")
        await type_into(pilot, form, "#hf-landlord-name", "孙大海")
        await type_into(pilot, form, "#hf-landlord-phone", "13912345678")
        await pilot.press("ctrl+s")
        await settle(pilot)
        card = app.screen
        assert isinstance(card, HouseholdCard), card
        flags = text(card, "#card-flags")
        assert "户籍 4 · 常住 3 · 已检测 3" in flags and "出租" in flags, flags
        assert "孙**" in flags and "139****5678" in flags, flags
        assert "孙大海" not in screen_text(app) and "13912345678" not in screen_text(app)
        # opened again: the landlord masked, typing nothing keeps it
        await pilot.press("f4")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, HouseholdForm)
        assert form.query_one("#hf-landlord-name", Input).value == ""
        assert "孙**" in form.query_one("#hf-landlord-name", Input).placeholder
        await type_into(pilot, form, "#hf-worker", "王五")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, HouseholdCard)
    fields = stored(ready_store, ids["102"])
    assert fields["registered_count"] == 4 and fields["resident_count"] == 3
    assert fields["is_rental"] is True and fields["worker"] == "王五"
    assert fields["landlord_name"] == "孙大海" and fields["landlord_phone"] == "13912345678"
    versions = ready_store.g.query(
        "SELECT version FROM ledger_edits WHERE entity = 'household' AND entity_id = ? "
        "ORDER BY version",
        [ids["102"]],
    )
    assert [v["version"] for v in versions] == [1, 2, 3]


async def test_bad_input_is_one_sentence_and_the_dialog_keeps_it(settings, ready_store):
    app = patrol_app(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("f4")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, HouseholdForm)
        await type_into(pilot, form, "#hf-unit", "1单元")
        await pilot.press("ctrl+s")  # no building, no room
        await settle(pilot)
        assert app.screen is form
        assert "楼栋" in text(form, "#hf-message") and "房号" in text(form, "#hf-message")
        await type_into(pilot, form, "#hf-building", "7栋")
        await type_into(pilot, form, "#hf-room", "101")
        await type_into(pilot, form, "#hf-registered", "三口")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is form
        assert "户籍人口数“三口”不是人数" in text(form, "#hf-message")
        assert form.query_one("#hf-registered", Input).has_focus
        await type_into(pilot, form, "#hf-registered", "3")
        await type_into(pilot, form, "#hf-landlord-phone", "1330000")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is form
        message = text(form, "#hf-message")
        assert "房东电话" in message and "11 位" in message, message
        assert form.query_one("#hf-landlord-phone", Input).has_focus
        # everything typed is still there
        assert [form.query_one(f"#hf-{w}", Input).value for w in ("building", "unit", "room")] == [
            "7栋",
            "1单元",
            "101",
        ]
        assert ready_store.g.scalar("SELECT count(*) FROM households") == 0
        await type_into(pilot, form, "#hf-landlord-phone", "13312345678")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, HouseholdCard)
        assert ready_store.g.scalar("SELECT count(*) FROM households") == 1
