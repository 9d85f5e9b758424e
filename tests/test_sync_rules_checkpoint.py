"""Mode and rule overrides for one checkpoint: the device at that checkpoint takes them, over
the town-wide ones; a device at another checkpoint does not. Real device stores, a real town
app (SQLite and PostgreSQL), the signed update of a real sync."""

from __future__ import annotations

import pytest

from fieldkit.config import load_settings
from fieldkit.domain import Outcome
from fieldkit.gate import GateEntry, GateService
from fieldkit.store import init_store
from sync import client as sc
from sync.server import scoped
from sync.testing import SyncASGITransport, TestTown
from tests.test_sync_rules import Town, server

pytestmark = pytest.mark.usefixtures("english")


def device_at(tmp_path, code: str, town: TestTown, transport):
    settings = load_settings(None, tmp_path / code)
    settings.security.scrypt_n = 2**10
    settings.security.argon2_memory_kib, settings.security.argon2_time_cost = 1024, 1
    settings.security.argon2_parallelism, settings.security.min_pin_length = 1, 4
    settings.sync.timeout_s = 2.0
    store = init_store(settings)
    store.setup("sup", "1234", checkpoint_name=f"Gate {code}", checkpoint_code=code)
    sc.enroll(store, "http://town", town.new_token(code), transport=transport)
    return store


def sync(store, transport) -> sc.SyncReport:
    report = sc.run_sync(store, store.settings, transport=transport, operator="sup")
    assert report.ok, report.error
    return report


def admitted_at(store, temperature: float) -> bool:
    ev, _ = GateService(store).commit(
        GateEntry(
            direction="in",
            id_number="11010519491231002X",
            name="张三",
            temperature=temperature,
            code_colour="green",
            category="resident",
            source="cli",
        )
    )
    return ev.decision.outcome == Outcome.ADMIT


@pytest.fixture
def gates(repo, tmp_path):
    town = TestTown(repo)
    transport = SyncASGITransport(town.app)
    east = device_at(tmp_path, "CP-E", town, transport)
    west = device_at(tmp_path, "CP-W", town, transport)
    yield town, transport, east, west
    east.close()
    west.close()
    transport.shutdown()


def test_a_checkpoint_override_reaches_only_that_checkpoint_and_wins_there(gates):
    town, transport, east, west = gates
    default_threshold = west.settings.rules.fever_threshold
    repo = town.repo
    repo.add_changes("rules", [{"fever_threshold": 37.0, "test_validity_days": 3}], 1.0)
    scoped.push(repo, "CP-E", "rules", {"fever_threshold": 36.8}, 2.0)
    scoped.push(repo, "CP-E", "mode", "high", 2.0)
    east_report, west_report = sync(east, transport), sync(west, transport)

    assert (east.settings.rules.fever_threshold, east.settings.rules.test_validity_days) == (
        36.8,
        3,
    )
    assert east.settings.checkpoint.area_mode == "high" and east_report.mode == "high"
    assert (west.settings.rules.fever_threshold, west.settings.rules.test_validity_days) == (
        37.0,
        3,
    )
    assert west.settings.checkpoint.area_mode != "high" and west_report.mode is None
    assert not admitted_at(east, 36.9) and admitted_at(west, 36.9)

    # A later town-wide push: the checkpoint's own value still wins at CP-E, the rest follows.
    repo.add_changes("rules", [{"fever_threshold": 37.5}], 3.0)
    repo.add_changes("mode", [{"mode": "medium", "note": ""}], 3.0)
    sync(east, transport), sync(west, transport)
    assert east.settings.rules.fever_threshold == 36.8
    assert east.settings.rules.test_validity_days == west.settings.rules.test_validity_days != 3
    assert east.settings.checkpoint.area_mode == "high"
    assert west.settings.rules.fever_threshold == 37.5
    assert west.settings.checkpoint.area_mode == "medium"

    # Reopened, the device keeps what it applied.
    east.close()
    from fieldkit.store import open_store

    east2 = open_store(east.settings)
    assert east2.settings.rules.fever_threshold == 36.8
    assert east2.settings.checkpoint.area_mode == "high"
    east2.close()
    gates_east = open_store(east.settings)
    try:
        # Cleared for CP-E ({} / ""): back to the town-wide values.
        scoped.push(repo, "CP-E", "rules", {}, 4.0)
        scoped.push(repo, "CP-E", "mode", "", 4.0)
        gates_east.unlock("sup", "1234")
        report = sc.run_sync(gates_east, gates_east.settings, transport=transport, operator="sup")
        assert report.ok, report.error
        assert gates_east.settings.rules.fever_threshold == 37.5
        assert gates_east.settings.checkpoint.area_mode == "medium"
        assert default_threshold != 37.5
    finally:
        gates_east.close()


def test_cli_rules_for_one_checkpoint(tmp_path, capsys):
    town = Town(tmp_path / "town", capsys)
    try:
        path = tmp_path / "cp.json"
        path.write_text('{"fever_threshold": 36.9}', encoding="utf-8")
        code, out, err = server(
            capsys, "rules", path, "--checkpoint", "CP-E", "--data-dir", town.dir
        )
        assert (code, err) == (0, "")
        assert out.splitlines()[0].startswith("Only CP-E:")
        assert "  fever_threshold = 36.9  (until now the town-wide rules)" in out.splitlines()
        assert scoped.current(town.repo, "CP-E", "rules") == {"fever_threshold": 36.9}
        assert scoped.current(town.repo, "CP-W", "rules") is None
        assert town.repo.latest_change("rules") is None  # the town-wide rules untouched
        path.write_text("{}", encoding="utf-8")
        code, out, err = server(
            capsys, "rules", path, "--checkpoint", "CP-E", "--data-dir", town.dir
        )
        assert code == 0, err
        assert "checkpoint CP-E follows the town-wide rules again" in out
        assert "  fever_threshold: back to the town-wide rules  (was 36.9)" in out.splitlines()
        assert scoped.current(town.repo, "CP-E", "rules") == {}
    finally:
        town.close()
