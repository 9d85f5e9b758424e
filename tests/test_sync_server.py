"""Town server: enrollment, sealed batches landing exactly once, refusals, updates, queries.

Every test runs on SQLite and on PostgreSQL (``FIELDKIT_TEST_PG``; a fresh schema per test).
Requests go through ``httpx.ASGITransport`` in-process; one test goes over a real socket.
"""

from __future__ import annotations

import logging
import os
import time
import uuid

import httpx
import pytest

from sync import protocol as p
from sync.server.app import decrypt_body
from sync.testing import (
    LoopbackServer,
    SyncASGITransport,
    TestTown,
    fake_record,
)

# ``repo`` (SQLite and PostgreSQL) comes from tests/conftest.py.


@pytest.fixture
def town(repo):
    return TestTown(repo)


@pytest.fixture
def http(town):
    transport = SyncASGITransport(town.app)
    with httpx.Client(transport=transport, base_url="http://town") as client:
        yield client
    transport.shutdown()


def post_batch(http, device_id, body):
    return http.post(p.PATH_BATCHES, content=body, headers={"X-Fieldkit-Device": device_id})


def test_batch_lands_once_duplicates_and_conflicts(town, http):
    device_id, key = town.enroll_raw(http, "gate-1")
    records = [fake_record(i) for i in range(50)]
    _, body = town.seal(device_id, key, records)
    reply = post_batch(http, device_id, body).json()
    assert reply["counts"]["stored"] == 50 and reply["fates"] == []

    # The same batch again: answered from the record, nothing stored twice.
    again = post_batch(http, device_id, body).json()
    assert again["replayed"] is True and again["counts"] == reply["counts"]

    # Same records in a new batch: duplicates. One changed: a conflict, kept for review.
    changed = dict(records[7], hash="f" * 64)
    _, body2 = town.seal(device_id, key, records[:5] + [changed])
    reply2 = post_batch(http, device_id, body2).json()
    assert reply2["counts"] == {"stored": 0, "duplicate": 5, "conflict": 1, "rejected": 0}
    assert reply2["fates"][-1][:3] == [5, records[7]["id"], p.CONFLICT]
    assert town.repo.record_count() == 50
    assert town.repo.record_hashes() == {r["id"]: r["hash"] for r in records}
    assert [c["record_id"] for c in town.repo.conflicts()] == [records[7]["id"]]


def test_batch_mixing_new_and_known_records(town, http):
    """New records beside ones already stored (a device resending after a crash): the new ones
    land, the known ones are duplicates. On PostgreSQL this is the fallback from the bulk COPY
    to INSERT … ON CONFLICT; a NaN the standard library reads is still accepted."""
    device_id, key = town.enroll_raw(http, "gate-1")
    first = [fake_record(i) for i in range(10)]
    _, body = town.seal(device_id, key, first)
    assert post_batch(http, device_id, body).json()["counts"]["stored"] == 10
    fresh = [fake_record(100 + i) for i in range(3)]
    fresh.append(fake_record(200, extra={"temperature": float("nan")}))
    _, body = town.seal(device_id, key, first[3:6] + fresh + [first[4]])
    reply = post_batch(http, device_id, body).json()
    assert reply["counts"] == {"stored": 4, "duplicate": 4, "conflict": 0, "rejected": 0}
    assert sorted(f[0] for f in reply["fates"]) == [0, 1, 2, 7]
    assert town.repo.record_hashes() == {r["id"]: r["hash"] for r in first + fresh}


def test_one_bad_record_never_blocks_the_batch(town, http):
    device_id, key = town.enroll_raw(http, "gate-1")
    good = [fake_record(i) for i in range(3)]
    bad = [
        {"id": "not-a-uuid", "kind": "passage", "hash": "0" * 64, "body": {}},
        fake_record(9, extra={"ts": "yesterday"}),
        dict(fake_record(10), hash="XYZ"),
    ]
    lines = p.encode_records(good[:1] + bad + good[1:]) + [b"{not json"]
    _, body = p.seal_batch(
        lines, device_id=device_id, device_key=key, town_x25519=town.keys.x25519.public_key()
    )
    reply = post_batch(http, device_id, body).json()
    assert reply["counts"] == {"stored": 3, "duplicate": 0, "conflict": 0, "rejected": 4}
    reasons = {f[0]: f[3] for f in reply["fates"]}
    assert "not a UUID" in reasons[1] and "ISO 8601" in reasons[2]
    assert "hex" in reasons[3] and "JSON" in reasons[6]
    assert town.repo.record_count() == 3


