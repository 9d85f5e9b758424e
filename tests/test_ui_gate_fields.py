"""The gate's time per person (issue 13 bench): what each key and each person costs the app.

* A key typed into a gate field repaints the field; it does not lay out the whole screen
  (Textual's Input marks its growing text as a layout change: twice a key at the gate).
* Moving between fields does not rebuild the footer when its keys stay the same.
* The slow key-person hash is computed once per person, when the ID is read, not again on
  the Enter that records.

Counts, not times: the speed itself is measured by ``bench/gate.py --only operator``."""

# ruff: noqa: F811  (the ready_store fixture is imported from test_ui_app)
from __future__ import annotations

import asyncio
import os
import threading
import time

from textual import events
from textual.widgets import Footer, Input

from fieldkit import gate as gate_core
from fieldkit.crypto import keyperson_hash
from fieldkit.gate import GateEntry, GateService, KeypersonHashes
from tests.test_ui_app import GATE, GATE_PIN, SIZE, app_for, ready_store, wedge  # noqa: F401
from tests.test_ui_gate import open_gate, passages, value
from tests.test_ui_pin_dialogs import settle

TYPED = "440305197809233450"


def count_calls(obj, name: str) -> list[int]:
    calls = [0]
    original = getattr(obj, name)

    def counted(*a, **k):
        calls[0] += 1
        return original(*a, **k)

    setattr(obj, name, counted)
    return calls


async def human(app, text: str, gap: float = 0.06) -> None:
    for ch in text:
        app.post_message(events.Key(ch, ch))
        await asyncio.sleep(gap)


async def test_typing_into_a_gate_field_does_not_lay_out_the_screen(settings, ready_store):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate(pilot)
        gate.query_one("#f-id", Input).focus()
        await settle(pilot)
        layouts = count_calls(gate, "_refresh_layout")
        await human(app, TYPED)
        await settle(pilot)
        assert value(gate, "#f-id") == TYPED
        # the first key clears the last person's banner (one layout); the 18 keys none
        assert layouts[0] <= 3, layouts[0]


async def test_a_long_text_still_scrolls_to_the_cursor(settings, ready_store):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate(pilot)
        field = gate.query_one("#f-reason", Input)
        field.focus()
        await settle(pilot)
        text = "visiting-grandmother-in-the-east-village-clinic"
        await human(app, text, 0.05)
        await settle(pilot)
        assert field.value == text
        shown = field.render_line(0).text.strip()
        assert shown and text.endswith(shown.rstrip()), shown


async def test_moving_between_fields_keeps_the_footer(settings, ready_store):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate(pilot)
        await settle(pilot)
        footer = gate.query_one(Footer)
        keys_before = [str(k.render()) for k in footer.children]
        rebuilds = count_calls(footer, "recompose")
        for wid in ("#f-id", "#f-name", "#f-phone", "#f-temp", "#f-reason", "#f-temp"):
            gate.query_one(wid, Input).focus()
            await pilot.pause()
        await settle(pilot)
        assert rebuilds[0] == 0
        assert [str(k.render()) for k in footer.children] == keys_before
        await pilot.press("f4")  # a key that changes what the footer shows still rebuilds it
        await settle(pilot)


def test_the_key_person_hash_is_computed_once_per_person(store):
    """prepare() (when the ID is read) then the preview and the record: one slow hash, and a
    person on the list is still found."""
    from fieldkit.reports.shiftwork import open_shift

    town_key = os.urandom(32)
    store.secrets.set("town_index_key", town_key)
    store.keypersons.apply(
        [{"id_hash": keyperson_hash(town_key, TYPED), "category": "close_contact"}]
    )
    open_shift(store, store.operator.name, by=store.operator)
    hashes = [0]

    def counting(key: bytes, number: str) -> str:
        hashes[0] += 1
        return keyperson_hash(key, number)

    saved = gate_core.HASHES
    gate_core.HASHES = KeypersonHashes(hasher=counting)
    try:
        service = GateService(store)
        service.prepare(TYPED)
        entry = GateEntry(direction="in", id_number=TYPED, temperature=36.5, source="manual")
        preview = service.evaluate(entry)
        ev, row = service.commit(entry)
        other = GateEntry(direction="in", id_number="11010519491231002X", temperature=36.5)
        service.commit(other)
    finally:
        gate_core.HASHES = saved
    assert preview.keyperson == "close_contact" and ev.keyperson == "close_contact"
    assert row.decision == "refer"
    assert hashes[0] == 2  # one for each person, however many looks at the list


