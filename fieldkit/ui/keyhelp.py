"""Keys the footer has no room for, named in the command palette (Ctrl+P).

At 80 columns the gate's and the patrol's footers cannot show every key. Every palette command
that a key also does says the key under its title ("Ctrl+R · …"); a key a screen binds with
``show=False`` (Ctrl+R 更正, Ctrl+T 未测体温, Ctrl+Y …) that has no palette command yet gets
one, "Ctrl+Y 确认校验位", which does what the key does. The palette's 锁屏 names Ctrl+L.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any

from textual.app import SystemCommand
from textual.screen import Screen


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
