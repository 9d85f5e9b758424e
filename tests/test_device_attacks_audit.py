"""Attacks on the audit trail and a lost or retired device (issue 14, items 6 and 8): the chain
is keyed and anchored at the town; a revoked device erases itself; ``fieldkit wipe``."""

from __future__ import annotations

import json
import os
import time

import pytest

from fieldkit.errors import AuthError
from fieldkit.store import open_store
from fieldkit.store.audit import GENESIS, entry_hash
from fieldkit.wipe import crypto_erase, wipe_device
from sync import client as sc
from sync.server import anchors
from sync.testing import SyncASGITransport, TestTown, drop_repo, make_repo, pg_available

from .sync_support import add_passages, device_store

SECRET_NAME = "魏无羡独特姓名"


@pytest.fixture(params=["sqlite", "postgresql"])
def repo(request, tmp_path):
    if request.param == "postgresql":
        why = pg_available()
        if why:
            if os.environ.get("FIELDKIT_REQUIRE_PG") == "1":
                pytest.fail(f"PostgreSQL required (FIELDKIT_REQUIRE_PG=1) but unavailable: {why}")
            pytest.skip(f"PostgreSQL unavailable: {why}")
    (tmp_path / "town").mkdir(exist_ok=True)
    r = make_repo(request.param, str(tmp_path / "town"))
    yield r
    drop_repo(r)


@pytest.fixture
def device(tmp_path):
    s = device_store(tmp_path / "device", 50)
    yield s
    s.close()


def _enrolled(store, repo):
    town = TestTown(repo)
    transport = SyncASGITransport(town.app)
    sc.enroll(store, "http://town", town.new_token("gate-east"), transport=transport)
    return town, transport


def _sync(store, transport):
    report = sc.run_sync(store, store.settings, transport=transport, operator="sup")
    assert report.ok, report.error
    return report


def _reopen(store):
    settings = store.settings
    store.close()
    s = open_store(settings)
    s.unlock("sup", "1234")
    return s


# -- 6. audit rewrite -------------------------------------------------------------------------


def test_sync_anchors_the_chain_at_the_town(device, repo):
    town, transport = _enrolled(device, repo)
    add_passages(device, 3)
    _sync(device, transport)
    held = anchors.held(repo, device.kv.get("sync.device_id"))
    assert held is not None and device.audit.anchor()["count"] == held["count"]
    assert device.audit.link_at(held["count"]) == held["hash"]
    _sync(device, transport)  # the chain grew: the anchor moves on, nothing is flagged
    assert anchors.held(repo, device.kv.get("sync.device_id"))["count"] > held["count"]
    assert anchors.flags(repo) == []
    assert device.audit.verify()[1] is None
    transport.shutdown()


def test_deleting_every_entry_is_found(device, repo):
    town, transport = _enrolled(device, repo)
    _sync(device, transport)
    device.g.db.execute("DELETE FROM audit")
    device.g.db.execute("DELETE FROM fieldkit_meta WHERE key = 'audit_head'")
    n, problem = device.audit.verify()
    assert n == 0 and problem is not None
    # Even with the local anchor gone too, the town sees the chain went backwards.
    device.g.db.execute("DELETE FROM kv WHERE key = 'audit.anchor'")
    device.audit.append("login", "sup", {})
    report = sc.run_sync(device, device.settings, transport=transport, operator="sup")
    assert any("flagged" in w for w in report.warnings)
    assert anchors.flags(repo)[0]["kind"] == "backwards"
    transport.shutdown()


def test_cutting_the_tail_and_fixing_the_head_is_found(device, repo):
    town, transport = _enrolled(device, repo)
    for i in range(4):
        device.audit.append("export", "sup", {"file": f"f{i}.xlsx"})
    _sync(device, transport)
    anchored = device.audit.anchor()["count"]
    keep = anchored - 2
    device.g.db.execute("DELETE FROM audit WHERE seq > ?", [keep])
    link = device.audit.link_at(keep)
    device.g.db.execute(
        "UPDATE fieldkit_meta SET value = ? WHERE key = 'audit_head'", [f"{keep}:{link}"]
    )
    n, problem = device.audit.verify()
    assert problem is not None and "backwards" in problem.message
    report = sc.run_sync(device, device.settings, transport=transport, operator="sup")
    assert report.warnings and anchors.flags(repo)[0]["kind"] == "backwards"
    transport.shutdown()


