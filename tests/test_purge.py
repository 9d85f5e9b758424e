"""Retention: synced events past ``privacy.retention_days`` go; unsynced ones never do."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import pytest

from fieldkit.errors import PermissionDenied
from fieldkit.reports import plan_purge, purge
from tests.conftest import SUPERVISOR, SUPERVISOR_PIN
from tests.reports_support import passages_at, run_cli


def ids(store, where: str) -> list[str]:
    return [r["id"] for r in store.g.query(f"SELECT id FROM passages WHERE {where} ORDER BY ts")]


def old_and_new(store) -> dict[str, list[str]]:
    """40-day-old records in every sync state, and recent synced ones (retention is 30 days)."""
    now = datetime.now().astimezone()
    passages_at(store, now - timedelta(days=40), 5, approval_ref="PURGE-MARKER-OLD")
    passages_at(store, now - timedelta(days=2), 3, approval_ref="recent")
    old = ids(store, "approval_ref = 'PURGE-MARKER-OLD'")
    recent = ids(store, "approval_ref = 'recent'")
    store.outbox.mark_synced(old[:3] + recent, "batch-1", kind="passage")
    store.outbox.mark_quarantined(old[4], "server: conflict")
    return {
        "old_synced": old[:3],
        "old_pending": [old[3]],
        "old_quarantined": [old[4]],
        "recent_synced": recent,
    }


def test_purge_deletes_only_old_synced_events(store):
    groups = old_and_new(store)
    plan = plan_purge(store)
    assert plan.retention_days == 30
    assert plan.cutoff == (date.today() - timedelta(days=30)).isoformat()
    assert plan.to_delete == {"passages": 3} and plan.kept_unsynced == {"passages": 2}
    assert store.g.scalar("SELECT count(*) FROM passages") == 8  # a plan deletes nothing

    done = purge(store)
    assert done.done and done.to_delete == {"passages": 3}
    left = set(ids(store, "1 = 1"))
    assert left == set(groups["old_pending"] + groups["old_quarantined"] + groups["recent_synced"])
    # The unsynced old records are intact and still on their way to the town.
    assert [i.record_id for i in store.outbox.pending(10)] == groups["old_pending"]
    assert [q["id"] for q in store.outbox.quarantined()] == groups["old_quarantined"]

    entry = store.audit.entries(1)[0]
    assert entry["action"] == "purge" and entry["operator"] == SUPERVISOR
    assert entry["detail"]["deleted"] == {"passages": 3}
    assert entry["detail"]["kept_unsynced"] == {"passages": 2}
    assert store.audit.verify()[1] is None
    assert purge(store).to_delete == {}  # nothing more to do


def test_retention_days_come_from_the_settings(store):
    old_and_new(store)
    store.settings.privacy.retention_days = 1
    assert plan_purge(store).to_delete == {"passages": 6}  # the recent ones are 2 days old
    store.settings.privacy.retention_days = 60
    assert plan_purge(store).to_delete == {}


def test_purged_data_does_not_linger_in_the_file(store, settings):
    when = datetime.now().astimezone() - timedelta(days=40)
    passages_at(store, when, 20, approval_ref="PURGE-ME")
    passages_at(store, when, 2, approval_ref="KEEP-ME")  # old but never synced
    store.outbox.mark_synced(ids(store, "approval_ref = 'PURGE-ME'"), "b", kind="passage")
    purge(store)

    def file_bytes() -> bytes:
        return b"".join(
            p.read_bytes() for p in settings.store_path.parent.glob(settings.store_path.name + "*")
        )

    raw = file_bytes()
    assert b"KEEP-ME" in raw and b"PURGE-ME" not in raw


def test_only_a_supervisor_purges(store):
    old_and_new(store)
    store.keyring.add(store.operator, store.master, "李强", "gate", "1357")
    store.lock()
    store.unlock("李强", "1357")
    with pytest.raises(PermissionDenied, match="李强 不是负责人"):
        purge(store)
    assert store.g.scalar("SELECT count(*) FROM passages") == 8


def test_purge_cli_dry_run_confirmation_and_yes(tmp_path):
    run_cli(
        tmp_path,
        "init",
        "--checkpoint-name",
        "东门卡口",
        "--checkpoint-code",
        "CP-1",
        "--supervisor",
        SUPERVISOR,
        pin=SUPERVISOR_PIN,
    )
    # Old records, synced and not: written through the store as the sync client would.
    from fieldkit.store import open_store
    from tests.conftest import make_settings

    settings = make_settings(tmp_path / "home")
    store = open_store(settings)
    store.unlock(SUPERVISOR, SUPERVISOR_PIN)
    old_and_new(store)
    store.close()

    r = run_cli(tmp_path, "purge", "--dry-run", "--json")
    plan = json.loads(r.stdout)
    assert plan["total"] == 3 and plan["total_kept"] == 2 and not plan["done"]
    text = run_cli(tmp_path, "purge", "--dry-run").stdout
    assert "3 条已同步" in text and "2 条早于该日期但尚未同步" in text
    r = run_cli(tmp_path, "purge", pin=SUPERVISOR_PIN)  # no terminal, no --yes: refuse
    assert r.returncode == 2 and "--yes" in r.stderr
    r = run_cli(tmp_path, "--lang", "en", "purge", "--yes", pin="9999")
    assert r.returncode == 4 and "wrong PIN" in r.stderr
    r = run_cli(tmp_path, "purge", "--yes", "--json", pin=SUPERVISOR_PIN)
    assert r.returncode == 0 and json.loads(r.stdout)["to_delete"] == {"passages": 3}
    assert json.loads(run_cli(tmp_path, "status", "--json").stdout)["passages"] == 5
