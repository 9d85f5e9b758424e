"""Editing and removing household members from the patrol screen's household card, driven by
Pilot against a real store: status with start date (planned end from [rules]) reaching the
gate's isolation index and the monitoring due list, categories and source, bad input keeping
the form open in the UI language, removal with a reason, 解除 routed to the supervisor's
release, and the grid on the coverage line."""

# ruff: noqa: F811  (the ready_store fixture is imported from test_ui_app)
from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from textual.widgets import DataTable, Input, Static

from fieldkit.gate import GateEntry, GateService
from fieldkit.ui.member_form import MemberForm, RemoveMemberDialog
from fieldkit.ui.monitoring import MonitoringScreen, ReleaseDialog
from fieldkit.ui.patrol import HouseholdCard, PatrolScreen
from tests.conftest import SUPERVISOR, SUPERVISOR_PIN
from tests.ledger_support import make_id, wrong_check
from tests.test_ui_app import PATROL, SIZE, ready_store, settle  # noqa: F401
from tests.test_ui_monitoring import NOW, TZ
from tests.test_ui_patrol import A, B, patrol_app, seed, start, table_rows


@pytest.fixture
def frozen(monkeypatch):
    """3 April 2022, 10:00 (after the morning window opened)."""
    from fieldkit.ledger import households, monitoring

    NOW["value"] = datetime(2022, 4, 3, 10, 0, tzinfo=TZ)
    monkeypatch.setattr(monitoring, "now_local", lambda: NOW["value"])
    monkeypatch.setattr(households, "now_local", lambda: NOW["value"])
    return NOW["value"]


async def open_card(pilot, row: int = 0) -> HouseholdCard:
    screen = await start(pilot)
    table = screen.query_one("#households", DataTable)
    table.focus()
    table.move_cursor(row=row)
    await pilot.press("enter")
    await settle(pilot)
    card = pilot.app.screen
    assert isinstance(card, HouseholdCard)
    return card


async def open_form(pilot, member_row: int) -> MemberForm:
    card = await open_card(pilot)
    assert card.query_one("#card-members", DataTable).has_focus
    for _ in range(member_row):
        await pilot.press("down")
    await pilot.press("enter")
    await settle(pilot)
    form = pilot.app.screen
    assert isinstance(form, MemberForm)
    assert form.query_one("#mf-status").has_focus
    return form


def text(screen, wid: str) -> str:
    return str(screen.query_one(wid, Static).render())


def card_rows(app) -> list[list[str]]:
    table = app.screen.query_one("#card-members", DataTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def test_home_isolation_on_screen_makes_the_gate_alert(settings, ready_store):
    ids = seed(ready_store)
    app = patrol_app(settings, ready_store)
    edits_before = ready_store.g.scalar("SELECT count(*) FROM ledger_edits")
    async with app.run_test(size=SIZE) as pilot:
        form = await open_form(pilot, 0)  # 张三
        await pilot.press("2")  # 居家隔离医学观察
        assert form.status == "home_isolation"
        await pilot.press("enter", "2")  # start: two days ago
        start_day = date.today() - timedelta(days=2)
        end_day = start_day + timedelta(days=settings.rules.isolation_days)
        assert text(form, "#mf-end") == (
            f"自 {start_day.isoformat()} 起 "
            f"{settings.rules.isolation_days} 天，"
            f"计划解除 {end_day.isoformat()}"
        )
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, HouseholdCard)  # back on the re-read card
        assert card_rows(app)[0][3] == "居家隔离医学观察"
        member = ready_store.ledger.find_member(A)
        assert (member.health_status, member.status_start, member.status_end) == (
            "home_isolation",
            start_day.isoformat(),
            end_day.isoformat(),
        )
        assert member.version == 2 and member.household_id == ids["101"]
        assert (
            ready_store.g.scalar("SELECT last_writer FROM members WHERE id = ?", [member.id])
            == f"{PATROL}@CP-0101"
        )
        edit = ready_store.g.query("SELECT * FROM ledger_edits ORDER BY rowid DESC LIMIT 1")[0]
        assert ready_store.g.scalar("SELECT count(*) FROM ledger_edits") == edits_before + 1
        body = ready_store.ledger.edit_body(edit)
        assert (body["entity_id"], body["base_version"], body["version"]) == (member.id, 1, 2)
        assert body["changes"]["health_status"] == "home_isolation"
        # The gate, on the same store: 张三 trying to leave raises the home-isolation alert.
        ev = GateService(ready_store).evaluate(
            GateEntry(direction="out", id_number=A, temperature=36.5, code_colour="green")
        )
        assert ev.isolation == "home_isolation"
        assert any(r.code == "home_isolation_leaving" for r in ev.decision.reasons)
        ev = GateService(ready_store).evaluate(
            GateEntry(direction="out", id_number=B, temperature=36.5, code_colour="green")
        )
        assert ev.isolation is None