@pytest.mark.parametrize("claim_unkeyed", [False, True])
def test_editing_and_recomputing_the_chain_without_the_key_is_found(device, claim_unkeyed):
    for i in range(4):
        device.audit.append("export", "sup", {"file": f"f{i}.xlsx"})
    rows = device.g.query("SELECT * FROM audit ORDER BY seq")
    # The attacker rewrites entry 3 and recomputes every later link with SHA-256 (they do not
    # have the key): either keeping the entries' keyed mark, or claiming they were unkeyed.
    prev = rows[1]["hash"]
    for r in rows[2:]:
        detail = r["detail"] if r["seq"] != 3 else '{"file":"innocent.xlsx"}'
        digest = entry_hash(prev, r["seq"], r["ts"], r["operator"], r["action"], detail)
        keyed = 0 if claim_unkeyed else r["keyed"]
        device.g.db.execute(
            "UPDATE audit SET detail=?, prev=?, hash=?, keyed=? WHERE seq=?",
            [detail, prev, digest, keyed, r["seq"]],
        )
        prev = digest
    device.g.db.execute(
        "UPDATE fieldkit_meta SET value=? WHERE key='audit_head'", [f"{rows[-1]['seq']}:{prev}"]
    )
    n, problem = device.audit.verify()
    assert problem is not None and problem.seq == 3


def test_a_whole_new_unkeyed_trail_is_found(device):
    device.g.db.execute("DELETE FROM audit")
    prev, seq = GENESIS, 1
    for action in ("setup", "login"):
        digest = entry_hash(prev, seq, "2026-01-01T00:00:00", "sup", action, "{}")
        device.g.db.execute(
            "INSERT INTO audit(seq, ts, operator, action, detail, prev, hash, keyed)"
            " VALUES (?,?,?,?,?,?,?,0)",
            [seq, "2026-01-01T00:00:00", "sup", action, "{}", prev, digest],
        )
        prev, seq = digest, seq + 1
    device.g.db.execute(
        "UPDATE fieldkit_meta SET value=? WHERE key='audit_head'", [f"{seq - 1}:{prev}"]
    )
    problem = device.audit.verify()[1]
    assert problem is not None


def test_wrong_pins_while_locked_stay_verifiable(device):
    settings = device.settings
    device.lock()
    with pytest.raises(AuthError):
        device.unlock("sup", "9999")
    s = open_store(settings)
    s.unlock("sup", "1234")
    assert s.audit.verify()[1] is None
    assert [e["action"] for e in s.audit.entries(3)][1:] == ["login_failed", "lock"]
    s.close()


def test_a_rewrite_under_the_anchor_is_flagged_by_the_town(device, repo):
    town, transport = _enrolled(device, repo)
    _sync(device, transport)
    n = device.audit.anchor()["count"]
    # An insider with the PIN rewrites entry n (keyed) and recomputes the rest: locally the
    # chain verifies, but not against the town's anchor, and the town flags it.
    key = device.audit._write_key[1]
    rows = device.g.query("SELECT * FROM audit WHERE seq >= ? ORDER BY seq", [n])
    prev = rows[0]["prev"]
    for r in rows:
        detail = '{"rewritten":true}' if r["seq"] == n else r["detail"]
        k = key if r["keyed"] else None
        digest = entry_hash(prev, r["seq"], r["ts"], r["operator"], r["action"], detail, k)
        device.g.db.execute(
            "UPDATE audit SET detail=?, prev=?, hash=? WHERE seq=?",
            [detail, prev, digest, r["seq"]],
        )
        prev = digest
    device.g.db.execute(
        "UPDATE fieldkit_meta SET value=? WHERE key='audit_head'", [f"{rows[-1]['seq']}:{prev}"]
    )
    problem = device.audit.verify()[1]
    assert problem is not None and "town holds" in problem.message
    device.g.db.execute("DELETE FROM kv WHERE key = 'audit.anchor'")  # hide it locally too
    sc.run_sync(device, device.settings, transport=transport, operator="sup")
    assert anchors.flags(repo)[0]["kind"] == "rewritten"
    transport.shutdown()


