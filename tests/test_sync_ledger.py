"""Household ledger edits from two devices meet on the town server (SQLite and PostgreSQL).

Two real device stores create the same household and member through ``fieldkit.ledger``, edit
fields, and sync through the in-process server. The server keeps one value per field, lists a
field two devices changed differently as a ledger conflict (masked), never quarantines a record
on a device, merges edits of different fields, and the supervisor resolves through the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fieldkit.config import load_settings
from fieldkit.crypto import blind_index
from fieldkit.store import init_store
from scanners.idnumber import mask_phone
from sync import client as sc
from sync.server.app import create_app
from sync.server.cli import main as server_main
from sync.server.ledger import LedgerCodec
from sync.server.repository import open_repository
from sync.server.town import TownKeys
from sync.testing import SyncASGITransport, TestTown, new_pg_schema, pg_url
from tests.conftest import require_pg
from tests.ledger_support import make_id

pytestmark = pytest.mark.usefixtures("english")  # asserts the English messages

ID = make_id(7)
PHONE_0, PHONE_A, PHONE_B = "13800001111", "13900002222", "13700003333"
HOUSE = {"community": "幸福社区", "building": "3栋", "unit": "2单元", "room": "301"}


def run(capsys, *argv):
    code = server_main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(params=["sqlite", "postgresql"])
def town(request, tmp_path, capsys):
    """A town made by ``fieldkit-server init`` (so the CLI can open it), served in-process."""
    d = tmp_path / "town"
    extra: list[str] = []
    schema = None
    if request.param == "postgresql":
        require_pg()
        schema = new_pg_schema()
        extra = ["--database-url", pg_url(), "--db-schema", schema]
    code, _, err = run(capsys, "init", "--data-dir", d, *extra)
    assert code == 0, err
    repo = open_repository(pg_url() if schema else None, str(d), schema)
    t = TestTown(repo)
    t.keys = TownKeys.load(d)
    t.app = create_app(t.keys, repo, t.settings)
    t.dir = d
    t.transport = SyncASGITransport(t.app)
    yield t
    t.transport.shutdown()
    if schema:
        repo.drop_schema()
    repo.close()


def device(tmp_path: Path, town, name: str, code: str):
    settings = load_settings(None, tmp_path / name)
    settings.security.scrypt_n = 2**10
    settings.security.argon2_memory_kib, settings.security.argon2_time_cost = 1024, 1
    settings.security.argon2_parallelism, settings.security.min_pin_length = 1, 4
    s = init_store(settings)
    s.setup("sup", "1234", checkpoint_name=f"Gate {code}", checkpoint_code=code)
    sc.enroll(s, "http://town", town.new_token(name), transport=town.transport)
    return s


def sync(store, town):
    report = sc.run_sync(store, store.settings, transport=town.transport, operator="sup")
    assert report.ok, report.error
    return report


def assert_clean(store):
    counts = store.outbox.counts()
    assert counts["quarantined"] == 0 and counts["pending"] == 0, counts


def member_key(town) -> str:
    return "member:id:" + blind_index(town.keys.index_key, ID)


def field_state(town, key: str) -> dict[str, dict]:
    return {r["field"]: r for r in town.repo.ledger_state(key)}


@pytest.fixture
def devices(tmp_path, town):
    a = device(tmp_path, town, "dev-a", "CP-A")
    b = device(tmp_path, town, "dev-b", "CP-B")
    yield a, b
    a.close()
    b.close()


def both_create(a, b):
    """Each device registers the same household and person (as after importing one ledger)."""
    ids = []
    for s in (a, b):
        hid, _ = s.ledger.save_household(dict(HOUSE, resident_count=3), source="import")
        mid, _ = s.ledger.save_member(
            hid,
            {"name": "张三", "id_number": ID, "phone": PHONE_0, "relation": "户主"},
            source="import",
        )
        ids.append((hid, mid))
    return ids


def test_same_field_edited_on_two_devices(town, devices, tmp_path):
    a, b = devices
    (ha, ma), (hb, mb) = both_create(a, b)
    assert ma != mb  # each device made its own id ...
    sync(a, town)
    sync(b, town)
    # ... the server files both under one member and one household; equal values: no conflict.
    assert (
        town.repo.ledger_alias("member", ma)
        == town.repo.ledger_alias("member", mb)
        == member_key(town)
    )
    assert town.repo.ledger_alias("household", ha) == town.repo.ledger_alias("household", hb)
    assert town.repo.ledger_conflicts() == []

    # Both devices change the phone before hearing of each other; A's edit lands first.
    a.ledger.save_member(ha, {"phone": PHONE_A}, member_id=ma)
    b.ledger.save_member(hb, {"phone": PHONE_B}, member_id=mb)
    ra, rb = sync(a, town), sync(b, town)
    assert (ra.stored, rb.stored) == (1, 1)
    for s in (a, b):
        assert_clean(s)  # a field conflict never quarantines the record

    state = field_state(town, member_key(town))
    assert state["phone"]["masked"] == mask_phone(PHONE_A)
    codec = LedgerCodec(town.keys.data_key, town.keys.index_key)
    assert codec.open("phone", state["phone"]["value_enc"]) == PHONE_A
    (c,) = town.repo.ledger_conflicts()
    assert c["field"] == "phone" and c["entity"] == "member"
    assert (c["kept_masked"], c["other_masked"]) == (mask_phone(PHONE_A), mask_phone(PHONE_B))
    assert (c["kept_device_name"], c["other_device_name"]) == ("dev-a", "dev-b")
    assert (c["kept_writer"], c["other_writer"]) == ("sup@CP-A", "sup@CP-B")
    assert c["other_entity_id"] == mb and c["resolved_at"] is None

    # Every record from both devices is on the server once.
    edits = {r["id"] for s in (a, b) for r in s.g.query("SELECT id FROM ledger_edits")}
    assert edits <= set(town.repo.record_hashes())

    # Re-sending every ledger edit of device B (lost replies, a restored backup): duplicates,
    # no new conflict, the state unchanged.
    with b.g.tx() as db:
        db.execute("UPDATE ledger_edits SET sync_state = 'pending', synced_at = NULL")
    again = sync(b, town)
    assert again.sent == len(b.g.query("SELECT id FROM ledger_edits")) and again.stored == 0
    assert_clean(b)
    assert len(town.repo.ledger_conflicts()) == 1
    assert field_state(town, member_key(town))["phone"]["masked"] == mask_phone(PHONE_A)

    # Personal values are not in the clear at rest.
    if town.repo.backend == "sqlite":
        raw = b"".join(p.read_bytes() for p in town.dir.glob("town.sqlite3*"))
    else:
        with town.repo.dialect.read() as con:
            raw = b"".join(
                bytes(r[0]) + bytes(r[1])
                for r in con.execute(
                    "SELECT kept_value_enc, other_value_enc FROM ledger_conflicts"
                ).fetchall()
            )
            raw += b"".join(
                bytes(r[0]) for r in con.execute("SELECT value_enc FROM ledger_fields").fetchall()
            )
    assert raw and all(p.encode() not in raw for p in (PHONE_0, PHONE_A, PHONE_B, ID))
    assert "张三".encode() not in raw


def test_different_fields_merge_and_seen_values_move_on(town, devices):
    a, b = devices
    (ha, ma), (hb, mb) = both_create(a, b)
    sync(a, town)
    sync(b, town)
    a.ledger.save_household({"worker": "李四"}, household_id=ha)
    b.ledger.save_household({"tested_count": 2}, household_id=hb)
    b.ledger.save_member(hb, {"relation": "本人"}, member_id=mb)
    sync(a, town)
    sync(b, town)
    house = town.repo.ledger_alias("household", ha)
    state = field_state(town, house)
    assert (
        state["worker"]["masked"] == "李四"
        and state["worker"]["set_device"] != state["tested_count"]["set_device"]
    )
    assert state["tested_count"]["masked"] == "2"
    # B changed a value it had itself seen (the relation both imported): it replaces it.
    assert field_state(town, member_key(town))["relation"]["masked"] == "本人"
    # A then edits the relation B set, without having seen it: that is a conflict.
    a.ledger.save_member(ha, {"relation": "配偶"}, member_id=ma)
    sync(a, town)
    (c,) = town.repo.ledger_conflicts()
    assert (c["field"], c["kept_masked"], c["other_masked"]) == ("relation", "本人", "配偶")
    for s in (a, b):
        assert_clean(s)


def test_supervisor_lists_and_resolves_with_the_cli(town, devices, capsys):
    a, b = devices
    (ha, ma), (hb, mb) = both_create(a, b)
    a.ledger.save_member(ha, {"phone": PHONE_A}, member_id=ma)
    b.ledger.save_member(hb, {"phone": PHONE_B}, member_id=mb)
    sync(a, town)
    sync(b, town)
    d = town.dir

    code, out, _ = run(capsys, "stats", "--json", "--data-dir", d)
    assert code == 0 and json.loads(out)["ledger_conflicts_open"] == 1
    code, out, _ = run(capsys, "ledger-conflicts", "--data-dir", d)
    assert code == 0 and "phone" in out and mask_phone(PHONE_B) in out
    code, out, _ = run(capsys, "ledger-conflicts", "--json", "--data-dir", d)
    assert code == 0
    (row,) = json.loads(out)
    assert (row["kept"]["value"], row["other"]["value"]) == (
        mask_phone(PHONE_A),
        mask_phone(PHONE_B),
    )
    assert (row["kept"]["device"], row["other"]["device"]) == ("dev-a", "dev-b")
    assert all(p not in out for p in (PHONE_A, PHONE_B, ID))  # masked, always

    code, _, err = run(
        capsys, "ledger-conflicts", "resolve", "999", "--keep", "other", "--data-dir", d
    )
    assert code == 2 and "no ledger conflict 999" in err
    code, out, _ = run(
        capsys,
        "ledger-conflicts",
        "--data-dir",
        d,
        "resolve",
        row["id"],
        "--keep",
        "other",
        "--by",
        "王芳",
    )
    assert code == 0 and "resolved by 王芳" in out
    state = field_state(town, member_key(town))
    assert state["phone"]["masked"] == mask_phone(PHONE_B)
    codec = LedgerCodec(town.keys.data_key, town.keys.index_key)
    assert codec.open("phone", state["phone"]["value_enc"]) == PHONE_B

    # Idempotent: the same decision again changes nothing; a different one is refused.
    code, out, _ = run(
        capsys,
        "ledger-conflicts",
        "resolve",
        row["id"],
        "--keep",
        "other",
        "--data-dir",
        d,
        "--json",
    )
    assert code == 0 and json.loads(out)["already"] is True
    code, _, err = run(
        capsys, "ledger-conflicts", "resolve", row["id"], "--keep", "kept", "--data-dir", d
    )
    assert code == 2 and "already resolved" in err
    assert field_state(town, member_key(town))["phone"]["masked"] == mask_phone(PHONE_B)

    code, out, _ = run(capsys, "ledger-conflicts", "--json", "--data-dir", d)
    assert json.loads(out) == []
    code, out, _ = run(capsys, "ledger-conflicts", "--all", "--json", "--data-dir", d)
    (done,) = json.loads(out)
    assert (done["resolution"], done["resolved_by"]) == ("other", "王芳")
    code, out, _ = run(capsys, "stats", "--json", "--data-dir", d)
    assert json.loads(out)["ledger_conflicts_open"] == 0

    # B, whose value now stands, edits on from it: accepted, no new conflict.
    b.ledger.save_member(hb, {"phone": "13600004444"}, member_id=mb)
    sync(b, town)
    assert town.repo.ledger_open_conflicts() == 0
    assert field_state(town, member_key(town))["phone"]["masked"] == mask_phone("13600004444")
