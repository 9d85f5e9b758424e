"""Device store ↔ town server: enroll, sync, and every fault the field meets.

After each fault and a recovery run, every record is on the server exactly once (ids and content
hashes equal on both sides) and nothing is lost on the device.
"""

from __future__ import annotations

import random

import httpx
import pytest

from fieldkit.config import load_settings
from fieldkit.domain import Decision, Outcome
from fieldkit.store import PassageInput, init_store
from sync import client as sc
from sync.testing import (
    CutProxy,
    LoopbackServer,
    StallServer,
    SyncASGITransport,
    TestTown,
    free_port,
)
from tests.store_support import resealed

pytestmark = pytest.mark.usefixtures("english")  # asserts the English messages

ADMIT = Decision(Outcome.ADMIT, ())


# ``repo`` (both backends) and ``sqlite_repo`` come from tests/conftest.py.


@pytest.fixture
def store(tmp_path):
    (tmp_path / "town").mkdir(exist_ok=True)
    settings = load_settings(None, tmp_path / "device")
    settings.security.scrypt_n = 2**10
    settings.security.argon2_memory_kib, settings.security.argon2_time_cost = 1024, 1
    settings.security.argon2_parallelism, settings.security.min_pin_length = 1, 4
    settings.sync.timeout_s = 2.0
    settings.sync.batch_size = 40
    s = init_store(settings)
    s.setup("sup", "1234", checkpoint_name="East gate", checkpoint_code="CP-E")
    yield s
    s.close()


def record_passages(store, n, start=0):
    items = [
        (
            PassageInput(
                direction="in" if i % 2 == 0 else "out",
                id_kind="resident_id",
                id_number=f"1101051949123{(start + i) % 10000:04d}X"[:18],
                name=f"张{start + i}",
                temperature=36.5,
                source="cli",
            ),
            ADMIT,
        )
        for i in range(n)
    ]
    store.passages.record_many(items)


def assert_exactly_once(store, repo):
    """Every device record is on the server once, with the same content hash; nothing lost."""
    counts = store.outbox.counts()
    assert counts["pending"] == 0 and counts["quarantined"] == 0
    device = {}
    for kind in store.outbox.kinds.values():
        for row in store.g.query(f"SELECT id FROM {kind.table}"):
            device[row["id"]] = kind
    server = repo.record_hashes()
    assert set(server) == set(device)
    # Content hashes: recompute the device's from its current bodies.
    local = store.outbox.content_hashes()
    assert local == {k: v for k, v in server.items() if k in local}


def enrolled(store, town, url, transport=None):
    token = town.new_token("gate-east")
    sc.enroll(store, url, token, transport=transport)
    return store


def test_an_update_with_nothing_new_still_dates_the_key_person_list(store, sqlite_repo):
    """The status line and the gate's freshness say when the list was last checked with the
    town, not only when it last changed ("updated never" after a good sync misled)."""
    town = TestTown(sqlite_repo)
    transport = SyncASGITransport(town.app)
    enrolled(store, town, "http://town", transport)
    assert store.keypersons.updated_at() is None
    report = sc.run_sync(store, store.settings, transport=transport)
    assert report.ok and report.keypersons_added == 0
    assert store.keypersons.updated_at() is not None
    transport.shutdown()


def test_enroll_sync_and_updates_in_process(store, repo):
    town = TestTown(repo)
    transport = SyncASGITransport(town.app)
    enrolled(store, town, "http://town", transport)
    assert store.secrets.get("town_index_key") == town.keys.index_key
    record_passages(store, 100)
    from fieldkit.crypto import blind_index

    wanted = "11010519491230005X"
    town.repo.add_changes(
        "keyperson",
        [
            {
                "id_hash": blind_index(town.keys.index_key, wanted),
                "category": "密接",
                "end_date": "2099-01-01",
            }
        ],
        1.0,
    )
    town.repo.add_changes("revocation", [{"pass_id": "P-1"}], 1.0)
    town.repo.add_changes("mode", [{"mode": "high"}], 1.0)
    report = sc.run_sync(store, store.settings, transport=transport, operator="sup")
    assert report.ok, report.error
    assert (report.sent, report.stored, report.batches) == (100, 100, 3)
    assert report.keypersons_added == 1 and report.revocations == 1 and report.mode == "high"
    assert store.keypersons.lookup(blind_index(town.keys.index_key, wanted)) == "密接"
    assert store.revocations.is_revoked("P-1")
    assert store.settings.checkpoint.area_mode == "high"
    assert_exactly_once(store, repo)
    # The server can trace a person by the same hash the gate uses.
    row = store.g.query("SELECT id FROM passages LIMIT 1")[0]
    body = store.outbox.kinds["passage"].body(
        store.g.query("SELECT * FROM passages WHERE id = ?", [row["id"]])[0]
    )
    trace = repo.trace_person(blind_index(town.keys.index_key, body["id_number"]))
    assert row["id"] in {t.record_id for t in trace}
    fresh = sc.freshness(store, store.settings)
    assert fresh["age_s"] is not None and not fresh["stale"]
    assert any(e["action"] == "sync" for e in store.g.query("SELECT action FROM audit"))
    # Nothing left: a second run sends nothing and changes nothing.
    again = sc.run_sync(store, store.settings, transport=transport)
    assert again.ok and again.sent == 0 and again.keypersons_added == 0
    transport.shutdown()


