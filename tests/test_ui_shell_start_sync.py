"""App shell: lazy start (screens and store loaded off the first paint), keys held back for the
keyboard-wedge detector, and automatic background sync against a real in-process town server.

Pilot-driven on a real store in tmp_path; the town server is the real ASGI app of ``sync.server``
behind ``SyncASGITransport`` (as tests/test_sync_client.py drives it).
"""

# ruff: noqa: F811  (the ready_store fixture is imported from test_ui_app)
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import pytest
from textual import events
from textual.widgets import Input

from fieldkit.store import open_store
from fieldkit.ui.app import make_app
from fieldkit.ui.gate import GateScreen
from fieldkit.ui.login import LoginScreen, SetupScreen
from fieldkit.ui.registry import (
    SCREEN_MODULES,
    LazyScreen,
    describe_module,
    screen_entries,
)
from fieldkit.ui.widgets.statusbar import StatusBar
from tests.conftest import ROOT, SUPERVISOR, SUPERVISOR_PIN
from tests.test_ui_app import GATE, GATE_PIN, SIZE, app_for, login, ready_store, settle  # noqa: F401

ID = "11010519491231002X"
ID_MASKED = "110105********002X"


def passages(store) -> list[dict]:
    return sorted(store.passages.rows(), key=lambda r: r["ts"])


async def key(app, name: str, char: str | None = None, stamp: float | None = None) -> None:
    event = events.Key(name, char)
    event.time = time.monotonic() if stamp is None else stamp  # as the terminal driver does
    app.post_message(event)


async def person_types(pilot, text: str, gap: float = 0.15) -> None:
    """A person: one key every ``gap`` seconds (real time)."""
    for ch in text:
        await key(pilot.app, ch, ch)
        await asyncio.sleep(gap)


async def scanner_types(pilot, text: str, gap: float = 0.004) -> None:
    """A USB scanner: a burst of keys ``gap`` apart, then Enter, sent from a thread of its own
    as the terminal driver's reader thread sends them. The stamps are the scanner's timing
    (a starved test thread must not turn a scanner into a person)."""
    app = pilot.app

    def driver() -> None:
        start = time.monotonic()
        for i, ch in enumerate([*text, "enter"]):
            event = events.Key(ch, "\r" if ch == "enter" else ch)
            event.time = start + i * gap
            app.post_message(event)
            time.sleep(gap)

    await asyncio.to_thread(driver)


async def quiet(pilot) -> None:
    """Past the hold-back time, and every worker done."""
    await asyncio.sleep(pilot.app.hold_s * 3)
    await settle(pilot)


# -- registry: screens described without importing them ---------------------------------------


def test_registry_reads_screens_without_importing_their_modules():
    code = (
        "import sys, json\n"
        "from fieldkit.ui.registry import screen_entries\n"
        "import fieldkit.ui.app\n"
        "ids = [e.id for e in screen_entries()]\n"
        "heavy = [m for m in ('fieldkit.ui.gate', 'fieldkit.ui.supervisor', 'openpyxl',\n"
        "         'sqlite_utils', 'fieldkit.store', 'numpy', 'cv2', 'httpx') if m in sys.modules]\n"
        "print(json.dumps([ids, heavy]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        timeout=60,
    )
    ids, heavy = json.loads(out.stdout)
    assert "gate" in ids and "vehicle" in ids
    assert heavy == []


def test_lazy_descriptions_match_what_each_module_declares():
    lazy = screen_entries(SCREEN_MODULES)
    eager = screen_entries(SCREEN_MODULES, lazy=False)
    assert [(e.id, e.title_key, e.roles, e.key) for e in lazy] == [
        (e.id, e.title_key, e.roles, e.key) for e in eager
    ]
    gate = next(e for e in lazy if e.id == "gate")
    assert isinstance(gate.factory, LazyScreen)
    assert gate.factory.resolve() is GateScreen


