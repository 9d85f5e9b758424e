"""A device's checkpoint scope, end to end over real HTTP on loopback (SQLite and PostgreSQL):
the console enrols a device with a code typed in lower case and the device's records are
accepted; the device table shows each device's scope and how long ago it was seen in words; a
name a live device uses is refused; a record the server does reject for its checkpoint is said
on the device in the user's language, and ``fieldkit sync`` says how many wait and why."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from argon2 import PasswordHasher

from fieldkit.cli import main as fieldkit_main
from sync import client as sc
from sync.server.app import create_app
from sync.server.device_scope import DeviceScopes
from sync.server.town import ServerSettings, TownKeys
from sync.testing import LoopbackServer, drop_repo, make_repo

from .console_support import PASSWORD, gate_store, id_number, pass_gate, pg_or_skip

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
NAME = "幸福社区 网格员平板"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def town(request, tmp_path):
    """The town server as ``serve`` builds it: keys, a repository, the device scopes of its
    data directory, the console."""
    if request.param == "postgresql":
        pg_or_skip()
    data_dir = tmp_path / "town"
    data_dir.mkdir()
    repo = make_repo(request.param, str(data_dir))
    app = create_app(TownKeys.generate(), repo, ServerSettings(), scopes=DeviceScopes(data_dir))
    app.state.console.accounts.hasher = FAST
    app.state.console.accounts.add("chief", "admin", PASSWORD)
    yield app
    app.state.console.db.close()
    drop_repo(repo)


def _login(http: httpx.Client) -> str:
    tok = re.search(r'name="login_csrf" value="([^"]+)"', http.get("/console/login").text)[1]
    r = http.post("/console/login", data={"name": "chief", "password": PASSWORD, "login_csrf": tok})
    assert r.status_code == 303, r.text
    http.cookies.set("fk_console", r.headers["set-cookie"].split(";")[0].split("=", 1)[1])
    return re.search(r'name="csrf" value="([^"]+)"', http.get("/console/devices").text)[1]


def _enrol(http: httpx.Client, csrf: str, name: str, checkpoints: str) -> httpx.Response:
    return http.post(
        "/console/devices/enroll", data={"csrf": csrf, "name": name, "checkpoints": checkpoints}
    )


def _row(page: str, name: str) -> str:
    return re.search(rf'<tr data-device="{re.escape(name)}">.*?</tr>', page, re.S)[0]


def test_one_normal_form_for_checkpoint_codes(tmp_path):
    from sync.server.device_scope import checkpoint_code, checkpoint_codes

    assert checkpoint_code(" cp-0207 ") == "CP-0207"
    assert checkpoint_code("ｃｐ－０２０７") == "CP-0207"  # typed with a full-width IME
    assert checkpoint_codes("cp-e，CP-W、 cp-e") == ["CP-E", "CP-W"]
    # A binding file written before the fix, with the code as it was typed, still binds it.
    (tmp_path / "device-checkpoints.json").write_text(json.dumps({"dev1": ["cp-0207"]}), "utf-8")
    scopes = DeviceScopes(tmp_path)
    assert scopes.checkpoints("dev1") == frozenset({"CP-0207"})
    assert scopes.allows("dev1", "CP-0207") and scopes.allows("dev1", "cp-0207")
    assert not scopes.allows("dev1", "CP-0208")
    scopes.bind("dev2", ["cp-e", " CP-E"])
    assert json.loads((tmp_path / "device-checkpoints.json").read_text())["dev2"] == ["CP-E"]


def test_lower_case_code_at_enrolment_keeps_the_devices_records(town, tmp_path):
    """The trial: 限定卡口代码 typed ``cp-0207`` for a device whose code is CP-0207. Before the
    fix every record was rejected ("enrolled for checkpoint(s) cp-0207, not 'CP-0207'")."""
    with LoopbackServer(town) as srv, httpx.Client(base_url=srv.url) as http:
        csrf = _login(http)
        r = _enrol(http, csrf, NAME, "cp-0207")
        assert r.status_code == 200, r.text
        assert "此设备只能上报这些卡口的记录：CP-0207" in r.text
        assert "已按 CP-0207 登记" in r.text
        token = re.search(r'id="token">([^<]+)<', r.text)[1]
        store = gate_store(tmp_path / "device", "CP-0207", "幸福社区网格")
        sc.enroll(store, srv.url, token)
        for i in range(3):
            pass_gate(store, id_number(70 + i), "王五")
        report = sc.run_sync(store, store.settings)
        assert report.ok, report.error
        assert report.quarantined == 0 and report.stored >= 3
        assert store.outbox.counts()["quarantined"] == 0
        store.close()

        # The device table: its scope, a Chinese header, how long ago it was seen in words.
        page = http.get("/console/devices").text
        row = _row(page, NAME)
        assert "CP-0207" in row and "cp-0207" not in row
        assert "<th>ID</th>" not in page and "设备编号" in page and "限定卡口" in page
        assert re.search(r"（\d+ 秒前）", row), row
        assert not re.search(r"\(\d+s\)", row)


def test_a_name_in_use_is_refused_in_one_line(town):
    with LoopbackServer(town) as srv, httpx.Client(base_url=srv.url) as http:
        csrf = _login(http)
        assert _enrol(http, csrf, NAME, "").status_code == 200
        again = _enrol(http, csrf, "幸福社区网格员平板", "CP-0207")  # only a space less
        assert again.status_code == 400
        assert f"已有名为 {NAME} 的设备" in again.text
        assert [d.name for d in town.state.console.repo.list_devices()] == [NAME]
        # Once that device is revoked, its name is free again.
        [dev] = town.state.console.repo.list_devices()
        r = http.post("/console/devices/revoke", data={"csrf": csrf, "device_id": dev.device_id})
        assert r.status_code == 303
        assert _enrol(http, csrf, NAME, "CP-0207").status_code == 200


def test_a_record_rejected_for_its_checkpoint_is_said_in_chinese(
    town, tmp_path, capsys, monkeypatch
):
    """A device enrolled for CP-0101 whose records say CP-0207: the server rejects them with a
    code; the device says why in Chinese, and ``fieldkit sync`` counts them with the reason."""
    with LoopbackServer(town) as srv, httpx.Client(base_url=srv.url) as http:
        csrf = _login(http)
        r = _enrol(http, csrf, "东门平板", "CP-0101")
        token = re.search(r'id="token">([^<]+)<', r.text)[1]
        data_dir = tmp_path / "device"
        store = gate_store(data_dir, "CP-0207", "幸福社区网格")
        sc.enroll(store, srv.url, token)
        for i in range(2):
            pass_gate(store, id_number(80 + i), "赵六")
        report = sc.run_sync(store, store.settings)
        assert report.ok and report.quarantined == 2
        [reason] = {q["sync_reason"] for q in store.outbox.quarantined()}
        assert "[checkpoint_scope?" in reason  # the server's code travels with its sentence
        words = sc.rejection_text(reason)
        assert words.startswith("服务器拒收：本设备登记的卡口是 CP-0101，这条记录属于卡口 CP-0207")
        store.close()

        # `fieldkit sync` (nothing new to send) still says 2 records wait, rejected, and why.
        monkeypatch.setenv("FIELDKIT_PIN", "1234")
        code = fieldkit_main(["--lang", "zh", "--data-dir", str(data_dir), "sync"])
        out = capsys.readouterr().out
        assert code == 0, out
        assert "本机有 2 条被服务器拒收的记录，尚未上报：" in out
        assert "2 条：服务器拒收：本设备登记的卡口是 CP-0101" in out
        assert "按 a 把同一原因的记录全部重新排队" in out
        code = fieldkit_main(["--data-dir", str(data_dir), "sync", "--json"])
        data = json.loads(capsys.readouterr().out)
        assert data["rejected"][0]["count"] == 2


def test_reasons_kept_from_an_older_server_are_said_in_chinese():
    old = "server: rejected: this device is enrolled for checkpoint(s) cp-0207, not 'CP-0207'"
    assert sc.rejection_text(old).startswith("服务器拒收：本设备登记的卡口是 cp-0207")
    assert sc.rejection_text("server: rejected: record is not valid JSON") == (
        "服务器拒收：record is not valid JSON"
    )


def test_device_add_cli_upper_cases_codes_and_refuses_a_name_in_use(tmp_path, capsys):
    from sync.server.cli import main as server_main

    def run(*argv):
        code = server_main(["--lang", "zh", *[str(a) for a in argv]])
        out = capsys.readouterr()
        return code, out.out, out.err

    town_dir = tmp_path / "town"
    assert run("init", "--data-dir", town_dir)[0] == 0
    code, out, err = run(
        "device", "add", NAME, "--checkpoint", "cp-0207", "--json", "--data-dir", town_dir
    )
    assert code == 0, err
    device = json.loads(out)
    assert device["checkpoints"] == ["CP-0207"]
    assert DeviceScopes(town_dir).checkpoints(device["device_id"]) == frozenset({"CP-0207"})
    code, out, err = run("device", "add", "幸福社区网格员平板", "--no-qr", "--data-dir", town_dir)
    assert code == 2 and f"已有名为 {NAME} 的设备" in err
