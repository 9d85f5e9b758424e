"""Textual's own words in the screen language: the command palette (its footer label,
search prompt and "no matches" line) and the Ctrl+C hint. Textual has no catalogue of its own,
so the few places it writes English are overridden here and nowhere else."""

from __future__ import annotations

import dataclasses
from typing import Any

from rich.align import Align
from rich.text import Text
from textual.command import CommandList, CommandPalette
from textual.widgets.option_list import Option


class LocalCommandPalette(CommandPalette):
    """The command palette with its prompt and "no matches" line from the catalogue."""

    def __init__(self, t: Any, **kw: Any) -> None:
        super().__init__(placeholder=t("textual.palette_prompt"), **kw)
        self._no_matches_text = t("textual.no_matches")

    def _start_no_matches_countdown(self, search_value: str) -> None:
        self._stop_no_matches_countdown()

        def _show_no_matches() -> None:
            if search_value:
                self.query_one(CommandList).add_option(
                    Option(
                        Align.center(Text(self._no_matches_text, style="not bold")),
                        disabled=True,
                        id=self._NO_MATCHES,
                    )
                )
                self._list_visible = True
            else:
                self._list_visible = False

        self._no_matches_timer = self.set_timer(self._NO_MATCHES_COUNTDOWN, _show_no_matches)


def translate_palette_binding(app: Any, t: Any) -> None:
    """The footer's "palette" label (a binding Textual adds itself) in the screen language."""
    key = app.COMMAND_PALETTE_BINDING
    bindings = app._bindings.key_to_bindings.get(key, [])
    app._bindings.key_to_bindings[key] = [
        dataclasses.replace(b, description=t("textual.palette"), tooltip=t("textual.palette_tip"))
        if b.action in ("command_palette", "app.command_palette")
        else b
        for b in bindings
    ]


def help_quit(app: Any, t: Any) -> None:
    """Ctrl+C where Textual would say "Do you want to quit?" in English."""
    for key, active in app.active_bindings.items():
        if active.binding.action in ("quit", "app.quit"):
            app.notify(t("textual.help_quit", keys=key), title=t("textual.help_quit_title"))
            return
