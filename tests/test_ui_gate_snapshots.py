"""SVG snapshots of the gate screen at 80×24, Chinese and English.

Clocks are frozen (records at 08:30 today), the cursor does not blink, and only the gate
engineer's screens are registered, so the pictures are the same on every run. Regenerate with
``pytest tests/test_ui_gate_snapshots.py --snapshot-update`` and look at them before committing.
"""

# ruff: noqa: F811  (the ready_store fixture is imported from test_ui_app)
from __future__ import annotations

import os
from datetime import date, datetime
from datetime import time as dtime

import pytest
from textual.widgets import Input

from fieldkit.crypto import blind_index
from tests.test_ui_app import GATE, GATE_PIN, app_for, ready_store, settle, wedge  # noqa: F401

ID = "11010519491231002X"
FROZEN = datetime.combine(date.today(), dtime(8, 30)).astimezone()


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch):
    from fieldkit.store import passages

    monkeypatch.setattr(passages, "_now", lambda: FROZEN)


@pytest.fixture(autouse=True)
def shift_open(ready_store):
    """A gate at work: a shift is open (no "no shift" warning over the picture)."""
    from fieldkit.reports.shiftwork import open_shift
    from tests.conftest import SUPERVISOR, SUPERVISOR_PIN

    ready_store.unlock(SUPERVISOR, SUPERVISOR_PIN)
    open_shift(ready_store, "早班", by=ready_store.operator)
    ready_store.lock("test")


def gate_app(settings, store, lang: str):
    settings.ui.language = lang
    return app_for(settings, store)


async def person(pilot, temperature: str) -> None:
    """Log in, scan the ID with a wedge scanner, type the temperature, green code, Enter."""
    app = pilot.app
    await pilot.pause()
    app.screen.query_one("#login-operator", Input).value = GATE
    app.screen.query_one("#login-pin", Input).value = GATE_PIN
    app.screen.query_one("#login-pin", Input).focus()
    await pilot.press("enter")
    await settle(pilot)
    for field in app.screen.query(Input):
        field.cursor_blink = False
    wedge(app, ID)
    await settle(pilot)
    await pilot.press(*temperature, "f5", "enter")
    await settle(pilot)
    app.refresh_status()  # the bar as it stands now, not as a refresh from before the login saw it
    await settle(pilot)
    for field in app.screen.query(Input):
        field.cursor_blink = False
    await pilot.pause()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_snapshot_admit(snap_compare, settings, ready_store, lang):
    """A reviewer should see: the status bar (东门卡口 CP-0101, normal mode, 李明), an empty form
    ready for the next person with focus on the temperature, a green banner 放行/ADMIT with the
    reason and the masked person (110105********002X), today's counters with in 1 / inside 1,
    and one masked row (08:30) in the recent passages table."""
    app = gate_app(settings, ready_store, lang)
    assert snap_compare(app, terminal_size=(80, 24), run_before=lambda p: person(p, "365"))


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_snapshot_fever_referral(snap_compare, settings, ready_store, lang):
    """A reviewer should see: the referral dialog over the gate screen — 38.2 °C fever, the steps
    (temporary isolation, call 120, do not let the person leave, report) and "F10" as the only
    way on; behind it the purple 转诊/REFER banner."""
    app = gate_app(settings, ready_store, lang)
    assert snap_compare(app, terminal_size=(80, 24), run_before=lambda p: person(p, "382"))


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_snapshot_keyperson_hit(snap_compare, settings, ready_store, lang):
    """A reviewer should see: the dialog for a key-person list hit (category 密接): hold the
    person and report to the command office; F10 to acknowledge."""
    ready_store.unlock(GATE, GATE_PIN)
    key = os.urandom(32)
    ready_store.secrets.set("town_index_key", key)
    ready_store.keypersons.apply([{"id_hash": blind_index(key, ID), "category": "密接"}])
    ready_store.lock("test")
    app = gate_app(settings, ready_store, lang)
    assert snap_compare(app, terminal_size=(80, 24), run_before=lambda p: person(p, "365"))
