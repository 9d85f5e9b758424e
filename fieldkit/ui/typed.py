"""Typed access from a screen or widget to the FieldKit app and its store.

Textual types ``self.app`` as a plain ``App``, so ``self.app.store`` and ``self.app.settings`` are
unknown to mypy in every screen and it checks nothing behind them. Screens ask here instead::

    from .typed import fieldkit_app, store_of

    store_of(self).ledger.household(hid)      # the open store, typed as fieldkit.store.Store
    fieldkit_app(self).settings.rules         # the app, typed as FieldkitBase

``store_of`` says clearly when no store is open yet (the login screen runs before one is).

The app is typed as :class:`~.app_base.FieldkitBase`, what every part of the running
:class:`~.app.FieldkitApp` shares (and what screens may use of it), not as ``FieldkitApp``
itself: the app module imports the screen registry, which loads the screens, which import this
module, and the import contracts allow no cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.dom import DOMNode

from .app_base import FieldkitBase

if TYPE_CHECKING:
    from ..store import Store
    from ..store.keyring import Operator


def fieldkit_app(node: DOMNode) -> FieldkitBase:
    """The running app of ``node`` (a screen or widget), typed."""
    return cast(FieldkitBase, node.app)


def store_of(node: DOMNode) -> Store:
    """The app's open store; RuntimeError if none is open yet (a programming error)."""
    store = fieldkit_app(node).store
    if store is None:
        raise RuntimeError("no store is open yet")
    return store


def operator_of(node: DOMNode) -> Operator:
    """The operator logged in to the app's store; RuntimeError if none is (a programming error:
    screens that act for an operator open only after a login)."""
    operator = store_of(node).operator
    if operator is None:
        raise RuntimeError("no operator is logged in")
    return operator
