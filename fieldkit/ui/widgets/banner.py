"""The gate's large decision banner: outcome word and every reason, coloured by outcome.

Used by the gate and vehicle screens; every line is shown with ID numbers masked.
"""

from __future__ import annotations

from typing import Any

from textual.markup import escape
from textual.reactive import reactive
from textual.widgets import Static

from ...gate import scrub_ids
from ...i18n import reason_text


def decision_lines(decision: Any, t: Any, lang: str) -> list[str]:
    """A decision's reasons, one line each; alerts marked with "!"."""
    return [
        ("! " if r.alert else "· ") + reason_text(r.code, r.params, lang) for r in decision.reasons
    ]


class DecisionBanner(Static):
    """The large decision: outcome word and every reason; colour by outcome."""

    outcome: reactive[str] = reactive("none")

    def watch_outcome(self, old: str, new: str) -> None:
        self.remove_class(f"-{old}")
        self.add_class(f"-{new}")

    def show(self, outcome: str, title: str, lines: list[str]) -> None:
        self.outcome = outcome
        self.title_text, self.lines = title, list(lines)
        spaced = " ".join(title) if len(title) <= 4 else title
        shown = [escape(scrub_ids(x)) for x in lines]
        self.update("\n".join([f"[b]{escape(scrub_ids(spaced))}[/b]", *shown]))

    def note(self, text: str) -> None:
        self.show(
            self.outcome, getattr(self, "title_text", ""), [*getattr(self, "lines", []), text]
        )