def test_bodies_are_encrypted_at_rest_and_queries_work(town, http):
    device_id, key = town.enroll_raw(http, "gate-1")
    person = "a" * 64
    records = [
        fake_record(
            i, checkpoint="CP-1" if i < 6 else "CP-2", id_hash=person if i % 3 == 0 else None
        )
        for i in range(10)
    ]
    _, body = town.seal(device_id, key, records)
    assert post_batch(http, device_id, body).status_code == 200
    trace = town.repo.trace_person(person)
    assert [t.record_id for t in trace] == [records[i]["id"] for i in (0, 3, 6, 9)]
    assert {t.checkpoint for t in trace} == {"CP-1", "CP-2"} and trace[0].device == "gate-1"
    start = records[2]["body"]["ts"]
    from datetime import datetime

    t0 = datetime.fromisoformat(start).timestamp()
    window = town.repo.trace_checkpoint("CP-1", t0, t0 + 3 * 60)
    assert [w.record_id for w in window] == [records[i]["id"] for i in (2, 3, 4)]
    stats = town.repo.stats()
    assert {(s["checkpoint"], s["records"]) for s in stats} == {("CP-1", 6), ("CP-2", 4)}
    # The stored body opens only with the server's data key and names no one in the clear.
    import sqlite3

    if town.repo.backend == "sqlite":
        raw = sqlite3.connect(town.repo.path).execute("SELECT body FROM records").fetchone()[0]
        assert "张三".encode() not in raw and b"11010519491231002X" not in raw
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    rid = records[0]["id"]
    if town.repo.backend == "sqlite":
        blob = (
            sqlite3.connect(town.repo.path)
            .execute("SELECT body FROM records WHERE record_id = ?", (rid,))
            .fetchone()[0]
        )
        assert b'"id_number"' in decrypt_body(AESGCM(town.keys.data_key), rid, blob)


def test_records_from_older_devices_are_indexed_the_same(town, http):
    """Devices before 2026-12 sent the indexed fields beside the body too: both forms land
    with the same time, checkpoint, direction and person hash."""
    device_id, key = town.enroll_raw(http, "gate-1")
    person = "b" * 64
    new = [fake_record(i, checkpoint="CP-9", id_hash=person) for i in range(0, 4)]
    old = [fake_record(i, checkpoint="CP-9", id_hash=person, legacy=True) for i in range(4, 8)]
    assert "at" in old[0] and "at" not in new[0]
    _, body = town.seal(device_id, key, new + old)
    assert post_batch(http, device_id, body).json()["counts"]["stored"] == 8
    trace = town.repo.trace_person(person)
    from datetime import datetime

    assert [(t.record_id, t.checkpoint, t.direction, t.occurred_at) for t in trace] == [
        (
            r["id"],
            "CP-9",
            r["body"]["direction"],
            datetime.fromisoformat(r["body"]["ts"]).timestamp(),
        )
        for r in new + old
    ]
    assert {t.id_masked for t in trace} == {"110105********002X"}