def test_a_new_town_key_never_meets_an_old_hash():
    seen = []
    hashes = KeypersonHashes(size=2, hasher=lambda k, n: seen.append((k, n)) or f"{k!r}{n}")
    assert hashes(b"a", TYPED) == hashes(b"a", TYPED) and len(seen) == 1
    assert hashes(b"b", TYPED) != hashes(b"a", TYPED)
    hashes(b"c", TYPED)  # only the last two are kept: "b" (used before "a") is gone
    hashes(b"a", TYPED)
    assert len(seen) == 3
    hashes(b"b", TYPED)
    assert len(seen) == 4


async def test_a_scan_starts_the_hash_before_the_reading(settings, ready_store):
    ready_store.unlock(GATE, GATE_PIN)
    ready_store.secrets.set("town_index_key", os.urandom(32))
    ready_store.lock("test")
    hashed: list[str] = []
    saved = gate_core.HASHES
    gate_core.HASHES = KeypersonHashes(hasher=lambda k, n: hashed.append(n) or keyperson_hash(k, n))
    try:
        app = app_for(settings, ready_store)
        async with app.run_test(size=SIZE) as pilot:
            gate = await open_gate(pilot)
            wedge(app, TYPED)
            await settle(pilot)
            assert hashed == [TYPED]  # before any reading was typed
            await pilot.press("3", "6", "5", "enter")
            await settle(pilot)
            assert hashed == [TYPED]
            assert "放" in str(gate.query_one("#banner").render())
    finally:
        gate_core.HASHES = saved
    assert len(passages(ready_store)) == 1


async def test_keys_right_after_f10_record_the_next_person(settings, ready_store):
    """F10 releases the gate at once: the next person's reading and Enter, typed without a
    pause, are not dropped while the acknowledgement is being written."""
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate(pilot)
        wedge(app, "11010519491231002X")
        await settle(pilot)
        await pilot.press("3", "8", "6", "enter")
        await settle(pilot)
        wedge(app, "110105198001010016")  # the next person's code, read during the alert
        await settle(pilot)
        # A slow card or a busy disk: the store is held for a moment while F10 is pressed.
        held = threading.Event()

        def slow_disk() -> None:
            with ready_store.g.lock:
                held.set()
                time.sleep(1.0)

        disk = threading.Thread(target=slow_disk)
        disk.start()
        held.wait()
        for key in ("f10", "3", "6", "5", "enter"):
            app.post_message(events.Key(key, key if len(key) == 1 else None))
        await asyncio.sleep(0.2)
        disk.join()
        await settle(pilot)
        await pilot.pause(0.2)
        await settle(pilot)
        assert not gate.holding
    rows = passages(ready_store)
    assert [(r["id_masked"][-4:], r["temperature"]) for r in rows] == [
        ("002X", 38.6),
        ("0016", 36.5),
    ]
    assert rows[0]["alerts_ack"] is not None


async def test_the_next_alert_reuses_the_dialog_with_its_own_words(settings, ready_store):
    """The alert dialog is built once: the second referral shows in the same screen, with the
    second person's reading, and its footer is not rebuilt."""
    from fieldkit.ui.widgets.dialogs import AlertScreen

    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        await open_gate(pilot)
        shown: list = []
        rebuilds = [0]
        for number, reading in (("11010519491231002X", "386"), ("110105198001010016", "391")):
            wedge(app, number)
            await settle(pilot)
            await pilot.press(*reading, "enter")
            await settle(pilot)
            assert isinstance(app.screen, AlertScreen)
            alert = app.screen
            if shown:
                assert alert is shown[0][0]
                assert rebuilds[0] == 0
            else:
                rebuilds = count_calls(alert.query_one(Footer), "recompose")  # from now on
            shown.append((alert, str(alert.query_one(".alert-line").render())))
            await pilot.press("f10")
            await settle(pilot)
    assert "38.6" in shown[0][1] and "39.1" in shown[1][1] and "38.6" not in shown[1][1]
    assert all(r["alerts_ack"] for r in passages(ready_store))


async def test_an_alert_does_not_rebuild_the_gate_footer(settings, ready_store):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate(pilot)
        await settle(pilot)
        footer = gate.query_one(Footer)
        keys_before = [str(k.render()) for k in footer.children]
        rebuilds = count_calls(footer, "recompose")
        wedge(app, "11010519491231002X")
        await settle(pilot)
        await pilot.press("3", "8", "6", "enter")
        await settle(pilot)
        await pilot.press("f10")
        await settle(pilot)
        assert app.screen is gate
        assert rebuilds[0] == 0
        assert [str(k.render()) for k in footer.children] == keys_before
