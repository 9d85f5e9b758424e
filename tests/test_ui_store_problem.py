"""A damaged or foreign store file: the app says so on a screen that stays, and never writes."""

from __future__ import annotations

import pytest
from textual.widgets import Static

from fieldkit.ui.app import StoreProblemScreen, make_app
from tests.test_ui_app import SIZE, settle


@pytest.mark.parametrize(
    "lang, title, untouched",
    [("zh", "无法打开数据库", "未被改动"), ("en", "cannot be opened", "left untouched")],
)
async def test_corrupt_store_shows_a_lasting_problem_screen(settings, lang, title, untouched):
    settings.ui.language = lang
    settings.data_dir.mkdir(parents=True)
    content = b"this is not a database at all\n" * 10
    settings.store_path.write_bytes(content)
    app = make_app(settings)  # the app opens the store itself, as `fieldkit` does
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(50):
            await settle(pilot)
            if isinstance(app.screen, StoreProblemScreen):
                break
        screen = app.screen
        assert isinstance(screen, StoreProblemScreen)
        text = " ".join(str(w.render()) for w in screen.query(Static))
        assert title in text and untouched in text
        await pilot.press("enter", "a", "1")  # nothing typed gets anywhere
        assert isinstance(app.screen, StoreProblemScreen)
        await pilot.press("q")
        await pilot.pause()
        # None would mean the app is still running: Q must end it, with no error.
        assert app.return_code == 0, "Q did not quit"
    assert settings.store_path.read_bytes() == content
