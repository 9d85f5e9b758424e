"""SVG snapshots of the patrol and monitoring screens at 80×24, Chinese and English.

The monitoring clock is frozen (3 April 2022, 08:30) and inputs do not blink, so the pictures are
the same on every run. Regenerate with ``pytest tests/test_ui_patrol_snapshots.py
--snapshot-update`` and look at them before committing.
"""

# ruff: noqa: F811  (fixtures imported from other test modules)
from __future__ import annotations

import pytest
from textual.widgets import DataTable, Input

from tests.test_ui_app import PATROL, PATROL_PIN, ready_store, settle  # noqa: F401
from tests.test_ui_monitoring import frozen_clock  # noqa: F401
from tests.test_ui_monitoring import seed as seed_monitoring
from tests.test_ui_patrol import patrol_app, seed


async def login_patrol(pilot) -> None:
    app = pilot.app
    await pilot.pause()
    app.screen.query_one("#login-operator", Input).value = PATROL
    app.screen.query_one("#login-pin", Input).value = PATROL_PIN
    app.screen.query_one("#login-pin", Input).focus()
    await pilot.press("enter")
    await settle(pilot)


async def visited(pilot) -> None:
    await login_patrol(pilot)
    pilot.app.screen.query_one("#households", DataTable).focus()
    await pilot.press("down", "f6")
    await settle(pilot)
    await pilot.press("down", "f7")
    await settle(pilot)
    pilot.app.screen.query_one("#households", DataTable).move_cursor(row=0)
    pilot.app.clear_notifications()
    await pilot.pause()


async def monitoring(pilot) -> None:
    await login_patrol(pilot)
    await pilot.press("f9")
    await settle(pilot)
    # The screen's tables fill in a worker: the picture is taken once it has finished (in one
    # CI run the columns were caught before the rows had widened them).
    await pilot.app.workers.wait_for_complete()
    await settle(pilot)
    pilot.app.clear_notifications()
    await pilot.pause()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_snapshot_patrol_list(snap_compare, settings, ready_store, lang):
    """A reviewer should see: the status bar with the patrol worker 赵六; on the left 3栋 1单元
    0/3 and 3栋 2单元 0/1; on the right rooms 101 (2 persons, flag 独居老人/alone), 102 (nobody
    home), 1001 (refused); the coverage line 本单元 0/3; F5 visit, F6 nobody, F7 refused, F8 in
    the footer."""
    seed(ready_store)
    app = patrol_app(settings, ready_store, lang)
    assert snap_compare(app, terminal_size=(80, 24), run_before=visited)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_snapshot_monitoring(snap_compare, settings, ready_store, lang):
    """A reviewer should see: two people due for the morning reading (张*, 李*, masked), their
    measure and planned end, the summary line (待测 2, 18 open alerts), the alerts table with
    missed windows (漏测/missed), and the line saying 李* waits for release with F7."""
    seed_monitoring(ready_store)
    app = patrol_app(settings, ready_store, lang)
    assert snap_compare(app, terminal_size=(80, 24), run_before=monitoring)
