"""The town orders a lost device wiped, and lists the audit-anchor flags (issue 14, items 6 and
8): ``fieldkit-server device wipe|flags|list`` on a real data directory, a real
``fieldkit-server serve`` on loopback and real gate device stores syncing over HTTP; on SQLite
and PostgreSQL."""

from __future__ import annotations

import json
import subprocess

import pytest

from sync.client import enroll, run_sync
from sync.server.console.auth import Audit
from sync.server.console.db import ConsoleDB
from sync.server.repository import open_repository
from sync.server.town import ServerSettings

from .console_support import BIN, ServerProcess, gate_store, id_number, pass_gate, pg_or_skip

P, Q, R = (id_number(i) for i in (31, 32, 33))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def server(request, tmp_path):
    if request.param == "postgresql":
        pg_or_skip()
    srv = ServerProcess(tmp_path, request.param)
    srv.start()
    yield srv
    srv.stop()


def cli(srv: ServerProcess, *args: str, stdin: str | None = None, lang: str | None = None):
    """``fieldkit-server`` as a user runs it: its own process, the town's data directory."""
    env = dict(srv.env)
    if lang:
        env["FIELDKIT_LANG"] = lang
    cmd = [str(BIN / "fieldkit-server"), *args, "--data-dir", str(srv.dir)]
    return subprocess.run(
        cmd, env=env, input=stdin or "", capture_output=True, text=True, timeout=120
    )


def refused(proc, words: str) -> None:
    """Exit 2 and one line in the run's language, never a traceback."""
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def devices(srv: ServerProcess) -> dict[str, dict]:
    proc = cli(srv, "device", "list", "--json")
    assert proc.returncode == 0, proc.stderr
    return {d["name"]: d for d in json.loads(proc.stdout)}


def enrolled(srv: ServerProcess, tmp_path, name: str, code: str):
    proc = cli(srv, "device", "add", name, "--no-qr", "--json")
    assert proc.returncode == 0, proc.stderr
    store = gate_store(tmp_path / name, code, name)
    enroll(store, srv.url, json.loads(proc.stdout)["token"])
    return store


def synced(store):
    report = run_sync(store, store.settings)
    assert report.ok, report.error
    return report


def town_audit(srv: ServerProcess) -> list[dict]:
    settings = ServerSettings.load(srv.dir)
    repo = open_repository(settings.database_url or None, str(srv.dir), settings.db_schema or None)
    db = ConsoleDB(repo)
    try:
        assert Audit(db).verify() is None  # the chain holds
        return Audit(db).rows()
    finally:
        db.close()
        repo.close()