# -- 8. remote wipe -----------------------------------------------------------------------------


def _leftovers(path) -> bytes:
    out = b""
    for suffix in ("", "-wal", "-shm", "-journal"):
        f = type(path)(f"{path}{suffix}")
        if f.exists():
            out += f.read_bytes()
    return out


def test_a_device_the_town_orders_wiped_uploads_then_erases_itself(device, repo):
    town, transport = _enrolled(device, repo)
    add_passages(device, 2)
    _sync(device, transport)
    device_id = device.kv.get("sync.device_id")
    anchors.order_wipe(repo, device_id)
    add_passages(device, 3)  # written after the order, before the next contact
    path = device.path
    report = sc.run_sync(device, device.settings, transport=transport, operator="sup")
    assert not report.ok and report.error_kind == "wiped" and report.wipe_ordered
    assert "destroyed" in report.error or "销毁" in report.error
    assert not path.exists() and not _leftovers(path)
    assert repo.record_count() == 5  # what it could upload went up first
    assert repo.get_device(device_id).status == "revoked"
    assert anchors.wipe_order(repo, device_id)["done_at"] is not None
    assert anchors.flags(repo, device_id)[0]["kind"] == "wiped"
    transport.shutdown()


def test_retired_device_wipe_tells_the_town_then_erases_keys_first(device, repo):
    town, transport = _enrolled(device, repo)
    add_passages(device, 3)
    path = device.path
    files, told = wipe_device(device, transport)
    assert told and files >= 1 and not path.exists()
    assert anchors.flags(repo)[0]["kind"] == "wiped"
    assert repo.record_count() == 3  # what was pending went up first
    transport.shutdown()


def test_crypto_erase_leaves_no_key_bytes(device, tmp_path):
    wraps = [bytes(r["wrapped"]) for r in device.g.query("SELECT wrapped FROM operators")]
    wraps += [bytes(r["wrapped"]) for r in device.g.query("SELECT wrapped FROM recovery")]
    path = device.path
    snapshot = tmp_path / "before.db"
    snapshot.write_bytes(path.read_bytes() + _leftovers(path))
    assert any(w in snapshot.read_bytes() for w in wraps)
    crypto_erase(device)
    assert not path.exists()


def test_a_device_not_synced_for_days_opens_for_the_supervisor_only(device, repo):
    town, transport = _enrolled(device, repo)
    device.keyring.add(device.operator, device.master, "gate1", "gate", "1357")
    _sync(device, transport)
    device.settings.security.lock_unsynced_days = 3
    device.kv.set("sync.last_sync", time.time() - 4 * 86400)
    s = open_store(device.settings)
    with pytest.raises(AuthError) as err:
        s.unlock("gate1", "1357")
    assert "4" in err.value.render("en") and "supervisor" in err.value.render("en")
    s.unlock("sup", "1234")
    _sync(s, transport)
    s.unlock("gate1", "1357")
    transport.shutdown()


def test_wipe_cli_needs_the_checkpoint_code_and_a_supervisor(cli):
    cli.init()
    r = cli.run("wipe", "--confirm", "WRONG", pin="2468", check=False)
    assert r.returncode != 0 and "CP-0101" in r.stderr and "Traceback" not in r.stderr
    assert (cli.home / "fieldkit.db").exists()
    out = json.loads(cli.run("wipe", "--confirm", "CP-0101", "--json", pin="2468").stdout)
    assert out["wiped"] and not out["town_told"]
    assert not (cli.home / "fieldkit.db").exists()