def test_refusals_store_nothing_and_are_logged(town, http, caplog, english):
    caplog.set_level(logging.WARNING, logger="fieldkit.server")
    device_id, key = town.enroll_raw(http, "gate-1")
    records = [fake_record(i) for i in range(5)]

    # Unenrolled device (a key the server never saw).
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    _, body = town.seal("0123456789abcdef", Ed25519PrivateKey.generate(), records)
    r = post_batch(http, "0123456789abcdef", body)
    assert r.status_code == 401 and r.json()["error"] == "unknown_device"

    # Tampered ciphertext: the signature no longer matches.
    _, body = town.seal(device_id, key, records)
    tampered = bytearray(body)
    tampered[len(body) // 2] ^= 1
    r = post_batch(http, device_id, bytes(tampered))
    assert r.status_code == 401 and r.json()["error"] == "bad_signature"

    # Tampered signature.
    r = post_batch(http, device_id, body[:-1] + bytes([body[-1] ^ 0xFF]))
    assert r.json()["error"] == "bad_signature"

    # A ciphertext altered then re-signed by the device itself still does not open.
    signed = bytearray(body[:-64])
    signed[-20] ^= 1
    r = post_batch(http, device_id, bytes(signed) + key.sign(bytes(signed)))
    assert r.status_code == 400 and r.json()["error"] == "cannot_open"

    # A replayed old batch never seen before: refused as stale.
    _, old = town.seal(device_id, key, records, created_at=time.time() - 90 * 86400)
    r = post_batch(http, device_id, old)
    assert r.status_code == 400 and r.json()["error"] == "stale_batch"
    assert "clock" in r.json()["message"]

    # Garbage.
    assert post_batch(http, device_id, b"hello").json()["error"] == "bad_envelope"

    # Revoked device.
    town.repo.revoke_device("gate-1", time.time())
    r = post_batch(http, device_id, body)
    assert r.status_code == 403 and r.json()["error"] == "device_revoked"

    assert town.repo.record_count() == 0
    assert town.repo.batch_reply(str(uuid.uuid4())) is None
    refused = [rec.getMessage() for rec in caplog.records if "refused" in rec.getMessage()]
    assert len(refused) == 7
    assert any("device_revoked" in m for m in refused)


def test_enrollment_token_is_one_time(town, http, english):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    token = town.new_token("gate-9")
    req = {
        "token": token,
        "public_key": p.b64e(p.raw_public(Ed25519PrivateKey.generate().public_key())),
        "seal_to": p.b64e(p.raw_public(X25519PrivateKey.generate().public_key())),
    }
    assert http.post(p.PATH_ENROLL, json=req).status_code == 200
    again = http.post(p.PATH_ENROLL, json=req)
    assert again.status_code == 401 and "new one" in again.json()["message"]
    expired = town.new_token("gate-10", ttl=-1)
    assert http.post(p.PATH_ENROLL, json={**req, "token": expired}).status_code == 401
    assert [d.status for d in town.repo.list_devices()] == ["active", "pending"]


def test_limits_size_count_and_rate(repo, tmp_path, english):
    from sync.server.town import ServerSettings

    town = TestTown(
        repo,
        ServerSettings(
            max_body_bytes=20_000, max_batch_records=10, rate_per_second=0.001, rate_burst=3
        ),
    )
    transport = SyncASGITransport(town.app)
    with httpx.Client(transport=transport, base_url="http://town") as http:
        device_id, key = town.enroll_raw(http, "gate-1")
        _, body = town.seal(device_id, key, [fake_record(i) for i in range(11)])
        r = post_batch(http, device_id, body)
        assert r.status_code == 413 and "at most 10" in r.json()["message"]
        r = post_batch(http, device_id, os.urandom(30_000))
        assert r.status_code == 413 and r.json()["error"] == "too_large"
        _, body = town.seal(device_id, key, [fake_record(1)])
        assert post_batch(http, device_id, body).status_code == 200
        # The junk body above proved no device: it counted against the address, not the
        # device's quota (burst 3: the 413, the batch, and its replay).
        assert post_batch(http, device_id, body).json()["replayed"] is True
        r = post_batch(http, device_id, body)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    transport.shutdown()
    assert repo.record_count() == 1


def test_updates_are_signed_and_follow_the_cursor(town, http):
    device_id, key = town.enroll_raw(http, "gate-1")
    now = time.time()
    town.repo.add_changes(
        "keyperson",
        [
            {"id_hash": "1" * 64, "category": "密接", "end_date": "2022-05-01"},
            {"id_hash": "2" * 64, "category": "次密接", "end_date": None},
        ],
        now,
    )
    town.repo.add_changes("revocation", [{"pass_id": "P-7"}], now)
    town.repo.add_changes("mode", [{"mode": "medium"}], now)

    def fetch(cursor):
        q = f"cursor={cursor}"
        r = http.get(
            f"{p.PATH_UPDATES}?{q}",
            headers=p.sign_request(key, device_id, "GET", p.PATH_UPDATES, q),
        )
        assert r.status_code == 200, r.text
        return p.verify_document(r.json(), town.keys.ed25519.public_key())

    doc = fetch(0)
    assert {e["id_hash"] for e in doc["keypersons"]} == {"1" * 64, "2" * 64}
    assert doc["revocations"] == ["P-7"] and doc["mode"] == {"mode": "medium"}
    cursor = doc["cursor"]
    town.repo.add_changes("keyperson_removed", [{"id_hash": "1" * 64}], time.time())
    doc2 = fetch(cursor)
    assert doc2["keypersons"] == [] and doc2["keypersons_removed"] == ["1" * 64]
    assert fetch(doc2["cursor"])["cursor"] == doc2["cursor"]
    assert town.repo.keyperson_hashes() == {"2" * 64}

    # A request signed by another key, or with a changed query, is refused.
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    q = "cursor=0"
    bad = p.sign_request(Ed25519PrivateKey.generate(), device_id, "GET", p.PATH_UPDATES, q)
    assert http.get(f"{p.PATH_UPDATES}?{q}", headers=bad).status_code == 401
    good = p.sign_request(key, device_id, "GET", p.PATH_UPDATES, "cursor=5")
    assert http.get(f"{p.PATH_UPDATES}?cursor=0", headers=good).status_code == 401
    # A forged update fails on the device side.
    forged = {
        **http.get(
            f"{p.PATH_UPDATES}?{q}",
            headers=p.sign_request(key, device_id, "GET", p.PATH_UPDATES, q),
        ).json()
    }
    forged["payload"] = forged["payload"].replace("medium", "normal")
    with pytest.raises(p.ProtocolError):
        p.verify_document(forged, town.keys.ed25519.public_key())


def test_concurrent_devices_and_same_records(town, http):
    """Two devices send overlapping records at once: each id is stored once."""
    from concurrent.futures import ThreadPoolExecutor

    devices = [town.enroll_raw(http, f"gate-{n}") for n in range(4)]
    shared = [fake_record(i) for i in range(200)]

    def send(dev):
        device_id, key = dev
        mine = [fake_record(i) for i in range(100)]
        _, body = town.seal(device_id, key, shared + mine)
        return post_batch(http, device_id, body).json()["counts"]

    with ThreadPoolExecutor(4) as pool:
        counts = list(pool.map(send, devices))
    assert sum(c["stored"] for c in counts) == 200 + 4 * 100
    assert sum(c["duplicate"] for c in counts) == 3 * 200
    assert town.repo.record_count() == 600


def test_real_socket_on_loopback(town):
    with LoopbackServer(town.app) as server, httpx.Client(base_url=server.url) as http:
        device_id, key = town.enroll_raw(http, "gate-1")
        info = http.get(p.PATH_INFO).json()
        assert info["fingerprint"] == town.keys.fingerprint
        _, body = town.seal(device_id, key, [fake_record(i) for i in range(300)])
        assert post_batch(http, device_id, body).json()["counts"]["stored"] == 300
    assert town.repo.record_count() == 300


def test_a_sync_with_nothing_to_send_still_counts_as_contact(town, http):
    """The console's and `device list`'s last contact moves when a device asks for updates,
    not only when it uploads: a quiet gate that synced is not shown as never heard from."""
    device_id, key = town.enroll_raw(http, "gate-quiet")
    before = {d.device_id: d.last_seen for d in town.repo.list_devices()}[device_id]
    assert before is None
    r = http.get(
        f"{p.PATH_UPDATES}?cursor=0",
        headers=p.sign_request(key, device_id, "GET", p.PATH_UPDATES, "cursor=0"),
    )
    assert r.status_code == 200, r.text
    seen = {d.device_id: d.last_seen for d in town.repo.list_devices()}[device_id]
    assert seen is not None and abs(seen - time.time()) < 600
