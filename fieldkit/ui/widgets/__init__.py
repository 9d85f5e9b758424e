"""Small widgets and helpers shared by FieldKit screens."""

from __future__ import annotations

from dataclasses import replace

from .statusbar import StatusBar

__all__ = ["StatusBar", "translate_bindings"]


def translate_bindings(node, t) -> None:
    """Binding descriptions are catalogue keys ("keys.lock"); show them in the UI language."""
    table = node._bindings.key_to_bindings
    for key, bindings in table.items():
        table[key] = [
            replace(b, description=t(b.description)) if b.description.startswith("keys.") else b
            for b in bindings
        ]
    node.refresh_bindings()
