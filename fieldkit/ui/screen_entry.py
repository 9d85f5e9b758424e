"""One line of the screen registry: a screen's id, title, factory, roles and key.

Its own module so that screen modules (which list their ``SCREENS``) and the registry (which
loads them) do not import each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from textual.screen import Screen


@dataclass(frozen=True)
class ScreenEntry:
    id: str  # "gate", "vehicle", "patrol", "monitoring", "supervisor", "sync", "reports", ...
    title_key: str  # i18n key of its title
    factory: Callable[[], Screen]  # screens reach app.store / app.settings / app.t / app.lang
    roles: tuple[str, ...]  # operator roles that may open it ("gate", "patrol", "supervisor")
    key: str | None = None  # global key binding, e.g. "f2"
