"""How scans flow through the gate screen (trial at the gate, items 4, 5, 8 and 12).

A health-code link that carries an ID number fills 证件 and the record; Ctrl+R while the next
person waits in the form brings that person back after the correction; with ``--images`` the
last decision stays on screen (labelled 上一位) while the next person is loaded; Esc on a person
read from the folder releases the next image.
"""

# ruff: noqa: F811  (the ready_store fixture is imported from test_ui_app)
from __future__ import annotations

import asyncio

from scanners.sources import SourceSpec
from tests.test_ui_app import SIZE, app_for, ready_store, settle  # noqa: F401
from tests.test_ui_first_hour import human, open_gate_with_camera, wait_for, write_qr
from tests.test_ui_gate import banner, open_gate, passages, scan, value

HC_ID = "510107197701014563"
HC_MASKED = "510107********4563"
HC_LINK = f"https://jkm.example.gov.cn/hc/show?token=AbC123xyz789&id={HC_ID}"
WEDGE_ID = "320102198506153012"
WEDGE_MASKED = "320102********3012"
WEDGE_LINK = f"https://jkm.example.gov.cn/hc/show?token=AbC123xyz789&id={WEDGE_ID}"
A, A_MASKED = "11010519491231002X", "110105********002X"
B, B_MASKED = "510107197701014563", "510107********4563"
C, C_MASKED = "440306199003071232", "440306********1232"


def queue_app(settings, store, tmp_path, *codes: str):
    folder = tmp_path / "people"
    folder.mkdir()
    for i, code in enumerate(codes, 1):
        write_qr(folder, f"{i:02}.png", code)
    app = app_for(settings, store, sources=SourceSpec("images", str(folder)))
    app.IMAGE_POLL_S = 0.1
    return app, folder


# (with --images the camera worker never completes: no settle(), which waits for workers)


# -- item 4: the ID inside a health-code link -------------------------------------------------


async def test_a_health_code_read_by_a_wedge_scanner_fills_the_id_and_the_record(
    settings, ready_store
):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate(pilot)
        await scan(pilot, WEDGE_LINK)
        assert value(gate, "#f-id") == WEDGE_MASKED
        assert WEDGE_ID not in value(gate, "#f-id")
        await pilot.press("f5", "3", "6", "5", "enter")
        await settle(pilot)
    (row,) = passages(ready_store)
    assert row["id_masked"] == WEDGE_MASKED and row["temperature"] == 36.5
    assert row["code_colour"] == "green"


async def test_a_health_code_image_fills_the_id_and_the_record(settings, ready_store, tmp_path):
    app, _ = queue_app(settings, ready_store, tmp_path, HC_LINK)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate_with_camera(pilot)
        assert await wait_for(pilot, lambda: value(gate, "#f-id") == HC_MASKED, 10)
        await pilot.press("f5")
        await human(pilot, "365\n", settled=False)
        assert await wait_for(pilot, lambda: len(passages(ready_store)) == 1, 5)
    (row,) = passages(ready_store)
    assert row["id_masked"] == HC_MASKED and row["code_colour"] == "green"


async def test_a_health_code_without_an_id_leaves_the_id_field_empty(settings, ready_store):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate(pilot)
        await scan(pilot, "https://jkm.example.gov.cn/hc/show?token=AbC123xyz789")
        assert value(gate, "#f-id") == ""
        assert "健康码" in str(gate.query_one("#scan-line").render())


# -- item 5: Ctrl+R while the next person waits ----------------------------------------------


async def test_ctrl_r_while_the_next_image_waits_brings_that_person_back(
    settings, ready_store, tmp_path
):
    app, _ = queue_app(settings, ready_store, tmp_path, A, B, C)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate_with_camera(pilot)
        assert await wait_for(pilot, lambda: value(gate, "#f-id") == A_MASKED, 10)
        await human(pilot, "365\n", settled=False)
        assert await wait_for(pilot, lambda: value(gate, "#f-id") == B_MASKED, 10)
        await pilot.press("ctrl+r")  # the last reading was wrong: B waits in the form
        assert await wait_for(pilot, lambda: value(gate, "#f-id") == A_MASKED, 5)
        assert gate.correcting
        await human(pilot, "366\n", settled=False)
        assert await wait_for(pilot, lambda: len(passages(ready_store)) == 2, 5)
        assert await wait_for(pilot, lambda: value(gate, "#f-id") == B_MASKED, 5)
        assert "已更正" in banner(gate)
        await asyncio.sleep(0.6)  # the queue still waits for B: C is not read over B
        assert value(gate, "#f-id") == B_MASKED and gate.correcting is None
        await human(pilot, "367\n", settled=False)
        assert await wait_for(pilot, lambda: value(gate, "#f-id") == C_MASKED, 10)
        await human(pilot, "368\n", settled=False)
        assert await wait_for(pilot, lambda: len(passages(ready_store)) == 4, 5)
    rows = [r for r in passages(ready_store) if not r["superseded"]]
    assert [(r["id_masked"], r["temperature"]) for r in rows] == [
        (A_MASKED, 36.6),
        (B_MASKED, 36.7),
        (C_MASKED, 36.8),
    ]


