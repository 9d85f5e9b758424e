"""Textual's own words (command palette label, prompt, "no matches", the Ctrl+C hint) in the
screen language, not Textual's English."""

from __future__ import annotations

import pytest
from textual.command import CommandInput, CommandList, CommandPalette
from textual.widgets import Footer

from fieldkit.store import open_store
from fieldkit.ui.app import make_app
from fieldkit.ui.registry import screen_entries
from tests.conftest import SUPERVISOR, SUPERVISOR_PIN


@pytest.fixture
def ready_store(settings):
    s = open_store(settings, create=True)
    s.setup(SUPERVISOR, SUPERVISOR_PIN, checkpoint_name="东门卡口", checkpoint_code="CP-0101")
    s.lock("test")
    yield s
    s.close()


@pytest.mark.parametrize(
    ("lang", "label", "prompt", "none"),
    [("zh", "命令", "搜索命令……", "没有匹配的命令"), ("en", "palette", "Search for", "No matches")],
)
async def test_command_palette_speaks_the_screen_language(
    settings, ready_store, lang, label, prompt, none
):
    settings.ui.language = lang
    app = make_app(settings, ready_store, entries=screen_entries(("fieldkit.ui.gate",)))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        binding = app._bindings.key_to_bindings[app.COMMAND_PALETTE_BINDING][0]
        assert binding.description == label
        footers = list(app.screen.query(Footer))
        assert footers, "the login screen has a footer"
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        assert app.screen.query_one(CommandInput).placeholder.startswith(prompt)
        await pilot.press(*"zzzqqq")
        palette = app.screen
        shown = ""
        for _ in range(30):  # Textual waits half a second before saying "no matches"
            await pilot.pause(0.1)
            try:
                option = palette.query_one(CommandList).get_option(palette._NO_MATCHES)
            except Exception:  # noqa: BLE001 - not there yet
                continue
            shown = option.prompt.renderable.plain
            break
        assert none in shown, shown
        if lang == "zh":
            assert "No matches" not in shown


async def test_ctrl_c_hint_is_in_the_screen_language(settings, ready_store):
    app = make_app(settings, ready_store, entries=screen_entries(("fieldkit.ui.gate",)))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        app.action_help_quit()
        await pilot.pause()
        notes = [(n.title, n.message) for n in app._notifications]
        assert notes and notes[-1][0] == "要退出吗？" and "退出程序" in notes[-1][1]
        assert not any("Do you want" in (title or "") for title, _ in notes)