def test_a_module_whose_screens_are_not_literal_is_imported(tmp_path, monkeypatch):
    (tmp_path / "fk_dyn_screens.py").write_text(
        "from fieldkit.ui.registry import ScreenEntry\n"
        "from fieldkit.ui.gate import GateScreen\n"
        "NAME = 'dyn'\n"
        "SCREENS = [ScreenEntry(NAME, 'gate.title', GateScreen, ('gate',))]\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert describe_module("fk_dyn_screens") is None
    entries = screen_entries(("fk_dyn_screens", "fieldkit.ui.not_written_yet"))
    assert [e.id for e in entries] == ["dyn"] and entries[0].factory is GateScreen


async def test_a_broken_screen_module_is_reported_when_opened(
    settings, ready_store, tmp_path, monkeypatch
):
    (tmp_path / "fk_broken_screens.py").write_text(
        "from fieldkit.ui.registry import ScreenEntry\n"
        "import fk_no_such_dependency\n"
        "SCREENS = [ScreenEntry('broken', 'gate.title', object, ('gate',), 'f6')]\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    entries = screen_entries(("fieldkit.ui.gate", "fk_broken_screens"))
    assert [e.id for e in entries] == ["gate", "broken"]
    app = make_app(settings, ready_store, entries=entries)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await login(pilot, GATE, GATE_PIN)
        await app.open_screen("broken")
        await settle(pilot)
        assert isinstance(app.screen, GateScreen)  # still on the gate, working
        assert any(
            "fk_broken_screens" in n.message and "fk_no_such_dependency" in n.message
            for n in app._notifications
        )


# -- the store opened by the app, after the first paint -----------------------------------------


async def test_app_opens_the_store_itself_and_login_works(settings, ready_store):
    ready_store.kv.set("ui.last_operator", GATE)
    ready_store.close()
    app = make_app(settings, entries=screen_entries(("fieldkit.ui.gate",)))
    assert app.store is None
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, LoginScreen)
        await settle(pilot)
        assert app.store is not None and app.store.initialised
        screen = app.screen
        assert screen.query_one("#login-operator", Input).value == GATE  # filled once open
        screen.query_one("#login-pin", Input).focus()
        await pilot.press(*GATE_PIN, "enter")
        await settle(pilot)
        assert isinstance(app.screen, GateScreen)
        assert GATE in str(app.screen.query_one(StatusBar).render())
    app.store.close()


async def test_a_new_data_directory_starts_with_set_up(settings):
    app = make_app(settings, entries=screen_entries(("fieldkit.ui.gate",)))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, SetupScreen)
        await settle(pilot)
        assert app.store is not None and not app.store.initialised
        assert isinstance(app.screen, SetupScreen)
    app.store.close()


# -- keyboard wedge: keys held back, nothing lost or reordered ------------------------------------

FIELDS = ("#f-id", "#f-name", "#f-phone", "#f-temp", "#f-test-date", "#f-reason", "#f-escort")


async def test_a_scan_never_reaches_the_focused_field_whatever_has_focus(settings, ready_store):
    changed: list[tuple[str, str]] = []

    def hook(message) -> None:
        if isinstance(message, Input.Changed) and message.input.id != "f-id":
            changed.append((message.input.id, message.value))

    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        await pilot.pause()
        await login(pilot, GATE, GATE_PIN)
        gate = app.screen
        # A wide hold-back window, so a busy test machine cannot make this about timing: the
        # point is that held keys never reach a field and the burst is taken whole at Enter.
        app.hold_s = 1.0
        for field in FIELDS:
            gate.action_clear()
            await settle(pilot)
            gate.query_one(field, Input).focus()
            changed.clear()
            await scanner_types(pilot, ID)
            await settle(pilot)
            assert app._held == []
            assert gate.query_one("#f-id", Input).value == ID_MASKED, field
            assert changed == [], (field, changed)  # not one key of the burst reached a field
            assert passages(ready_store) == []  # the scanner's Enter did not commit


async def test_a_person_typing_around_a_scan_loses_nothing(settings, ready_store):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await login(pilot, GATE, GATE_PIN)
        gate = app.screen
        await person_types(pilot, "36")  # the reading before the scan...
        await scanner_types(pilot, ID)
        await asyncio.sleep(0.2)
        await person_types(pilot, "5")  # ...and its last digit after it
        await quiet(pilot)
        assert gate.query_one("#f-temp", Input).value == "365"
        assert gate.query_one("#f-id", Input).value == ID_MASKED
        await key(app, "enter", "\r")
        await quiet(pilot)
        rows = passages(ready_store)
        assert len(rows) == 1 and rows[0]["temperature"] == 36.5
        assert rows[0]["id_masked"] == ID_MASKED and rows[0]["source"] == "wedge"