async def test_ctrl_r_keeps_what_was_already_typed_for_the_waiting_person(settings, ready_store):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate(pilot)
        await scan(pilot, A)
        await pilot.press("3", "6", "5", "enter")
        await settle(pilot)
        await scan(pilot, C)
        await pilot.press("f6", "3", "6", "4")  # the next person, half done
        await settle(pilot)
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert value(gate, "#f-id") == A_MASKED
        await pilot.press("3", "6", "6", "enter")
        await settle(pilot)
        assert value(gate, "#f-id") == C_MASKED and value(gate, "#f-temp") == "364"
        assert gate.colour == "yellow"
        await pilot.press("enter")
        await settle(pilot)
    rows = [r for r in passages(ready_store) if not r["superseded"]]
    assert [(r["id_masked"], r["temperature"], r["code_colour"]) for r in rows] == [
        (A_MASKED, 36.6, None),
        (C_MASKED, 36.4, "yellow"),
    ]


async def test_esc_on_a_correction_brings_the_waiting_person_back(settings, ready_store):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate(pilot)
        await scan(pilot, A)
        await pilot.press("3", "6", "5", "enter")
        await settle(pilot)
        await scan(pilot, C)
        await pilot.press("ctrl+r")
        await settle(pilot)
        await pilot.press("escape")  # the correction is not wanted after all
        await settle(pilot)
        assert value(gate, "#f-id") == C_MASKED and gate.correcting is None
        await pilot.press("3", "6", "7", "enter")
        await settle(pilot)
    rows = passages(ready_store)
    assert [(r["id_masked"], r["temperature"]) for r in rows] == [
        (A_MASKED, 36.5),
        (C_MASKED, 36.7),
    ]


# -- item 8: the last decision stays while the next person is loaded -------------------------


async def test_the_last_decision_stays_on_screen_while_the_next_image_is_loaded(
    settings, ready_store, tmp_path
):
    app, _ = queue_app(settings, ready_store, tmp_path, A, B)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate_with_camera(pilot)
        assert await wait_for(pilot, lambda: value(gate, "#f-id") == A_MASKED, 10)
        await pilot.press("f5")
        await human(pilot, "365\n", settled=False)
        assert await wait_for(pilot, lambda: value(gate, "#f-id") == B_MASKED, 10)
        await asyncio.sleep(0.3)
        shown = banner(gate)
        assert "上一位" in shown and "放行" in shown, shown
        assert A_MASKED in shown and "36.5" in shown and "绿码" in shown, shown
        assert "放 行" not in shown  # not the big outcome: it is never read as B's
        await human(pilot, "366", settled=False)  # B's reading: the last decision stays
        assert "上一位" in banner(gate)
        await pilot.press("f5")  # B's own decision (previewed) replaces it
        assert await wait_for(pilot, lambda: "预判" in banner(gate), 5)
        assert "上一位" not in banner(gate)


async def test_the_last_turn_back_stays_with_its_reason(settings, ready_store):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate(pilot)
        await scan(pilot, A)
        await pilot.press("f6", "3", "6", "5", "enter")  # yellow code: not admitted
        await settle(pilot)
        assert passages(ready_store)[0]["decision"] == "turn_back"
        await pilot.press("f10")  # the alert acknowledged
        await settle(pilot)
        await scan(pilot, C)
        assert value(gate, "#f-id") == C_MASKED
        shown = banner(gate)
        assert "上一位：劝返" in shown and A_MASKED in shown and "黄码" in shown, shown
        assert "! 黄码：劝返" in shown  # and why


async def test_the_last_decision_is_said_in_english_too(settings, ready_store):
    settings.ui.language = "en"
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate(pilot)
        await scan(pilot, A)
        await pilot.press("f5", "3", "6", "5", "enter")
        await settle(pilot)
        await scan(pilot, C)
        shown = banner(gate)
        assert "Last person" in shown and A_MASKED in shown and "上一位" not in shown, shown


# -- item 12: Esc on a person read from the folder releases the next image -------------------


async def test_esc_on_a_read_image_releases_the_next(settings, ready_store, tmp_path):
    app, folder = queue_app(settings, ready_store, tmp_path, A, B)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate_with_camera(pilot)
        assert await wait_for(pilot, lambda: value(gate, "#f-id") == A_MASKED, 10)
        await pilot.press("escape")  # the person walked away
        assert await wait_for(pilot, lambda: value(gate, "#f-id") == B_MASKED, 5)
        await pilot.press("escape")
        assert await wait_for(pilot, lambda: any("读完" in n.message for n in app._notifications))
        write_qr(folder, "03.png", C)  # added later: read, the queue did not stall
        assert await wait_for(pilot, lambda: value(gate, "#f-id") == C_MASKED, 10)
        await human(pilot, "365\n", settled=False)
        assert await wait_for(pilot, lambda: len(passages(ready_store)) == 1, 5)
    (row,) = passages(ready_store)
    assert row["id_masked"] == C_MASKED


async def test_esc_on_a_typed_person_does_not_skip_a_waiting_image(settings, ready_store, tmp_path):
    """Only a person read from the folder releases the next image; clearing an empty or a
    typed form while the read person waits elsewhere (a correction) skips nobody."""
    app, _ = queue_app(settings, ready_store, tmp_path, A, B)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate_with_camera(pilot)
        assert await wait_for(pilot, lambda: value(gate, "#f-id") == A_MASKED, 10)
        await human(pilot, "365\n", settled=False)
        assert await wait_for(pilot, lambda: value(gate, "#f-id") == B_MASKED, 10)
        await pilot.press("ctrl+r", "escape")  # correction opened and left: B comes back
        await asyncio.sleep(0.6)
        assert value(gate, "#f-id") == B_MASKED
