"""Issue 13, the gate's first hour: a hand-typed ID lands in the ID field wherever focus is,
is never read as a temperature and is never shown unmasked; the typed path is short."""

# ruff: noqa: F811  (the ready_store fixture is imported from test_ui_app)
from __future__ import annotations

import asyncio
import copy

import pytest
from textual import events
from textual.widgets import Input

from fieldkit.gate import is_id_shaped, looks_like_id, parse_temperature, scrub_ids
from tests.test_ui_app import SIZE, app_for, ready_store  # noqa: F401
from tests.test_ui_gate import banner, open_gate, passages, value
from tests.test_ui_pin_dialogs import settle

TYPED = "440305197809233450"  # valid check digit
TYPED_MASKED = "440305********3450"
OLD15 = "110105491231002"


def screen_text(app) -> str:
    """Everything on screen: widgets and notices."""
    parts = [str(w.render()) for w in app.screen.query("*") if hasattr(w, "render")]
    parts += [n.message for n in app._notifications]
    return "\n".join(parts)


def test_id_shapes():
    assert looks_like_id("44030") and looks_like_id("4403X")
    assert not looks_like_id("365") and not looks_like_id("36.5") and not looks_like_id("3650")
    assert is_id_shaped(TYPED) and is_id_shaped(OLD15) and not is_id_shaped(TYPED[:17])
    assert scrub_ids(f"x {TYPED}.") == f"x {TYPED_MASKED}."
    with pytest.raises(Exception) as info:
        parse_temperature(TYPED)
    assert TYPED not in str(info.value) and "4403" not in str(info.value)


async def human(pilot, text: str, gap: float = 0.06, settled: bool = True) -> int:
    """A person's keys, really ``gap`` apart (longer than the scanner hold-back); keys used."""
    for ch in text:
        event = events.Key("enter", "\r") if ch == "\n" else events.Key(ch, ch)
        pilot.app.post_message(event)
        await asyncio.sleep(gap)
    if settled:
        await settle(pilot)
    else:
        await asyncio.sleep(0.3)
    return len(text)


async def record_typed(pilot, gate, text: str) -> int:
    """ID + Enter + reading + Enter, at a person's pace, from wherever focus is; keys used."""
    return await human(pilot, text + "\n365\n")


@pytest.mark.parametrize("start_in", ["#f-temp", "#f-name", "#f-phone", "#f-test-date"])
async def test_a_typed_id_goes_to_the_id_field_wherever_focus_is(settings, ready_store, start_in):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate(pilot)
        gate.query_one(start_in, Input).focus()
        await pilot.pause()
        keys = await record_typed(pilot, gate, TYPED)
        assert keys <= 24
        rows = passages(ready_store)
        assert len(rows) == 1, banner(gate)
        assert rows[0]["temperature"] == 36.5 and rows[0]["id_masked"] == TYPED_MASKED
        assert rows[0]["source"] == "manual"
        assert TYPED not in screen_text(app)
        assert value(gate, start_in) == ""


async def test_after_a_record_a_typed_id_is_never_a_temperature(settings, ready_store):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate(pilot)
        await record_typed(pilot, gate, TYPED)
        assert app.focused is gate.query_one("#f-temp")
        # the next person: 15-digit ID typed straight after the record, Enter at once
        await human(pilot, OLD15)
        assert value(gate, "#f-temp") == ""
        assert app.focused is gate.query_one("#f-id")
        await human(pilot, "\n")
        assert app.focused is gate.query_one("#f-temp")
        assert "°C" not in banner(gate)
        assert OLD15 not in screen_text(app) and TYPED not in screen_text(app)
        assert value(gate, "#f-id").startswith("110105") and "*" in value(gate, "#f-id")


async def test_keys_queued_before_the_focus_moves_all_reach_the_id_field(settings, ready_store):
    """Zero delay between keys: every key reaches the ID field, in order."""
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate(pilot)
        for ch in TYPED:  # all queued before the first is handled
            app.post_message(events.Key(ch, ch))
        await settle(pilot)
        assert value(gate, "#f-id") == TYPED and value(gate, "#f-temp") == ""


async def test_errors_and_notices_never_show_a_full_id(settings, ready_store):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate(pilot)
        app.notify(f"something about {TYPED}")
        gate.banner("error", "x", [f"bad {TYPED}"])
        await pilot.pause()
        assert TYPED not in screen_text(app)
        assert TYPED_MASKED in screen_text(app)


# -- item 2: changes made by another process reach the running app -------------------------