def test_an_ordered_wipe_reaches_a_real_device_through_sync(server, tmp_path):
    east = enrolled(server, tmp_path, "东门一号", "CP-E")
    cli(server, "device", "add", "西门备用", "--no-qr")  # never enrolled
    pass_gate(east, P, "张三")
    pass_gate(east, Q, "李四")
    synced(east)
    east_id = east.kv.get("sync.device_id")

    # Refusals: one line each, nothing ordered.
    refused(
        cli(server, "device", "wipe", "nobody", "--reason", "丢失", "--yes"), "没有设备「nobody」"
    )
    refused(
        cli(server, "--lang", "en", "device", "wipe", "nobody", "--reason", "lost", "--yes"),
        "no device 'nobody'",
    )
    refused(cli(server, "device", "wipe", "西门备用", "--reason", "丢失", "--yes"), "还没有登记")
    refused(cli(server, "device", "wipe", "东门一号", "--reason", "  ", "--yes"), "擦除原因")
    wrong = cli(server, "device", "wipe", "东门一号", "--reason", "设备丢失", stdin="西门备用\n")
    refused(wrong, "未下达擦除命令")
    assert "东门一号" in wrong.stdout and "无法恢复" in wrong.stdout  # the question was asked
    refused(cli(server, "device", "wipe", "东门一号", "--reason", "设备丢失"), "未下达")  # no input
    assert devices(server)["东门一号"]["wipe"] is None
    assert not [r for r in town_audit(server) if r["action"] == "device_wipe"]

    # Ordered, typing the device's name back.
    proc = cli(server, "device", "wipe", "东门一号", "--reason", "设备丢失", stdin="东门一号\n")
    assert proc.returncode == 0 and "已向设备「东门一号」" in proc.stdout, proc.stderr
    again = cli(server, "device", "wipe", east_id, "--reason", "再次", "--yes", "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["ordered"] is False
    listed = devices(server)["东门一号"]
    assert listed["wipe"]["ordered_at"] and listed["wipe"]["done_at"] is None
    table = cli(server, "device", "list").stdout
    assert "审计标记" in table and "待擦除" in next(
        x for x in table.splitlines() if "东门一号" in x
    )
    audited = [r for r in town_audit(server) if r["action"] == "device_wipe"]
    assert len(audited) == 1 and audited[0]["reason"] == "设备丢失"
    assert audited[0]["user"].startswith("cli:") and east_id in audited[0]["detail"]

    # Written after the order, before the next contact: uploaded first, then the device erases
    # itself and says so.
    pass_gate(east, R, "王五")
    path = east.path
    report = run_sync(east, east.settings)
    assert not report.ok and report.error_kind == "wiped" and report.wipe_ordered
    assert "销毁" in report.error
    assert not path.exists()
    stats = json.loads(cli(server, "stats", "--json").stdout)
    assert stats["total"] == 3

    listed = devices(server)["东门一号"]
    assert listed["status"] == "revoked" and listed["wipe"]["done_at"] is not None
    assert [f["kind"] for f in listed["flags"]] == ["wiped"]
    line = next(x for x in cli(server, "device", "list").stdout.splitlines() if "东门一号" in x)
    assert "已擦除" in line
    refused(cli(server, "device", "wipe", "东门一号", "--reason", "丢失", "--yes"), "已吊销")

    zh = cli(server, "device", "flags").stdout
    assert "东门一号" in zh and "已自行擦除" in zh and "销毁了自己的密钥和数据" in zh
    en = cli(server, "device", "flags", lang="en").stdout
    assert "wiped itself" in en and "destroyed its keys and data" in en


def test_a_chain_cut_on_a_device_is_listed_by_the_town(server, tmp_path):
    west = enrolled(server, tmp_path, "西门一号", "CP-W")
    other = enrolled(server, tmp_path, "北门一号", "CP-N")
    for i in range(4):
        west.audit.append("export", "sup", {"file": f"f{i}.xlsx"})
    synced(west)
    synced(other)
    assert "没有审计标记" in cli(server, "device", "flags").stdout
    # An insider cuts the last entries off the chain and fixes its head (the local check can
    # be fooled this way; the town's anchor cannot).
    anchored = west.audit.anchor()["count"]
    keep = anchored - 2
    west.g.db.execute("DELETE FROM audit WHERE seq > ?", [keep])
    link = west.audit.link_at(keep)
    west.g.db.execute(
        "UPDATE fieldkit_meta SET value = ? WHERE key = 'audit_head'", [f"{keep}:{link}"]
    )
    report = run_sync(west, west.settings)
    assert report.warnings

    zh = cli(server, "device", "flags").stdout.splitlines()
    assert len(zh) == 2 and "西门一号" in zh[1] and "审计链倒退" in zh[1]
    assert f"只剩 {keep} 条" in zh[1] and f"锚定到第 {anchored} 条" in zh[1]
    en = cli(server, "device", "flags", "--device", "西门一号", lang="en").stdout
    assert f"has {keep} entries; the town holds entry {anchored}" in en
    assert "没有审计标记" in cli(server, "device", "flags", "--device", "北门一号").stdout
    refused(cli(server, "device", "flags", "--device", "nobody"), "没有设备「nobody」")
    rows = cli(server, "device", "list").stdout.splitlines()
    assert "审计链倒退" in next(x for x in rows if "西门一号" in x)
    assert next(x for x in rows if "北门一号" in x).rstrip().endswith("-")
    flags = devices(server)["西门一号"]["flags"]
    assert flags[0]["kind"] == "backwards"
    assert flags[0]["params"] == {"count": keep, "held": anchored}
    # Revoking a device whose wipe is still waiting means the order can never reach it: said.
    assert cli(server, "device", "wipe", "北门一号", "--reason", "丢失", "--yes").returncode == 0
    proc = cli(server, "device", "revoke", "北门一号")
    assert proc.returncode == 0 and "再也送不到" in proc.stderr
    assert "再也送不到" not in cli(server, "device", "revoke", "西门一号").stderr
    west.close()
    other.close()


def test_an_order_that_cannot_be_audited_is_taken_back(repo):
    """The order and its audit entry stand together: with the town's audit table gone, the
    order is withdrawn and the error raised (never a wipe nobody can account for)."""
    from sync.server import anchors, wipe_orders

    device = repo.add_device("东门一号", "0" * 64, 2e9, 1e9)
    db = ConsoleDB(repo)
    try:
        db.create_schema()
        audit = Audit(db)
        assert wipe_orders.order(repo, device, audit, "chief", "设备丢失") is True
        assert anchors.wipe_order(repo, device.device_id)["done_at"] is None
        other = repo.add_device("西门一号", "1" * 64, 2e9, 1e9)
        db.q("DROP TABLE console_audit")
        with pytest.raises(Exception):  # noqa: B017 - the database's own error, whatever its type
            wipe_orders.order(repo, other, audit, "chief", "设备丢失")
        assert anchors.wipe_order(repo, other.device_id) is None
        assert anchors.wipe_order(repo, device.device_id) is not None  # the first one stands
    finally:
        db.close()
