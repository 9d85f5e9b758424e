"""Screens reach the app and the store through typed accessors (fieldkit/ui/typed.py)."""

from __future__ import annotations

from fieldkit.store import Store
from fieldkit.ui.app import FieldkitApp, make_app
from fieldkit.ui.typed import fieldkit_app, store_of
from tests.test_ui_app import SIZE, ready_store, settle  # noqa: F401


async def test_a_screen_gets_the_app_and_its_store_typed(
    settings,
    ready_store,  # noqa: F811  (the fixture imported above)
):
    app = make_app(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        assert fieldkit_app(screen) is app and isinstance(fieldkit_app(screen), FieldkitApp)
        store = store_of(screen)
        assert store is ready_store and isinstance(store, Store)
        app.store = None
        try:
            store_of(screen)
        except RuntimeError as err:
            assert "no store" in str(err)
        else:
            raise AssertionError("store_of must refuse when no store is open")
        app.store = ready_store