async def test_home_monitoring_on_screen_puts_the_person_on_the_due_list(
    settings, ready_store, frozen
):
    seed(ready_store)
    app = patrol_app(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        form = await open_form(pilot, 1)  # 李四
        await pilot.press("3")  # 居家健康监测, starts today (the clock says 3 April)
        assert "计划解除 2022-04-10" in text(form, "#mf-end")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert (
            ready_store.isolation.status(ready_store.index(B), today="2022-04-03")
            == "home_monitoring"
        )
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("f9")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, MonitoringScreen)
        due = screen.query_one("#due", DataTable)
        rows = [[str(c) for c in due.get_row_at(i)] for i in range(due.row_count)]
        assert [(r[0], r[1], r[3], r[4], r[5]) for r in rows] == [
            ("待测", "早", "李*", "居家健康监测", "2022-04-10")
        ]


async def test_categories_and_source_with_digit_keys(settings, ready_store):
    seed(ready_store)
    app = patrol_app(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        form = await open_form(pilot, 0)  # 张三, 独居老人 from the ledger
        assert "另有：独居老人" in text(form, "#mf-cats")
        await pilot.press("enter", "enter")  # status → start → categories
        assert form.query_one("#mf-cats").has_focus
        await pilot.press("1", "6", "7", "7", "3", "3")  # 密接, 租户, 冷链→物流, 境外 on and off
        assert "物流" in text(form, "#mf-cats") or "货车" in text(form, "#mf-cats")
        await pilot.press("enter", "3")  # found via: 扫码
        await pilot.press("enter")  # to the ID field: the number keys are text again
        assert form.query_one("#mf-id", Input).has_focus
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, HouseholdCard)
        m = ready_store.ledger.find_member(A)
        assert list(m.categories) == ["elderly_alone", "close_contact", "tenant", "logistics"]
        assert m.found_via == "scan" and m.health_status == "none"
        assert "密接" in card_rows(app)[0][4]
        # Toggling off again on a second visit to the form.
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("enter", "enter", "1", "ctrl+s")
        await settle(pilot)
        assert list(ready_store.ledger.find_member(A).categories) == [
            "elderly_alone",
            "tenant",
            "logistics",
        ]


@pytest.mark.parametrize("lang", ["zh", "en"])
async def test_bad_input_keeps_the_form_open(settings, ready_store, lang):
    seed(ready_store)
    app = patrol_app(settings, ready_store, lang)
    async with app.run_test(size=SIZE) as pilot:
        form = await open_form(pilot, 1)  # 李四
        await pilot.press("2", "enter", *"1399", "ctrl+s")  # no 13th month
        await settle(pilot)
        assert app.screen is form
        want = {"zh": "开始日期 1399 不是日期", "en": "start date 1399 is not a date"}[lang]
        assert want in text(form, "#mform-message")
        assert form.query_one("#mf-start", Input).has_focus
        assert ready_store.ledger.find_member(B).health_status == "none"
        # A wrong check digit in the ID field: the gate's wording, masked.
        form.query_one("#mf-start", Input).value = ""
        form.query_one("#mf-id", Input).value = wrong_check(make_id(77))
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is form and form.query_one("#mf-id", Input).has_focus
        want = {"zh": "有误", "en": "is not valid"}[lang]
        message = text(form, "#mform-message")
        assert want in message and make_id(77) not in message
        # Someone else's ID number: refused by the ledger, said in the UI language.
        form.query_one("#mf-id", Input).value = A
        await pilot.press("ctrl+s")
        await settle(pilot)
        want = {"zh": "已属于另一成员", "en": "belongs to another member"}[lang]
        assert app.screen is form and want in text(form, "#mform-message")
        form.query_one("#mf-id", Input).value = ""
        form.query_one("#mf-phone", Input).value = "12"
        await pilot.press("ctrl+s")
        await settle(pilot)
        want = {"zh": "手机号应为 11 位", "en": "a mobile number has 11 digits"}[lang]
        assert app.screen is form and want in text(form, "#mform-message")
        form.query_one("#mf-phone", Input).value = "13912345678"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, HouseholdCard)
        m = ready_store.ledger.find_member(B)
        assert m.health_status == "home_isolation" and m.phone_masked == "139****5678"
        full = ready_store.ledger.member_full(m.id, purpose="test")
        assert full["id_number"] == B and full["phone"] == "13912345678"


