"""The screen registry: every UI module adds its screens by listing them in ``SCREENS``.

The app builds its navigation keys, the command palette and the first screen after login from
:func:`screen_entries`; a module not written yet is skipped, so the shell runs on its own.

Start-up must not pay for screens nobody has opened yet (the supervisor screens pull in openpyxl
and plotext, hundreds of milliseconds on a Pi). So by default the registry *reads* each module's
``SCREENS = [ScreenEntry("id", "title.key", Factory, ("role", ...), "f2")]`` from its source
(the metadata must be literals, as every module writes it) and gives each entry a
:class:`LazyScreen` factory that imports the module the first time the screen is opened. A module
whose ``SCREENS`` cannot be read that way is imported as before, so nothing breaks if someone
builds the list differently.

The app's own screen modules are loaded with plain imports (:data:`BUILTIN_MODULES`, one small
loader each, so import-linter sees them); only a plug-in module that a caller names explicitly
(``screen_entries(("my_plugin.screens",))``) is imported by its name.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .screen_entry import ScreenEntry

if TYPE_CHECKING:
    from textual.screen import Screen

__all__ = [
    "BUILTIN_MODULES",
    "HOME_BY_ROLE",
    "PROBLEMS",
    "SCREEN_MODULES",
    "LazyScreen",
    "ScreenEntry",
    "ScreenModuleError",
    "describe_module",
    "home_entry",
    "load_module",
    "module_exists",
    "screen_entries",
]


# The app's own screen modules, each loaded by a plain import the first time it is needed.
def _gate() -> ModuleType:
    from . import gate

    return gate


def _vehicle() -> ModuleType:
    from . import vehicle

    return vehicle


def _patrol() -> ModuleType:
    from . import patrol

    return patrol


def _monitoring() -> ModuleType:
    from . import monitoring

    return monitoring


def _supervisor() -> ModuleType:
    from . import supervisor

    return supervisor


BUILTIN_MODULES: dict[str, Callable[[], ModuleType]] = {
    "fieldkit.ui.gate": _gate,
    "fieldkit.ui.vehicle": _vehicle,
    "fieldkit.ui.patrol": _patrol,
    "fieldkit.ui.monitoring": _monitoring,
    "fieldkit.ui.supervisor": _supervisor,
}

SCREEN_MODULES = tuple(BUILTIN_MODULES)


def load_module(name: str) -> ModuleType:
    """A screen module: the app's own by a plain import, a plug-in a caller named by its name."""
    builtin = BUILTIN_MODULES.get(name)
    if builtin is not None:
        return builtin()
    return importlib.import_module(name)


# After login the operator lands on the first screen of this list their role may open.
HOME_BY_ROLE = {
    "gate": ("gate",),
    "patrol": ("patrol", "monitoring"),
    "supervisor": ("supervisor", "gate"),
}


# Modules that exist but failed to import: name → error (the app shows them as a notice).
PROBLEMS: dict[str, str] = {}


class ScreenModuleError(Exception):
    """A lazily described screen's module failed to import, or no longer lists the screen."""

    def __init__(self, module: str, problem: str) -> None:
        super().__init__(f"{module}: {problem}")
        self.module, self.problem = module, problem


class LazyScreen:
    """A factory that imports ``module`` on first use and builds its screen ``screen_id`` with
    the factory the module's own ``SCREENS`` gives (so the module stays the one truth)."""

    def __init__(self, module: str, screen_id: str) -> None:
        self.module, self.screen_id = module, screen_id

    def resolve(self) -> Callable[[], Screen]:
        try:
            mod = load_module(self.module)
        except Exception as exc:  # reported to the operator; the app carries on
            PROBLEMS[self.module] = f"{type(exc).__name__}: {exc}"
            raise ScreenModuleError(self.module, PROBLEMS[self.module]) from exc
        for entry in getattr(mod, "SCREENS", ()):
            if entry.id == self.screen_id:
                return entry.factory
        raise ScreenModuleError(self.module, f"no screen {self.screen_id!r} in its SCREENS")

    def __call__(self) -> Screen:
        return self.resolve()()

    def __repr__(self) -> str:
        return f"LazyScreen({self.module!r}, {self.screen_id!r})"


_FIELDS = ("id", "title_key", "factory", "roles", "key")


_SCREENS_ASSIGNED = re.compile(r"^SCREENS\s*[:=]", re.MULTILINE)
_CALL = re.compile(r"\bScreenEntry\(")


def _call_text(source: str, start: int) -> str | None:
    """The text of the call starting at ``start`` (up to its closing parenthesis)."""
    depth = 0
    for i in range(start, min(len(source), start + 2000)):
        ch = source[i]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return source[start : i + 1]
    return None


def _literal_entries(name: str, source: str) -> list[ScreenEntry] | None:
    """The module's ``ScreenEntry(...)`` calls with literal metadata, or None when they cannot
    be read without running the module (then the caller imports it).

    Only the calls themselves are parsed (parsing whole modules costs more than it saves)."""
    if not _SCREENS_ASSIGNED.search(source):
        return None
    entries: list[ScreenEntry] = []
    for match in _CALL.finditer(source):
        text = _call_text(source, match.start())
        if text is None:
            return None
        try:
            node = ast.parse(text, mode="eval").body
        except SyntaxError:
            return None
        if not isinstance(node, ast.Call) or any(isinstance(a, ast.Starred) for a in node.args):
            return None
        args: dict[str | None, ast.expr] = dict(zip(_FIELDS, node.args, strict=False))
        args.update({k.arg: k.value for k in node.keywords})
        if None in args:
            return None
        try:
            meta: dict[str | None, Any] = {
                k: ast.literal_eval(v) for k, v in args.items() if k != "factory"
            }
        except ValueError:
            return None
        if not isinstance(meta.get("id"), str) or not isinstance(meta.get("title_key"), str):
            return None
        roles = meta.get("roles", ())
        entries.append(
            ScreenEntry(
                meta["id"],
                meta["title_key"],
                LazyScreen(name, meta["id"]),
                tuple(roles) if isinstance(roles, (tuple, list)) else (),
                meta.get("key"),
            )
        )
    return entries or None


def describe_module(name: str) -> list[ScreenEntry] | None:
    """A module's screens without importing it; None when it has to be imported to know."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    try:
        source = Path(spec.origin).read_text(encoding="utf-8")
    except OSError:
        return None
    return _literal_entries(name, source)


def module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def screen_entries(
    modules: tuple[str, ...] = SCREEN_MODULES, *, lazy: bool = True
) -> list[ScreenEntry]:
    """Every module's ``SCREENS``, in module order; modules not yet written are skipped, and
    modules that fail to import are skipped too and listed in ``PROBLEMS``.

    ``lazy`` (the default) reads the metadata from the source and imports a module only when one
    of its screens is opened; ``lazy=False`` imports every module now (as tests of one module's
    screens may want)."""
    entries: list[ScreenEntry] = []
    seen: set[str] = set()
    for name in modules:
        described = describe_module(name) if lazy else None
        if described is None:
            if not module_exists(name):
                continue
            try:
                module = load_module(name)
            except Exception as exc:  # noqa: BLE001 - one broken screen must not stop the gate
                PROBLEMS[name] = f"{type(exc).__name__}: {exc}"
                continue
            described = list(getattr(module, "SCREENS", ()))
        for entry in described:
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