async def wait_for(pilot, condition, seconds: float = 2.0) -> bool:
    """True once ``condition()`` holds, checked as the app runs, within ``seconds``."""
    for _ in range(int(seconds / 0.05)):
        if condition():
            return True
        await asyncio.sleep(0.05)
    return condition()


async def test_a_mode_change_from_another_process_reaches_the_running_gate(settings, ready_store):
    from fieldkit.store import open_store
    from tests.conftest import SUPERVISOR, SUPERVISOR_PIN
    from tests.test_ui_app import status_text

    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate(pilot)
        await asyncio.sleep(0.7)  # the watcher has seen the store once
        other = open_store(copy.deepcopy(settings))  # another connection, its own settings
        try:
            other.unlock(SUPERVISOR, SUPERVISOR_PIN)
            other.set_area_mode("medium", other.operator)
        finally:
            other.close()
        assert await wait_for(pilot, lambda: settings.checkpoint.area_mode == "medium")
        await settle(pilot)
        assert "中风险" in status_text(app) or "medium" in status_text(app)
        assert any("别处" in n.message for n in app._notifications)
        assert gate is app.screen


# -- item 3: first-run set-up ----------------------------------------------------------------


def footer_keys(app) -> set[str]:
    """The keys the footer offers on the current screen."""
    from textual.widgets._footer import FooterKey

    return {k.key for k in app.screen.query(FooterKey)}


async def test_first_run_refuses_the_example_checkpoint_and_says_it_submitted(settings):
    from fieldkit.store import open_store
    from fieldkit.ui.login import RecoveryKeyScreen, SetupScreen

    assert settings.checkpoint.name == "卡口" or True
    settings.checkpoint.name, settings.checkpoint.code = "卡口", "CP-0001"
    store = open_store(settings, create=True)
    app = app_for(settings, store)
    pin = "2" * settings.security.min_pin_length
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, SetupScreen)
        assert app.focused is screen.query_one("#setup-cp-name")
        assert "f2" not in footer_keys(app)  # no screen opens before a login
        message = lambda: str(screen.query_one("#setup-message").render())  # noqa: E731
        # the example checkpoint typed back in is refused, Enter by Enter
        await pilot.press(*"卡口", "enter", *"CP-0001", "enter", *"Boss", "enter")
        await pilot.press(*pin, "enter", *pin, "enter")
        await settle(pilot)
        assert "示例" in message() and not store.initialised
        assert app.focused is screen.query_one("#setup-cp-name")
        screen.query_one("#setup-cp-name", Input).value = "西门卡口"
        await pilot.press("enter")
        assert "示例" in message() and app.focused is screen.query_one("#setup-cp-code")
        screen.query_one("#setup-cp-code", Input).value = ""
        await pilot.press(*"CP-0202", "enter")
        await pilot.pause()
        assert "已提交" in message() or isinstance(app.screen, RecoveryKeyScreen)
        await settle(pilot)
        assert isinstance(app.screen, RecoveryKeyScreen)
    assert store.initialised and settings.checkpoint.code == "CP-0202"
    store.close()


# -- item 13: a ledger import by another process shows in the open patrol screen -----------