async def test_fast_keys_then_tab_stay_in_order(settings, ready_store):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await login(pilot, GATE, GATE_PIN)
        gate = app.screen
        gate.query_one("#f-name", Input).focus()
        for name, char in (("L", "L"), ("i", "i"), ("tab", None), ("1", "1"), ("3", "3")):
            await key(app, name, char)  # all within a few ms: held, then released in order
        await quiet(pilot)
        assert gate.query_one("#f-name", Input).value == "Li"
        assert gate.query_one("#f-phone", Input).value == "13"


# -- background sync -------------------------------------------------------------------------


@pytest.fixture
def town(tmp_path):
    from sync.testing import SyncASGITransport, TestTown, drop_repo, make_repo

    (tmp_path / "town").mkdir()
    repo = make_repo("sqlite", str(tmp_path / "town"))
    town = TestTown(repo)
    transport = SyncASGITransport(town.app)
    yield town, transport
    transport.shutdown()
    drop_repo(repo)


@pytest.fixture
def enrolled_store(settings, town):
    from sync import client as sc

    town_, transport = town
    settings.sync.timeout_s = 2.0
    s = open_store(settings, create=True)
    s.setup(SUPERVISOR, SUPERVISOR_PIN, checkpoint_name="东门卡口", checkpoint_code="CP-0101")
    s.keyring.add(s.operator, s.master, GATE, "gate", GATE_PIN)
    sc.enroll(s, "http://town", town_.new_token("gate-east"), transport=transport)
    s.lock("test")
    yield s
    s.close()


def sync_notices(app, text: str) -> int:
    return sum(text in n.message for n in app._notifications)


async def test_background_sync_uploads_updates_the_status_bar_and_reports_failure_once(
    settings, enrolled_store, town
):
    from sync.testing import free_port

    town_, transport = town
    store = enrolled_store
    app = app_for(settings, store, sync_transport=transport)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await login(pilot, GATE, GATE_PIN)
        gate = app.screen
        await scanner_types(pilot, ID)
        await quiet(pilot)
        await pilot.press("3", "6", "5", "enter")
        await quiet(pilot)
        assert len(passages(store)) == 1
        assert "待同步 1" in str(gate.query_one(StatusBar).render())
        assert "名单 无" in str(gate.query_one(StatusBar).render())

        app.sync_tick()  # what the timer does every few seconds
        await settle(pilot)
        await settle(pilot)
        record_id = passages(store)[0]["id"]
        assert record_id in town_.repo.record_hashes()  # on the town server
        bar = str(gate.query_one(StatusBar).render())
        assert "待同步 0" in bar and "名单 0分钟" in bar
        app.sync_tick()  # not due again before the interval
        await settle(pilot)
        assert sum(e["action"] == "sync" for e in store.g.query("SELECT action FROM audit")) == 1

        # The server goes away: one short notice, not one per interval.
        app.sync_transport = None
        store.kv.set("sync.server_url", f"http://127.0.0.1:{free_port()}")
        for _ in range(3):
            app.auto_sync.next_at = 0  # due now (instead of waiting for the back-off)
            app.sync_tick()
            await settle(pilot)
            await settle(pilot)
        assert sync_notices(app, "自动同步失败") == 1
        assert sync_notices(app, "连不上镇服务器") == 1
        assert store.kv.get("sync.last_error")

        # Back again: the pending record goes, and the operator hears it works again.
        await pilot.press("3", "6", "6", "enter")
        await quiet(pilot)
        app.sync_transport = transport
        store.kv.set("sync.server_url", "http://town")
        app.auto_sync.next_at = 0
        app.sync_tick()
        await settle(pilot)
        await settle(pilot)
        assert store.outbox.counts().get("pending", 0) == 0
        assert sync_notices(app, "同步已恢复") == 1
        assert "待同步 0" in str(gate.query_one(StatusBar).render())


async def test_no_background_sync_when_not_enrolled(settings, ready_store):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await login(pilot, GATE, GATE_PIN)
        app.sync_tick()
        await settle(pilot)
        assert app.auto_sync is None
        assert not [
            e for e in ready_store.g.query("SELECT action FROM audit") if e["action"] == "sync"
        ]
