"""The app's own two screens: the blank bottom of the stack, and "the store cannot be opened"."""

from __future__ import annotations

from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Static

from .typed import fieldkit_app
from .widgets.statusbar import StatusBar


class StoreProblemScreen(Screen):
    """The store cannot be opened (damaged or foreign file, no permission …): say so and stay.

    The file is never touched; the only way on is to quit and fix the cause."""

    BINDINGS = [Binding("q", "app.quit", "keys.quit"), Binding("ctrl+q", "app.quit", show=False)]

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message

    def compose(self):
        from textual.containers import Vertical
        from textual.widgets import Footer, Label

        t = fieldkit_app(self).t
        with Vertical(classes="dialog", id="store-problem"):
            yield Label(t("app.store_problem_title"), classes="dialog-title")
            yield Static(self.message, id="store-problem-message")
            yield Static(t("app.store_problem_hint"))
        yield Footer()

    def on_mount(self) -> None:
        from .widgets import translate_bindings

        translate_bindings(self, fieldkit_app(self).t)


class BlankScreen(Screen):
    """Bottom of the stack: nothing personal is ever shown here."""

    def compose(self):
        yield StatusBar()
        yield Static(fieldkit_app(self).t("app.title"), id="blank-title")
