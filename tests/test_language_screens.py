"""Every screen of the app, and the alerts, rendered in Chinese: no run of three or more English
words anywhere on the terminal (what Textual would draw, read from its screenshot)."""

from __future__ import annotations

import html
import re
import time

import pytest
from textual import events
from textual.widgets import Input

from fieldkit.store import open_store
from fieldkit.ui.app import make_app
from fieldkit.ui.login import LoginScreen
from fieldkit.ui.widgets.dialogs import AlertScreen
from tests.conftest import SUPERVISOR, SUPERVISOR_PIN
from tests.test_language_leaks import english_runs
from tests.test_ui_app import settle as _settle_workers

SIZE = (120, 40)
ID = "11010519491231002X"


@pytest.fixture
def ready_store(settings):
    s = open_store(settings, create=True)
    s.setup(SUPERVISOR, SUPERVISOR_PIN, checkpoint_name="东门卡口", checkpoint_code="CP-0101")
    s.lock("test")
    yield s
    s.close()


def screen_text(app) -> str:
    """The terminal as drawn, line by line (Textual's SVG screenshot, text only)."""
    svg = app.export_screenshot()
    parts = re.findall(r"<text[^>]*>(.*?)</text>", svg, re.S)
    return "".join(html.unescape(p).replace("\xa0", " ") for p in parts)


async def settle(pilot) -> None:
    await _settle_workers(pilot, 3)


async def login(pilot) -> None:
    screen = pilot.app.screen
    assert isinstance(screen, LoginScreen), screen
    screen.query_one("#login-operator", Input).value = SUPERVISOR
    screen.query_one("#login-pin", Input).focus()
    await pilot.press(*SUPERVISOR_PIN, "enter")
    await settle(pilot)


def wedge(app, text: str) -> None:
    start = time.monotonic()
    for i, ch in enumerate([*text, "enter"]):
        event = events.Key("enter", "\r") if ch == "enter" else events.Key(ch, ch)
        event.time = start + i * 0.006
        app.post_message(event)


async def test_every_screen_and_the_alert_in_chinese(settings, ready_store):
    app = make_app(settings, ready_store)
    leaks: list[tuple[str, str]] = []

    def look(where: str) -> None:
        for run in english_runs(screen_text(app)):
            leaks.append((where, run))

    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        look("login")
        await login(pilot)
        look("home")
        seen = 0
        for entry in app.entries:
            await app.run_action(f"open_screen('{entry.id}')")
            await settle(pilot)
            look(entry.id)
            seen += 1
        assert seen >= 5, [e.id for e in app.entries]
        # The fever referral alert at the gate.
        await app.run_action("open_screen('gate')")
        await settle(pilot)
        wedge(app, ID)
        await settle(pilot)
        await pilot.press("3", "8", "2", "enter")
        await settle(pilot)
        assert isinstance(app.screen, AlertScreen)
        look("gate fever alert")
        await pilot.press("f10")
        await settle(pilot)
        look("gate after the alert")
        # The command palette.
        await pilot.press("ctrl+p")
        await pilot.pause()
        look("command palette")
    assert leaks == [], "\n".join(f"{where}: {run}" for where, run in leaks)
