"""Locking the app drops the ID numbers the key-person hash cache holds (issue 14: nothing
personal is left readable in a locked device's memory beyond what the store keeps sealed)."""

from __future__ import annotations

import pytest

from fieldkit.gate import HASHES
from tests.test_ui_app import GATE, GATE_PIN, SIZE, app_for, login, ready_store, settle  # noqa: F401


@pytest.mark.asyncio
async def test_locking_forgets_the_hashed_id_numbers(settings, ready_store):  # noqa: F811
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await login(pilot, GATE, GATE_PIN)
        HASHES(b"k" * 32, "11010519491231002X")
        assert HASHES._items
        await pilot.press("ctrl+l")
        await settle(pilot)
        assert not app.store.is_unlocked
        assert not HASHES._items
