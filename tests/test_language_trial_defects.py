"""Wording and layout defects found by the new-user trial (report-trial items 17, 26, 16, 22, 27).

Each test drives the real thing (catalogues, the CLI on a real store, the TUI under Pilot at
80×24) and failed before its fix.
"""

from __future__ import annotations

import re

import pytest
from textual.widgets import Label

from fieldkit.i18n import LANGUAGES, catalogue, t
from fieldkit.store import open_store
from fieldkit.ui.app import make_app
from fieldkit.ui.login import SetupScreen
from fieldkit.ui.registry import screen_entries

SIZE = (80, 24)

# -- 17: the PIN length comes from security.min_pin_length, never from a catalogue ----------

# A length stated with a number: "至少 4 位", "4 位 PIN", "at least 4 characters", "(at least 4)".
_LENGTH = re.compile(
    r"\d+\s*(位|个字符|digits?|characters?|chars?)|(至少|最少|最多|at least|at most)\s*\d",
    re.IGNORECASE,
)
_PIN = re.compile(r"PIN|口令|密码", re.IGNORECASE)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_no_catalogue_text_states_a_pin_length_except_through_a_parameter(lang):
    stated = {
        key: text
        for key, text in catalogue(lang).items()
        if _PIN.search(text) and _LENGTH.search(text)
    }
    assert stated == {}


@pytest.mark.parametrize("n", [6, 8])
async def test_setup_form_label_states_the_configured_pin_length(settings, n):
    settings.security.min_pin_length = n
    store = open_store(settings, create=True)
    app = make_app(settings, store, entries=screen_entries(("fieldkit.ui.gate",)))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, SetupScreen)
        labels = [str(label.render()) for label in app.screen.query(Label)]
        pin_label = next(text for text in labels if "PIN" in text)
        assert f"{n}" in pin_label and "4" not in pin_label, pin_label
    store.close()


def test_pin_length_messages_take_their_number():
    assert "8" in t("setup.pin", "zh", n=8) and "8" in t("setup.pin", "en", n=8)
    assert "64" in t("err.pin_long", "zh", max=64)