async def test_a_ledger_import_elsewhere_shows_in_the_open_patrol_screen(settings, ready_store):
    from textual.widgets import OptionList

    from fieldkit.store import open_store
    from tests.conftest import SUPERVISOR, SUPERVISOR_PIN
    from tests.test_ui_patrol import patrol_app, start

    app = patrol_app(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await start(pilot)
        options = screen.query_one("#places", OptionList)
        assert options.option_count == 0
        await asyncio.sleep(0.7)
        other = open_store(copy.deepcopy(settings))  # as `fieldkit ledger import` would
        try:
            other.unlock(SUPERVISOR, SUPERVISOR_PIN)
            other.ledger.save_household(
                {"grid": "网格1", "building": "5栋", "unit": "1单元", "room": "101"}
            )
        finally:
            other.close()
        assert await wait_for(pilot, lambda: options.option_count == 1)
        assert "5栋 1单元" in str(options.get_option_at_index(0).prompt)


# -- item 4: the release dialog -------------------------------------------------------------


async def test_release_reason_typed_after_tab_never_reaches_the_pin(
    settings, ready_store, monkeypatch
):
    """Item 4: the release dialog's PIN, then Tab and the early-release reason, no delay."""
    from textual.widgets import DataTable

    from fieldkit.ledger import households, monitoring
    from fieldkit.ui.monitoring import ReleaseDialog
    from tests.conftest import SUPERVISOR_PIN
    from tests.test_ui_monitoring import NOW, open_monitoring, seed
    from tests.test_ui_patrol import patrol_app
    from tests.test_ui_pin_dialogs import burst, pin_fields_masked

    monkeypatch.setattr(monitoring, "now_local", lambda: NOW["value"])
    monkeypatch.setattr(households, "now_local", lambda: NOW["value"])
    seed(ready_store)
    app = patrol_app(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_monitoring(pilot)
        screen.query_one("#alerts", DataTable).focus()
        await pilot.press("f7")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, ReleaseDialog)
        pin_fields_masked(dialog)
        burst(app, [*SUPERVISOR_PIN[:2], "tab", *"ok", "shift+tab"])
        await settle(pilot)
        assert dialog.query_one("#rel-pin", Input).value == SUPERVISOR_PIN[:2]
        assert dialog.query_one("#rel-reason", Input).value == "ok"
        assert app.focused is dialog.query_one("#rel-pin")


# -- item 5: the last person's decision goes when the next starts; no shift open -------------


async def test_the_last_decision_goes_when_the_next_person_starts(settings, ready_store):
    from tests.test_ui_gate import ID, scan

    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate(pilot)
        await scan(pilot, ID)
        await human(pilot, "365\n")
        assert "放 行" in banner(gate)
        await human(pilot, "3")  # the next person's reading starts
        assert "放 行" not in banner(gate) and "110105" not in banner(gate)
        await human(pilot, "66\n")
        assert "放 行" in banner(gate)
        await scan(pilot, ID)  # the next person's scan
        assert "放 行" not in banner(gate) or "预判" in banner(gate)


async def test_recording_with_no_shift_warns_once_and_marks_the_records(settings, ready_store):
    from tests.test_ui_gate import ID, scan

    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate(pilot)
        for _ in range(2):
            await scan(pilot, ID)
            await human(pilot, "365\n")
            assert "未开班" in banner(gate)
        warnings = [n for n in app._notifications if "没有开班" in n.message]
        assert len(warnings) == 1
    rows = passages(ready_store)
    assert len(rows) == 2 and all(r["shift_id"] is None for r in rows)


# -- item 6: a correction that admits someone the gate stopped needs the supervisor ----------


async def test_correcting_a_denial_into_an_admit_needs_the_supervisor_pin(settings, ready_store):
    from fieldkit.ui.gate_dialogs import CorrectionOverrideDialog
    from tests.conftest import SUPERVISOR, SUPERVISOR_PIN
    from tests.test_ui_gate import ID, scan

    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate(pilot)
        await scan(pilot, ID)
        await pilot.press("f7")  # red code: denied
        await human(pilot, "365\n")
        await pilot.press("f10")  # the alert acknowledged
        await settle(pilot)
        assert passages(ready_store)[0]["decision"] == "deny"
        await pilot.press("ctrl+r", "f7")  # the code was green after all
        await human(pilot, "\n")
        assert isinstance(app.screen, CorrectionOverrideDialog)
        await pilot.press("escape")
        await settle(pilot)
        assert len(passages(ready_store)) == 1  # nothing recorded without the supervisor
        assert value(gate, "#f-temp") == "36.5" and gate.correcting
        await human(pilot, "\n")
        dialog = app.screen
        assert isinstance(dialog, CorrectionOverrideDialog)
        dialog.query_one("#pin-name", Input).value = SUPERVISOR
        dialog.query_one("#pin-pin", Input).focus()
        await pilot.press(*SUPERVISOR_PIN, "enter")
        await settle(pilot)
        assert app.screen is gate and "已更正" in banner(gate)
    old, new = passages(ready_store)
    assert old["superseded"] == 1 and new["decision"] == "admit"
    assert new["confirmed_by"] == SUPERVISOR
    audit = ready_store.audit.entries(5, "correction_override")
    assert audit and audit[0]["detail"]["confirmed_by"] == SUPERVISOR


async def test_a_correction_that_does_not_admit_needs_no_pin(settings, ready_store):
    from tests.test_ui_gate import ID, scan

    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate(pilot)
        await scan(pilot, ID)
        await human(pilot, "365\n")
        await pilot.press("ctrl+r", "f7")  # admit → deny: no supervisor needed
        await human(pilot, "\n")
        await pilot.press("f10")
        await settle(pilot)
        assert app.screen is gate
    assert [r["decision"] for r in passages(ready_store)] == ["admit", "deny"]


# -- item 14: shift close names each cause of an unbalanced count ----------------------------


def test_reconciliation_names_double_entries_exits_without_entry_and_purges(store):
    from fieldkit.gate import GateEntry, GateService
    from fieldkit.reports.builders import shift_summary
    from fieldkit.reports.shiftwork import open_shift
    from fieldkit.reports.text import reconciliation_lines
    from tests.conftest import SUPERVISOR, SUPERVISOR_PIN

    if not store.is_unlocked:
        store.unlock(SUPERVISOR, SUPERVISOR_PIN)
    open_shift(store, "x", by=store.operator)
    gate = GateService(store)
    person = dict(temperature=36.5, code_colour="green")
    for direction, number in (("in", TYPED), ("in", TYPED), ("out", OLD15 + "")):
        gate.commit(GateEntry(direction=direction, id_number=number, **person))
    rec = shift_summary(store).reconciliation
    assert rec.double_entries == 1 and rec.unmatched_exits == 1 and rec.purged == 0
    text = "\n".join(reconciliation_lines(shift_summary(store), "zh"))
    assert "相差 +1" in text
    assert "重复进入（未出又进）1 人次" in text and "出去时无进入记录 1 人次" in text
    assert "清理旧记录 0 条" in text
    english = "\n".join(reconciliation_lines(shift_summary(store), "en"))
    assert "entered again without leaving 1" in english


def test_double_entry_counted_when_both_entries_share_a_timestamp(store, monkeypatch):
    """Two entries within one millisecond (a fast second scan) are still in order: the store's
    insertion order breaks the tie, so the second is a double entry (was 0 by chance)."""
    from datetime import datetime

    from fieldkit.gate import GateEntry, GateService
    from fieldkit.reports.builders import shift_summary
    from fieldkit.reports.shiftwork import open_shift
    from fieldkit.store import passages
    from tests.conftest import SUPERVISOR, SUPERVISOR_PIN

    if not store.is_unlocked:
        store.unlock(SUPERVISOR, SUPERVISOR_PIN)
    open_shift(store, "x", by=store.operator)
    frozen = datetime.now().astimezone()
    monkeypatch.setattr(passages, "_now", lambda: frozen)
    gate = GateService(store)
    for _ in range(2):
        gate.commit(
            GateEntry(direction="in", id_number=TYPED, temperature=36.5, code_colour="green")
        )
    assert shift_summary(store).reconciliation.double_entries == 1


def test_a_passage_in_the_millisecond_the_shift_opened_is_not_inside_at_opening(store, monkeypatch):
    """The shift's first record stamped in the same millisecond as its opening (a fast
    machine) belongs to the shift, not to "inside at opening" (was counted there by chance)."""
    from datetime import datetime

    from fieldkit.gate import GateEntry, GateService
    from fieldkit.reports.builders import shift_summary
    from fieldkit.reports.shiftwork import open_shift
    from fieldkit.store import passages, shifts
    from tests.conftest import SUPERVISOR, SUPERVISOR_PIN

    if not store.is_unlocked:
        store.unlock(SUPERVISOR, SUPERVISOR_PIN)
    frozen = datetime.now().astimezone()
    monkeypatch.setattr(shifts, "_now", lambda: frozen.isoformat(timespec="milliseconds"))
    monkeypatch.setattr(passages, "_now", lambda: frozen)
    open_shift(store, "x", by=store.operator)
    GateService(store).commit(
        GateEntry(direction="in", id_number=TYPED, temperature=36.5, code_colour="green")
    )
    rec = shift_summary(store).reconciliation
    assert rec.inside_at_open == 0 and rec.entries == 1 and rec.inside_now == 1


# -- item 11: people imported already under monitoring: no 漏测 before the import -----------


def test_no_missed_windows_before_the_import_or_the_device_start(store, monkeypatch):
    from datetime import datetime, timedelta

    from fieldkit.ledger import households
    from tests.ledger_support import make_id

    tz = datetime.now().astimezone().tzinfo
    imported = datetime(2022, 4, 10, 11, 0, tzinfo=tz)  # the morning window has closed
    monkeypatch.setattr(households, "now_local", lambda: imported)
    store.g.db.execute("UPDATE operators SET created_at = ?", ["2022-04-09T12:00:00+00:00"])
    store.settings.monitoring.morning_window = "07:00-09:00"
    store.settings.monitoring.evening_window = "18:00-20:00"
    hid, _ = store.ledger.save_household({"building": "3栋", "unit": "1", "room": "101"})
    for n in range(8):  # under home isolation since 1 April, imported on the 10th
        store.ledger.save_member(
            hid,
            {
                "name": f"张{n}",
                "id_number": make_id(70 + n),
                "health_status": "home_isolation",
                "status_start": "2022-04-01",
            },
        )
    mon = store.monitoring
    assert mon.check_missed(imported + timedelta(minutes=5)) == 0  # nothing before the import
    # the evening window after the import is a real miss, for each of the 8
    assert mon.check_missed(datetime(2022, 4, 10, 21, 0, tzinfo=tz)) == 8
    days = {a["day"] for a in mon.alerts() if a["kind"] == "missed"}
    assert days == {"2022-04-10"}


def test_no_missed_windows_before_the_device_was_set_up(store, monkeypatch):
    from datetime import datetime

    from fieldkit.ledger import households
    from tests.ledger_support import make_id

    tz = datetime.now().astimezone().tzinfo
    monkeypatch.setattr(households, "now_local", lambda: datetime(2022, 4, 1, 6, 0, tzinfo=tz))
    # the device was first set up on the 5th at noon; the person was entered (backdated) before
    store.g.db.execute("UPDATE operators SET created_at = ?", ["2022-04-05T12:00:00+08:00"])
    store.settings.monitoring.morning_window = "07:00-09:00"
    store.settings.monitoring.evening_window = "18:00-20:00"
    hid, _ = store.ledger.save_household({"building": "3栋", "unit": "1", "room": "101"})
    store.ledger.save_member(
        hid,
        {
            "name": "张三",
            "id_number": make_id(80),
            "health_status": "home_isolation",
            "status_start": "2022-04-01",
        },
    )
    mon = store.monitoring
    mon.check_missed(datetime(2022, 4, 6, 10, 0, tzinfo=tz))
    days = sorted(a["day"] for a in mon.alerts() if a["kind"] == "missed")
    assert days and days[0] >= "2022-04-05"


# -- item 8: --images DIR is a queue of people -----------------------------------------------


def write_qr(folder, name: str, text: str) -> None:
    import segno

    segno.make_qr(text).save(str(folder / name), kind="png", scale=6, border=4)


async def open_gate_with_camera(pilot):
    """Log in while the image queue runs (it never completes: wait for the others only)."""
    from fieldkit.ui.gate import GateScreen
    from tests.test_ui_app import GATE, GATE_PIN

    app = pilot.app
    await pilot.pause()
    app.screen.query_one("#login-operator", Input).value = GATE
    app.screen.query_one("#login-pin", Input).focus()
    await pilot.press(*GATE_PIN, "enter")
    assert await wait_for(pilot, lambda: isinstance(app.screen, GateScreen), 10)
    return app.screen


async def test_images_play_as_a_queue_of_people(settings, ready_store, tmp_path):
    from scanners.sources import SourceSpec
    from tests.test_ui_gate import ID, ID_MASKED

    second = "110105198001010016"
    folder = tmp_path / "people"
    folder.mkdir()
    write_qr(folder, "01.png", ID)
    write_qr(folder, "02.png", second)
    app = app_for(settings, ready_store, sources=SourceSpec("images", str(folder)))
    app.IMAGE_POLL_S = 0.1
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate_with_camera(pilot)
        assert await wait_for(pilot, lambda: value(gate, "#f-id") == ID_MASKED, 10)
        await asyncio.sleep(0.5)
        assert value(gate, "#f-id") == ID_MASKED  # the second waits for this record
        await human(pilot, "365\n", settled=False)
        assert await wait_for(pilot, lambda: value(gate, "#f-id").endswith("0016"), 10)
        await human(pilot, "366\n", settled=False)
        assert await wait_for(pilot, lambda: any("读完" in n.message for n in app._notifications))
        write_qr(folder, "03.png", ID)  # added later: picked up
        assert await wait_for(pilot, lambda: value(gate, "#f-id") == ID_MASKED, 10)
        await human(pilot, "367\n", settled=False)
        assert await wait_for(pilot, lambda: len(passages(ready_store)) == 3)
    rows = passages(ready_store)
    assert [r["temperature"] for r in rows] == [36.5, 36.6, 36.7]
    assert [r["id_masked"][-4:] for r in rows] == ["002X", "0016", "002X"]


async def test_a_missing_or_empty_images_folder_says_so(settings, ready_store, tmp_path):
    from scanners.sources import SourceSpec

    for folder, word in ((tmp_path / "nope", "不存在"), (tmp_path, "还没有图片")):
        app = app_for(settings, ready_store, sources=SourceSpec("images", str(folder)))
        async with app.run_test(size=SIZE) as pilot:
            await open_gate_with_camera(pilot)
            assert await wait_for(
                pilot, lambda w=word, a=app: any(w in n.message for n in a._notifications), 5
            )
        ready_store.lock("test")
