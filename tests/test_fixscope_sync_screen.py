"""The sync screen at 80x24 with records the town server rejected for their checkpoint: the
reason in Chinese (from the server's code), the selected record's reason in full below the
table, and one key (``a``) that requeues every record rejected for that reason (``q`` still
requeues the highlighted one). The real app (Textual pilot) on a real store, synced against an
in-process town server whose device scopes live in a real data directory."""

from __future__ import annotations

import time

import pytest
from textual.widgets import DataTable, Input, Static

from fieldkit.store import open_store
from fieldkit.ui.app import make_app
from fieldkit.ui.login import LoginScreen
from fieldkit.ui.sync_screen import SyncScreen
from sync import client as sc
from sync.server.app import create_app, token_hash
from sync.server.device_scope import DeviceScopes
from sync.server.town import ServerSettings, TownKeys
from sync.testing import SyncASGITransport, drop_repo, make_repo
from tests.conftest import SUPERVISOR, SUPERVISOR_PIN
from tests.reports_support import busy_day

SIZE = (80, 24)


@pytest.fixture
def ready_store(settings):
    s = open_store(settings, create=True)
    s.setup(SUPERVISOR, SUPERVISOR_PIN, checkpoint_name="东门卡口", checkpoint_code="CP-0101")
    yield s
    s.close()


async def settle(pilot) -> None:
    for _ in range(4):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


async def login(pilot) -> None:
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, LoginScreen), screen
    screen.query_one("#login-operator", Input).value = SUPERVISOR
    screen.query_one("#login-pin", Input).focus()
    await pilot.press(*SUPERVISOR_PIN, "enter")
    await settle(pilot)


async def test_rejected_for_the_checkpoint_said_in_chinese_and_requeued_with_one_key(
    settings, ready_store, tmp_path
):
    town_dir = tmp_path / "town"
    town_dir.mkdir()
    repo = make_repo("sqlite", str(town_dir))
    keys = TownKeys.generate()
    scopes = DeviceScopes(town_dir)
    app_ = create_app(keys, repo, ServerSettings(), scopes=scopes)
    transport = SyncASGITransport(app_)
    try:
        token = f"ABCDEFGHIJKLMNOPQRSTUVWX.{keys.fingerprint}"
        now = time.time()
        repo.add_device("东门平板", token_hash(token), now + 3600, now)
        sc.enroll(ready_store, "http://town", token, transport=transport)
        scopes.bind(ready_store.kv.get("sync.device_id"), ["CP-0909"])  # not this gate's code
        busy_day(ready_store)
        report = sc.run_sync(ready_store, settings, transport=transport)
        assert report.ok and report.quarantined >= 3 and report.stored == 0
        rejected = ready_store.outbox.quarantined()
        n = len(rejected)
        # One record held back for another reason: `a` leaves it alone.
        ready_store.outbox.mark_quarantined(rejected[0]["id"], "local: cannot encode (bad text)")

        ready_store.lock("test")
        app = make_app(settings, ready_store)
        app.sync_transport = transport
        async with app.run_test(size=SIZE) as pilot:
            await login(pilot)
            await pilot.press("s")
            await settle(pilot)
            screen = app.screen
            assert isinstance(screen, SyncScreen)
            table = screen.query_one("#sync-rejected", DataTable)
            assert table.row_count == n
            assert {str(table.get_row_at(i)[1]) for i in range(n)} == {"通行记录", "车辆通行"}
            cells = [str(table.get_row_at(i)[2]) for i in range(n)]
            assert all("server:" not in c and "enrolled" not in c for c in cells), cells
            scope_rows = [i for i, c in enumerate(cells) if c.startswith("服务器拒收：本设备登记")]
            assert len(scope_rows) == n - 1
            table.move_cursor(row=scope_rows[-1])
            await settle(pilot)
            shown = str(screen.query_one("#sync-reason", Static).render())
            # in full, wrapped at the screen's width: the sentence's end is there too
            flat = "".join(shown.split())
            assert "本设备登记的卡口是CP-0909，这条记录属于卡口CP-0101" in flat
            assert flat.endswith(f"按q重新排队这一条，按a把同一原因的{n - 1}条全部重新排队")
            assert "改好后把这些记录重新排队" in flat
            await pilot.press("a")
            await settle(pilot)
            assert ready_store.outbox.counts()["pending"] == n - 1
            assert ready_store.outbox.counts()["quarantined"] == 1
            assert table.row_count == 1
            assert str(table.get_row_at(0)[2]).startswith("本机无法打包这条记录")
    finally:
        transport.shutdown()
        drop_repo(repo)
