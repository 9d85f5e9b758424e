"""Typed access from a screen or widget to the FieldKit app and its store.

Textual types ``self.app`` as a plain ``App``, so ``self.app.store`` and ``self.app.settings`` are
``Any`` in every screen and mypy checks nothing behind them. Screens ask here instead::

    from .typed import fieldkit_app, store_of

    store_of(self).ledger.household(hid)      # the open store, typed as fieldkit.store.Store
    fieldkit_app(self).settings.rules         # the app, typed as FieldkitApp

``store_of`` says clearly when no store is open yet (the login screen runs before one is).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.dom import DOMNode

if TYPE_CHECKING:
    from ..store import Store
    from .app import FieldkitApp


def fieldkit_app(node: DOMNode) -> FieldkitApp:
    """The running app of ``node`` (a screen or widget), typed."""
    return cast("FieldkitApp", node.app)


def store_of(node: DOMNode) -> Store:
    """The app's open store; RuntimeError if none is open yet (a programming error)."""
    store = fieldkit_app(node).store
    if store is None:
        raise RuntimeError("no store is open yet")
    return cast("Store", store)