async def test_leaving_home_isolation_is_a_release(settings, ready_store, frozen):
    """张三 under home isolation since 15 March (ended 29 March): 0 is refused on the form,
    5 saves the other changes and opens the supervisor's release; after the PIN the gate
    alert is gone."""
    seed(ready_store)
    ready_store.unlock(SUPERVISOR, SUPERVISOR_PIN)
    ready_store.ledger.save_member(
        ready_store.ledger.find_member(A).household_id,
        {"health_status": "home_isolation", "status_start": "2022-03-15"},
        member_id=ready_store.ledger.find_member(A).id,
    )
    ready_store.lock("test")
    app = patrol_app(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        form = await open_form(pilot, 0)
        assert "2022-03-29" in text(form, "#mf-end")
        await pilot.press("0", "ctrl+s")
        await settle(pilot)
        assert app.screen is form
        assert "须经负责人确认" in text(form, "#mform-message")
        await pilot.press("5")
        form.query_one("#mf-relation", Input).value = "户主"
        await pilot.press("ctrl+s")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, ReleaseDialog)
        m = ready_store.ledger.find_member(A)
        assert m.relation == "户主" and m.health_status == "home_isolation"  # not yet
        await pilot.press(*SUPERVISOR_PIN, "enter")
        await settle(pilot)
        assert isinstance(app.screen, HouseholdCard)
        m = ready_store.ledger.find_member(A)
        assert m.health_status == "released" and m.status_end == "2022-04-03"
        assert ready_store.isolation.status(ready_store.index(A), today="2022-03-20") is None
        entry = ready_store.audit.entries(1, "monitoring_release")[0]
        assert entry["detail"]["confirmed_by"] == SUPERVISOR
        # 李四 is under no measure: 5 has nothing to release.
        await pilot.press("down", "enter")
        await settle(pilot)
        await pilot.press("5", "ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, MemberForm)
        assert "无需解除" in text(app.screen, "#mform-message")


@pytest.mark.parametrize("lang", ["zh", "en"])
async def test_remove_member_with_confirmation(settings, ready_store, lang):
    ids = seed(ready_store)
    app = patrol_app(settings, ready_store, lang)
    async with app.run_test(size=SIZE) as pilot:
        await open_card(pilot)
        await pilot.press("down", "delete")
        await settle(pilot)
        dialog = app.screen
        assert (
            isinstance(dialog, RemoveMemberDialog)
            and dialog.member.id_masked == ready_store.ledger.find_member(B).id_masked
        )
        want = {"zh": "1 迁出", "en": "1 moved away"}[lang]
        assert want in text(dialog, "#mremove-keys")
        await pilot.press("escape")  # cancelled: nothing removed, back on the card
        await settle(pilot)
        assert isinstance(app.screen, HouseholdCard)
        assert len(ready_store.ledger.members(ids["101"])) == 2
        await pilot.press("down", "delete", "1")
        await settle(pilot)
        assert isinstance(app.screen, HouseholdCard)
        assert [m.name_masked for m in ready_store.ledger.members(ids["101"])] == ["张*"]
        assert len(card_rows(app)) == 1
        edit = ready_store.g.query("SELECT * FROM ledger_edits ORDER BY rowid DESC LIMIT 1")[0]
        assert ready_store.ledger.edit_body(edit)["changes"] == {
            "removed": 1,
            "reason": "moved_away",
        }
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, PatrolScreen)
        assert {r[0]: r for r in table_rows(app.screen)}["101"][1] == "1"


async def test_member_under_isolation_is_not_removed(settings, ready_store):
    ids = seed(ready_store)
    ready_store.unlock(SUPERVISOR, SUPERVISOR_PIN)
    ready_store.ledger.save_member(
        ids["101"],
        {"health_status": "home_isolation"},
        member_id=ready_store.ledger.find_member(A).id,
    )
    ready_store.lock("test")
    app = patrol_app(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        await open_card(pilot)
        await pilot.press("delete")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, RemoveMemberDialog)
        assert "须先解除" in text(dialog, "#mremove-message")
        await pilot.press("1")
        await settle(pilot)
        assert app.screen is dialog
        assert ready_store.ledger.find_member(A) is not None
        assert ready_store.isolation.status(ready_store.index(A)) == "home_isolation"


async def test_coverage_line_shows_the_grid(settings, ready_store):
    seed(ready_store)
    ready_store.unlock(SUPERVISOR, SUPERVISOR_PIN)
    ready_store.ledger.save_household(
        {"grid": "网格2", "building": "9栋", "unit": "1单元", "room": "101"}
    )
    ready_store.lock("test")
    app = patrol_app(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await start(pilot)
        screen.query_one("#households", DataTable).focus()
        await pilot.press("f5")
        await settle(pilot)
        await pilot.press("ctrl+s")  # 101 seen
        await settle(pilot)
        line = text(screen, "#patrol-coverage")
        assert (
            "本单元 1/3" in line
            and "本楼栋 1/4" in line
            and "网格1 1/4" in line
            and "全部 1/5" in line
        ), line
        cov = ready_store.ledger.coverage_for("9栋", "1单元")
        assert cov["grid"] == {"name": "网格2", "total": 1, "visited": 0}
