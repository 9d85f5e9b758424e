"""``fieldkit-server`` commands, and the town server as a real process killed mid-ingest."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta

import httpx
import pytest

from fieldkit.config import load_settings
from fieldkit.crypto import blind_index, keyperson_hash
from fieldkit.domain import Decision, Outcome
from fieldkit.i18n import t
from fieldkit.store import PassageInput, init_store
from sync import client as sc
from sync.server.cli import main as server_main
from sync.server.repository import open_repository
from sync.server.town import TownKeys
from sync.testing import fake_record, free_port, new_pg_schema, pg_url
from tests.conftest import require_pg

pytestmark = pytest.mark.usefixtures("english")  # asserts the English messages

ADMIT = Decision(Outcome.ADMIT, ())


def run(capsys, *argv):
    code = server_main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def town_dir(tmp_path, capsys):
    d = tmp_path / "town"
    code, out, _ = run(capsys, "init", "--data-dir", d)
    assert code == 0 and "fingerprint" in out
    return d


def test_init_device_keyperson_stats_trace(town_dir, tmp_path, capsys):
    # init refuses to overwrite keys devices have pinned.
    code, _, err = run(capsys, "init", "--data-dir", town_dir)
    assert code == 2 and "refusing to replace" in err

    code, out, _ = run(
        capsys,
        "device",
        "add",
        "gate-east",
        "--data-dir",
        town_dir,
        "--url",
        "http://10.0.0.2:8470",
    )
    assert code == 0 and "fieldkit enroll http://10.0.0.2:8470" in out
    assert "█" in out or "▀" in out  # the QR in the terminal
    code, out, _ = run(
        capsys, "device", "add", "gate-west", "--data-dir", town_dir, "--json", "--no-qr"
    )
    token = json.loads(out)["token"]
    assert token.endswith(TownKeys.load(town_dir).fingerprint)
    code, out, _ = run(capsys, "device", "list", "--json", "--data-dir", town_dir)
    assert [d["status"] for d in json.loads(out)] == ["pending", "pending"]
    code, out, _ = run(capsys, "device", "revoke", "gate-west", "--data-dir", town_dir)
    assert code == 0 and "revoked" in out
    code, _, err = run(capsys, "device", "revoke", "nobody", "--data-dir", town_dir)
    assert code == 2 and "device list" in err

    # Key persons from CSV (GBK, as Excel in China saves it) and XLSX; plaintext never stored.
    ids = ["11010519491231002X", "110105491231002", "440524188001010014"]
    path = tmp_path / "kp.csv"
    path.write_bytes(
        "身份证号,类别,截止日期\n".encode("gb18030")
        + (
            f"{ids[0]},密接,2022/05/01\n{ids[1]},次密接,\n110105194912310021,密接,\n12345,密接,\n"
        ).encode("gb18030")
    )
    code, out, err = run(capsys, "keyperson", "import", path, "--data-dir", town_dir)
    # The 15-digit number is the same person as ids[0]: one entry.
    assert code == 0 and "1 imported" in out and "row 5" not in out
    assert t("sheets.keyperson.row", row=4, why=t("sheets.keyperson.bad_check")) in err
    # 12345: all digits, so a resident ID of impossible length (the shared ID rule since the
    # gate refuses 1-7 digit "IDs"), said as such rather than "not an ID or passport number"
    assert t("sheets.keyperson.row", row=5, why=t("sheets.keyperson.bad_id")) in err
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.append(["证件号码", "人员类别"])
    wb.active.append([ids[2], "境外返回"])
    wb.save(tmp_path / "kp.xlsx")
    code, out, _ = run(
        capsys, "keyperson", "import", tmp_path / "kp.xlsx", "--replace", "--data-dir", town_dir
    )
    assert "1 imported, 1 removed" in out
    raw = (town_dir / "town.sqlite3").read_bytes()
    assert all(i.encode() not in raw for i in ids)
    keys = TownKeys.load(town_dir)
    repo = open_repository(None, str(town_dir))
    assert repo.keyperson_hashes() == {keyperson_hash(keys.index_key, ids[2])}

    # Records, then stats and both traces.
    from sync.server.app import TownServer
    from sync.server.repository import BatchMeta

    person = blind_index(keys.index_key, ids[0])
    records = [
        fake_record(i, checkpoint="CP-1" if i % 2 else "CP-2", id_hash=person if i < 3 else None)
        for i in range(8)
    ]
    server = TownServer(keys, repo, __import__("sync.server.town", fromlist=["x"]).ServerSettings())
    from sync import protocol as p
    from sync.server.app import parse_record

    rows = [
        parse_record(i, line, server.cipher, 65536)
        for i, line in enumerate(p.encode_records(records))
    ]
    repo.ingest(BatchMeta("b-1", "dev", time.time(), 8), rows, {}, lambda o: {}, time.time())
    repo.close()
    code, out, _ = run(capsys, "stats", "--json", "--data-dir", town_dir)
    assert sorted((r["checkpoint"], r["records"]) for r in json.loads(out)["rows"]) == [
        ("CP-1", 4),
        ("CP-2", 4),
    ]
    code, out, _ = run(
        capsys, "trace", "--id-number", ids[0].lower(), "--json", "--data-dir", town_dir
    )
    assert [r["record_id"] for r in json.loads(out)] == [r["id"] for r in records[:3]]
    code, out, _ = run(
        capsys,
        "trace",
        "--checkpoint",
        "CP-2",
        "--from",
        "2022-04-01T00:00+08:00",
        "--to",
        "2022-04-01T00:03+08:00",
        "--json",
        "--data-dir",
        town_dir,
    )
    assert [r["record_id"] for r in json.loads(out)] == [records[0]["id"], records[2]["id"]]
    code, _, err = run(capsys, "trace", "--checkpoint", "CP-2", "--data-dir", town_dir)
    assert code == 2 and "--from" in err


def test_pass_issue_sheet_and_revoke(town_dir, tmp_path, capsys):
    from scanners.payloads.passes import verify_pass

    out_png = tmp_path / "sheet.png"
    code, _out, _ = run(
        capsys,
        "pass",
        "issue",
        "--subject",
        "3-2-501",
        "--subject",
        "3-2-502",
        "--holder",
        "李四",
        "--valid-from",
        "2022-04-01",
        "--valid-to",
        "2022-04-30",
        "--out",
        out_png,
        "--data-dir",
        town_dir,
    )
    assert code == 0 and out_png.exists()
    from PIL import Image

    assert Image.open(out_png).size == (1240, 1754)
    with open(out_png.with_suffix(".csv"), encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    assert [r["holder"] for r in rows] == ["李*", "李*"]
    keys = TownKeys.load(town_dir)
    result = verify_pass(
        rows[0]["text"],
        keys.ed25519.public_key(),
        set(),
        datetime.fromisoformat("2022-04-10T12:00+08:00"),
    )
    assert result.ok and result.subject == "3-2-501"
    code, _out, _ = run(capsys, "pass", "revoke", rows[0]["pass_id"], "--data-dir", town_dir)
    assert code == 0
    repo = open_repository(None, str(town_dir))
    assert [c.data["pass_id"] for c in repo.changes_since(0, 10)] == [rows[0]["pass_id"]]
    repo.close()


def _start_server(town_dir, port):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sync.server.cli",
            "serve",
            "--data-dir",
            str(town_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"server did not start: {proc.stdout.read().decode()[-2000:]}")


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_server_killed_mid_ingest_and_restarted(backend, tmp_path, capsys):
    schema = None
    args = ["init", "--data-dir", tmp_path / "town"]
    if backend == "postgresql":
        require_pg()
        schema = new_pg_schema()
        args += ["--database-url", pg_url(), "--db-schema", schema]
    assert run(capsys, *args)[0] == 0
    town_dir = tmp_path / "town"
    _code, out, _ = run(
        capsys, "device", "add", "gate-east", "--json", "--no-qr", "--data-dir", town_dir
    )
    token = json.loads(out)["token"]

    settings = load_settings(None, tmp_path / "device")
    settings.security.scrypt_n = 2**10
    settings.security.argon2_memory_kib, settings.security.argon2_time_cost = 1024, 1
    settings.security.argon2_parallelism, settings.security.min_pin_length = 1, 4
    settings.sync.batch_size = 100
    store = init_store(settings)
    store.setup("sup", "1234", checkpoint_name="East", checkpoint_code="CP-E")
    store.passages.record_many(
        (
            PassageInput(
                direction="in",
                id_kind="resident_id",
                id_number="11010519491231002X",
                name="王五",
                source="cli",
                ts=datetime.now().astimezone() - timedelta(seconds=i),
            ),
            ADMIT,
        )
        for i in range(3000)
    )

    port = free_port()
    proc = _start_server(town_dir, port)
    try:
        url = f"http://127.0.0.1:{port}"
        sc.enroll(store, url, token)
        repo = open_repository(pg_url() if schema else None, str(town_dir), schema)
        # Sync in a thread; SIGKILL the server as soon as some records have landed.
        import threading

        result = {}
        worker = threading.Thread(
            target=lambda: result.setdefault(
                "r", sc.run_sync(store, store.settings, sleep=lambda s: None)
            )
        )
        worker.start()
        while repo.record_count() == 0 and worker.is_alive():
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        worker.join()
        first = result["r"]
        landed = repo.record_count()
        assert 0 < landed
        if not first.ok:
            assert first.error_kind == "network"
        proc = _start_server(town_dir, port)
        second = sc.run_sync(store, store.settings)
        assert second.ok, second.error
        assert store.outbox.counts() == {"pending": 0, "synced": 3000, "quarantined": 0}
        hashes = repo.record_hashes()
        assert len(hashes) == 3000
        device_ids = {r["id"] for r in store.g.query("SELECT id FROM passages")}
        assert set(hashes) == device_ids
        log = (town_dir / "server.log").read_text()
        assert "batch" in log
        if schema:
            repo.drop_schema()
        repo.close()
    finally:
        proc.kill()
        proc.wait()
        store.close()
