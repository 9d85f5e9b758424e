"""The screen registry: every UI module adds its screens by listing them in ``SCREENS``.

The app builds its navigation keys, the command palette and the first screen after login from
:func:`screen_entries`; a module not written yet is skipped, so the shell runs on its own.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from textual.screen import Screen


@dataclass(frozen=True)
class ScreenEntry:
    id: str  # "gate", "vehicle", "patrol", "monitoring", "supervisor", "sync", "reports", ...
    title_key: str  # i18n key of its title
    factory: Callable[[], Screen]  # screens reach app.store / app.settings / app.t / app.lang
    roles: tuple[str, ...]  # operator roles that may open it ("gate", "patrol", "supervisor")
    key: str | None = None  # global key binding, e.g. "f2"


SCREEN_MODULES = ("fieldkit.ui.gate", "fieldkit.ui.vehicle", "fieldkit.ui.patrol",
                  "fieldkit.ui.monitoring", "fieldkit.ui.supervisor")

# After login the operator lands on the first screen of this list their role may open.
HOME_BY_ROLE = {"gate": ("gate",), "patrol": ("patrol", "monitoring"),
                "supervisor": ("supervisor", "gate")}


# Modules that exist but failed to import: name → error (the app shows them as a notice).
PROBLEMS: dict[str, str] = {}


def screen_entries(modules: tuple[str, ...] = SCREEN_MODULES) -> list[ScreenEntry]:
    """Every module's ``SCREENS``, in module order; modules not yet written are skipped, and
    modules that fail to import are skipped too and listed in ``PROBLEMS``."""
    entries: list[ScreenEntry] = []
    seen: set[str] = set()
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # the module exists but something it imports is missing
                PROBLEMS[name] = f"{type(exc).__name__}: {exc}"
            continue
        except Exception as exc:  # noqa: BLE001 - one broken screen must not stop the gate
            PROBLEMS[name] = f"{type(exc).__name__}: {exc}"
            continue
        for entry in getattr(module, "SCREENS", ()):
            if entry.id not in seen:
                seen.add(entry.id)
                entries.append(entry)
    return entries


def home_entry(entries: list[ScreenEntry], role: str) -> ScreenEntry | None:
    """The screen an operator of ``role`` lands on after login."""
    allowed = [e for e in entries if role in e.roles]
    by_id = {e.id: e for e in allowed}
    for wanted in HOME_BY_ROLE.get(role, ()):
        if wanted in by_id:
            return by_id[wanted]
    return allowed[0] if allowed else None