def test_server_down_then_back(store, sqlite_repo):
    town = TestTown(sqlite_repo)
    port = free_port()
    with LoopbackServer(
        town.app,
    ) as server:
        enrolled(store, town, server.url)
    record_passages(store, 30)
    store.kv.set("sync.server_url", f"http://127.0.0.1:{port}")  # nobody listens there
    report = sc.run_sync(store, store.settings, sleep=lambda s: None)
    assert not report.ok and report.error_kind == "network"
    assert "cannot reach the town server" in report.error and "pending" in report.error
    assert report.pending == 30 and report.batches == 0
    with LoopbackServer(town.app) as server:
        store.kv.set("sync.server_url", server.url)
        assert sc.run_sync(store, store.settings).ok
    assert_exactly_once(store, sqlite_repo)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_connection_cut_at_random_points(store, repo, seed):
    """Cut mid-upload (request) and mid-reply (the server ingested, the answer is lost)."""
    rng = random.Random(seed)
    town = TestTown(repo)
    record_passages(store, 120)
    with LoopbackServer(town.app) as server:
        enrolled(store, town, server.url)
        for direction in ("up", "down"):
            n = rng.randrange(100, 6000 if direction == "up" else 300)
            proxy = CutProxy(server.port, cuts=5, **{f"{direction}_bytes": n})
            store.kv.set("sync.server_url", proxy.url)
            first = sc.run_sync(store, store.settings, sleep=lambda s: None)
            # Whatever happened, nothing was lost and nothing doubled.
            assert store.outbox.counts()["quarantined"] == 0
            synced = {
                r["id"]
                for r in store.g.query("SELECT id FROM passages WHERE sync_state = 'synced'")
            }
            all_ids = {r["id"] for r in store.g.query("SELECT id FROM passages")}
            assert synced <= set(repo.record_hashes()) <= all_ids
            proxy.close()
            if not first.ok:
                assert first.error_kind == "network" and "nothing is lost" in first.error
        store.kv.set("sync.server_url", server.url)
        assert sc.run_sync(store, store.settings).ok
    assert_exactly_once(store, repo)


def test_http_500_then_recovery(store, sqlite_repo):
    town = TestTown(sqlite_repo)
    inner = SyncASGITransport(town.app)
    failures = {"left": 3}

    def flaky(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/batches") and failures["left"]:
            failures["left"] -= 1
            return httpx.Response(500, text="Internal Server Error")
        return inner.handle_request(request)

    transport = httpx.MockTransport(flaky)
    enrolled(store, town, "http://town", inner)
    record_passages(store, 50)
    report = sc.run_sync(store, store.settings, transport=transport, sleep=lambda s: None)
    assert not report.ok and "HTTP 500" in report.error and report.pending == 50
    assert sc.run_sync(store, store.settings, transport=transport, sleep=lambda s: None).ok
    assert_exactly_once(store, sqlite_repo)
    inner.shutdown()


def test_stalled_server_times_out(store, sqlite_repo):
    town = TestTown(sqlite_repo)
    inner = SyncASGITransport(town.app)
    enrolled(store, town, "http://town", inner)
    record_passages(store, 10)
    stall = StallServer()
    store.kv.set("sync.server_url", stall.url)
    store.settings.sync.timeout_s = 1.0
    report = sc.run_sync(store, store.settings, sleep=lambda s: None)
    stall.close()
    assert not report.ok and "did not answer within 1 s" in report.error
    assert store.outbox.counts() == {"pending": 10, "synced": 0, "quarantined": 0}
    store.kv.set("sync.server_url", "http://town")
    assert sc.run_sync(store, store.settings, transport=inner).ok
    assert_exactly_once(store, sqlite_repo)
    inner.shutdown()


def test_revoked_device_stops_early_and_keeps_records(store, sqlite_repo):
    town = TestTown(sqlite_repo)
    inner = SyncASGITransport(town.app)
    enrolled(store, town, "http://town", inner)
    record_passages(store, 100)
    sqlite_repo.revoke_device("gate-east", 0.0)
    report = sc.run_sync(store, store.settings, transport=inner)
    assert not report.ok and report.error_kind == "auth" and report.batches == 0
    assert "revoked" in report.error and "enroll it again" in report.error
    assert store.outbox.counts()["pending"] == 100 and sqlite_repo.record_count() == 0
    inner.shutdown()


def test_not_enrolled_says_what_to_do(store):
    report = sc.run_sync(store, store.settings)
    assert not report.ok and "fieldkit enroll URL TOKEN" in report.error


def test_conflicting_record_is_quarantined_not_blocking(store, sqlite_repo):
    town = TestTown(sqlite_repo)
    inner = SyncASGITransport(town.app)
    enrolled(store, town, "http://town", inner)
    record_passages(store, 10)
    assert sc.run_sync(store, store.settings, transport=inner).ok
    # The same record id comes back with other content (e.g. restored from an old backup).
    rid = store.g.query("SELECT id FROM passages ORDER BY ts LIMIT 1")[0]["id"]
    store.g.db.execute(
        "UPDATE passages SET sync_state='pending', sealed_enc=? WHERE id=?",
        [resealed(store, rid, temperature=39.9), rid],
    )
    record_passages(store, 5, start=100)
    report = sc.run_sync(store, store.settings, transport=inner)
    assert report.ok and report.quarantined == 1 and report.stored == 5
    q = store.outbox.quarantined()
    assert q[0]["id"] == rid and "kept for review" in q[0]["sync_reason"]
    assert [c["record_id"] for c in sqlite_repo.conflicts()] == [rid]
    inner.shutdown()


def test_enroll_refuses_wrong_server_fingerprint(store, sqlite_repo):
    town = TestTown(sqlite_repo)
    other = TestTown(sqlite_repo)  # same database, different keys: an impostor
    inner = SyncASGITransport(other.app)
    token = town.new_token("gate-east")
    with pytest.raises(sc.SyncError, match="fingerprint"):
        sc.enroll(store, "http://town", token, transport=inner)
    assert store.kv.get("sync.device_id") is None
    inner.shutdown()
