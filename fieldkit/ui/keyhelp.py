"""Keys the footer has no room for, named in the command palette (Ctrl+P).

At 80 columns the gate's and the patrol's footers cannot show every key. Every palette command
that a key also does says the key under its title ("Ctrl+R · …"); a key a screen binds with
``show=False`` (Ctrl+R 更正, Ctrl+T 未测体温, Ctrl+Y …) that has no palette command yet gets
one, "Ctrl+Y 确认校验位", which does what the key does. The palette's 锁屏 names Ctrl+L.

Keys a new worker needs in the first hour but the footer does not show (``show=False``) are
also named on the screen itself, in one line above the footer (:func:`hidden_keys_line`:
"^r 更正上条  ^t 未测体温  ^y 确认校验位 … 更多：^p"), written as the footer writes keys.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import partial
from typing import Any

from rich.cells import cell_len
from textual.app import SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Static

from .typed import fieldkit_app


def key_label(key: str) -> str:
    """``ctrl+r`` → ``Ctrl+R``, ``f7`` → ``F7`` (the first of several keys)."""
    first = key.split(",")[0].strip()
    return "+".join(p.capitalize() if len(p) > 1 else p.upper() for p in first.split("+"))


def _screen_keys(app: Any, screen: Screen) -> list[tuple[str, str, str, bool]]:
    """(key label, description, action, shown in the footer) of the screen's own keys."""
    found: list[tuple[str, str, str, bool]] = []
    actions: set[str] = set()
    for key, bindings in screen._bindings.key_to_bindings.items():
        for b in bindings:
            if not b.id or not b.description or b.action in actions:
                continue
            text = app.t(b.description) if b.description.startswith("keys.") else b.description
            actions.add(b.action)
            found.append((key_label(key), text, b.action, b.show))
    return found


def with_keys(app: Any, screen: Screen, commands: Iterable[SystemCommand]) -> list[SystemCommand]:
    keys = _screen_keys(app, screen)
    hidden = [(label, text, action) for label, text, action, shown in keys if not shown]
    by_title = {text: label for label, text, _, _ in keys}
    by_title[app.t("palette.lock")] = key_label("ctrl+l")
    out: list[SystemCommand] = []
    named: set[str] = set()
    for command in commands:
        label = by_title.get(command.title)
        if label:
            named.add(command.title)
            command = command._replace(help=app.t("keyhelp.key", keys=label, help=command.help))
        out.append(command)
    for label, text, action in hidden:
        if text not in named:
            out.append(
                SystemCommand(
                    text,
                    app.t("keyhelp.key", keys=label, help=app.t("keyhelp.help")),
                    partial(app.run_action, action, screen),
                )
            )
    return out


_OPEN_SCREEN = re.compile(r"^open_screen\('([a-z_]+)'\)$")


def _screen_key_target(app: Any, namespace: Any, binding: Binding) -> str | None:
    """The screen an app key opens (F2 卡口登记, F3 车辆登记 …), or None for any other key."""
    m = _OPEN_SCREEN.match(binding.action)
    return m.group(1) if m and namespace is app else None


def footer_bindings(app: Any, screen: Screen, bindings: dict[str, Any]) -> dict[str, Any]:
    """What the footer of a crowded screen shows: its own keys, not the app's keys to other
    screens (those are named in the :class:`KeyHint` line, as room allows)."""
    return {
        key: active
        for key, active in bindings.items()
        if not (active.binding.show and _screen_key_target(app, active.node, active.binding))
    }


def hint_parts(app: Any, screen: Screen) -> list[str]:
    """The keys the footer does not show, as the footer writes them ("^r 更正上条"): the
    screen's own keys bound with ``show=False``, then the app's keys to the other screens this
    operator may open."""
    parts: list[str] = []
    seen: set[str] = set()
    for bindings in screen._bindings.key_to_bindings.values():
        for b in bindings:
            if b.show or not b.id or not b.description or b.action in seen:
                continue
            seen.add(b.action)
            text = app.t(b.description) if b.description.startswith("keys.") else b.description
            parts.append(f"{app.get_key_display(b)} {text}")
    allowed = getattr(app, "allowed", None)
    entries = {e.id: e for e in getattr(app, "entries", [])}
    for bindings in app._bindings.key_to_bindings.values():
        for b in bindings:
            target = _screen_key_target(app, app, b)
            entry = entries.get(target or "")
            if entry is None or not b.show:
                continue
            if getattr(app, "_installed_screens", {}).get(target) is screen:
                continue  # the screen on show: its key does nothing here
            if allowed is not None and not allowed(entry):
                continue
            parts.append(f"{app.get_key_display(b)} {app.t(entry.title_key)}")
    return parts


def hidden_keys_line(app: Any, screen: Screen, width: int = 80) -> str:
    """:func:`hint_parts` in one line of ``width`` cells, in order as long as they fit, and
    the palette's key for everything else ("更多：^p")."""
    palette = app.get_key_display(Binding(app.COMMAND_PALETTE_BINDING, "command_palette"))
    more = app.t("fixturnback.hint_more", keys=palette)
    line: list[str] = []
    used = cell_len(more)
    for part in hint_parts(app, screen):
        if used + cell_len(part) + 2 > width:
            break
        line.append(part)
        used += cell_len(part) + 2
    return "  ".join([*line, more])


class KeyHint(Static):
    """One line above the footer: the keys it has no room for (:func:`hidden_keys_line`)."""

    DEFAULT_CSS = """
    KeyHint { height: 1; padding: 0 1; color: $text-muted; text-wrap: nowrap; }
    """

    def on_mount(self) -> None:
        self.show_keys()

    def on_resize(self) -> None:
        self.show_keys()

    def show_keys(self) -> None:
        app = fieldkit_app(self)
        width = self.content_region.width or app.size.width - 2
        self.update(hidden_keys_line(app, self.screen, width))
