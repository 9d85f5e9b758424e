"""Console pieces without a browser: accounts (Argon2id, lock-out back-off, idle expiry), the
audit chain, transport refusal, key-person sheets (GBK CSV, formulas, zip bombs), the user CLI;
storage pieces on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import re
import time
import zipfile

import httpx
import pytest
from argon2 import PasswordHasher

from sync.server.console.auth import IDLE_S, Accounts, Audit, AuthError
from sync.server.console.kpfile import UploadError, read_upload
from sync.testing import LoopbackServer, TestTown, drop_repo, make_repo

from .console_support import PASSWORD, ServerProcess, form_token, id_number, pg_or_skip

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def town(request, tmp_path):
    if request.param == "postgresql":
        pg_or_skip()
    repo = make_repo(request.param, str(tmp_path))
    town = TestTown(repo)
    town.app.state.console.accounts.hasher = FAST
    yield town
    town.app.state.console.db.close()
    drop_repo(repo)


def test_argon2id_hash_and_lockout_with_back_off(town):
    acc: Accounts = town.app.state.console.accounts
    acc.add("clerk", "officer", PASSWORD, now=1000.0)
    stored = town.app.state.console.db.one("SELECT pw_hash FROM console_users")[0]
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    for i in range(4):
        with pytest.raises(AuthError) as err:
            acc.login("clerk", "wrong password", "zh", now=1000.0 + i)
        assert err.value.key == "console.err.login"
    with pytest.raises(AuthError) as err:  # the fifth wrong one locks for 30 s
        acc.login("clerk", "wrong password", "zh", now=1010.0)
    assert err.value.key == "console.err.locked" and err.value.params["s"] == 31
    with pytest.raises(AuthError) as err:  # the right password does not open a locked account
        acc.login("clerk", PASSWORD, "zh", now=1020.0)
    assert err.value.key == "console.err.locked"
    with pytest.raises(AuthError) as err:  # after the lock, one more wrong one: twice as long
        acc.login("clerk", "wrong password", "zh", now=1041.0)
    assert err.value.params["s"] == 61
    token = acc.login("clerk", PASSWORD, "zh", now=1103.0)
    assert acc.session(token, now=1104.0).user.name == "clerk"
    assert acc.get("clerk").failed == 0
    with pytest.raises(AuthError) as err:  # unknown user: the same sentence as a wrong password
        acc.login("nobody", PASSWORD, "zh")
    assert err.value.key == "console.err.login"


def test_idle_session_expires_and_disable_ends_sessions(town):
    acc: Accounts = town.app.state.console.accounts
    acc.add("clerk", "officer", PASSWORD)
    token = acc.login("clerk", PASSWORD, "zh", now=5000.0)
    assert acc.session(token, now=5000.0 + IDLE_S - 60) is not None  # renewed by use
    assert acc.session(token, now=5000.0 + 2 * IDLE_S - 120) is not None
    assert acc.session(token, now=5000.0 + 3 * IDLE_S) is None
    token = acc.login("clerk", PASSWORD, "zh")
    acc.set_disabled("clerk")
    assert acc.session(token) is None
    with pytest.raises(AuthError):
        acc.login("clerk", PASSWORD, "zh")
    with pytest.raises(AuthError) as err:
        acc.add("short", "officer", "abc")
    assert err.value.key == "console.err.password_short"


def test_audit_chain_shows_an_edited_entry(town):
    audit: Audit = town.app.state.console.audit
    for i in range(3):
        audit.append("chief", "trace_unmask", {"n": i}, reason=f"流调 {i}")
    assert audit.verify() is None
    town.app.state.console.db.q("UPDATE console_audit SET reason = 'nothing' WHERE seq = 2")
    assert audit.verify() == 2


def test_plain_http_from_another_machine_is_refused_or_bannered(town):
    """A client that is not this machine, over plain HTTP: one sentence, 403; with
    ``serve --insecure-http`` the pages are served under a red banner."""
    from fastapi.testclient import TestClient

    with TestClient(town.app, base_url="http://10.0.0.5") as http:  # client host: testclient
        r = http.get("/console/login")
        assert r.status_code == 403 and "不通过未加密的 HTTP" in r.text
        assert "<form" not in r.text
        town.app.state.insecure_http = True
        r = http.get("/console/login")
        assert r.status_code == 200 and "banner-insecure" in r.text


def login(http: httpx.Client, name: str) -> str:
    tok = re.search(r'name="login_csrf" value="([^"]+)"', http.get("/console/login").text)[1]
    r = http.post("/console/login", data={"name": name, "password": PASSWORD, "login_csrf": tok})
    assert r.status_code == 303, r.text
    http.cookies.set("fk_console", r.headers["set-cookie"].split(";")[0].split("=", 1)[1])
    return re.search(r'name="csrf" value="([^"]+)"', http.get("/console/trace").text)[1]


def test_unmasking_needs_a_reason_and_is_audited(town):
    con = town.app.state.console
    con.accounts.add("clerk", "officer", PASSWORD)
    con.accounts.add("chief", "admin", PASSWORD)
    with LoopbackServer(town.app) as srv, httpx.Client(base_url=srv.url) as admin:
        csrf = login(admin, "chief")  # full views are an admin's (officers see masked data only)
        r = admin.post(
            "/console/trace", data={"csrf": csrf, "id_number": id_number(1), "full": "1"}
        )
        assert r.status_code == 400 and "请填写事由" in r.text
        assert not [a for a in con.audit.rows() if a["action"] == "trace_unmask"]
        r = admin.post(
            "/console/trace",
            data={"csrf": csrf, "id_number": id_number(1), "full": "1", "reason": "流调 4月3日"},
        )
        assert r.status_code == 200
        row = next(a for a in con.audit.rows() if a["action"] == "trace_unmask")
        assert row["user"] == "chief" and row["reason"] == "流调 4月3日"
        assert id_number(1) not in row["detail"]
    with LoopbackServer(town.app) as srv, httpx.Client(base_url=srv.url) as http:
        csrf = login(http, "clerk")
        r = http.post(
            "/console/trace",
            data={"csrf": csrf, "id_number": id_number(1), "full": "1", "reason": "流调 4月3日"},
        )
        assert r.status_code == 403 and "只有管理员" in r.text
        r = http.post("/console/trace", data={"csrf": csrf, "id_number": "123"})
        assert r.status_code == 400 and "身份证号无效" in r.text
        big = http.post(
            "/console/keypersons/upload",
            data={"csrf": csrf},
            files={"file": ("a.csv", b"x" * (7 * 1024 * 1024))},
        )
        assert big.status_code == 413 and "太大" in big.text

        def chunks():
            yield f"csrf={csrf}&id_number=".encode()
            yield b"1" * 100

        chunked = http.post(
            "/console/trace",
            content=chunks(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert chunked.status_code == 413
        r = http.post("/console/rules/preview", data={"csrf": csrf, "mode": "sealed"})
        assert r.status_code == 403 and "只有管理员" in r.text
        assert town.repo.latest_change("mode") is None


# --- key-person sheets --------------------------------------------------------------------------


def test_gbk_csv_with_title_row_and_formula_text():
    key = b"k" * 32
    a, b = id_number(21), id_number(22)
    text = (
        "东风镇重点人员名单,,\n"
        "序号,身份证号码,人员类别\n"
        f"1,{a},密接\n"
        f'2,{b[:9]} {b[9:]},=HYPERLINK("http://x")\n'
        "合计,2 人,\n"
    )
    preview = read_upload(text.encode("gbk"), "名单.csv", key)
    assert len(preview.entries) == 2 and not preview.errors
    assert preview.rows[0].row == 3  # the row number the clerk sees in Excel
    assert preview.entries[1]["category"] == '=HYPERLINK("http://x")'  # kept as text
    assert all(a not in str(r) and b not in str(r) for r in preview.rows)


def test_zip_bomb_and_non_sheets_refused_in_one_sentence():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/worksheets/sheet1.xml", b"<" + b" " * (80 * 1024 * 1024) + b"/>")
    with pytest.raises(UploadError) as err:
        read_upload(buf.getvalue(), "名单.xlsx", b"k" * 32)
    assert err.value.key == "console.kp.err_bomb"
    for data, name, key in (
        (b"PK\x03\x04junk", "a.xlsx", "console.kp.err_unreadable"),
        (b"MZ\x90\x00", "a.exe", "console.kp.err_type"),
        (b"x" * (6 * 1024 * 1024), "a.csv", "console.kp.err_size"),
        ("姓名,电话\n张三,123\n".encode(), "a.csv", "console.kp.err_header"),
    ):
        with pytest.raises(UploadError) as err:
            read_upload(data, name, b"k" * 32)
        assert err.value.key == key


def test_user_cli(tmp_path):
    srv = ServerProcess(tmp_path, "sqlite")
    out = srv.cli("user", "add", "chief", "--role", "admin", password=PASSWORD).stdout
    assert "chief" in out and PASSWORD not in out
    assert "chief" in srv.cli("user", "list").stdout
    r = srv.cli("user", "add", "chief", "--role", "admin", password=PASSWORD, check=False)
    assert r.returncode == 2 and "账号 chief 已存在" in r.stderr and "Traceback" not in r.stderr
    r = srv.cli("user", "add", "x", "--role", "officer", password="short", check=False)
    assert r.returncode == 2 and "密码至少 10 位" in r.stderr
    srv.cli("user", "disable", "chief")
    assert "已停用" in srv.cli("user", "list").stdout
    srv.cli("user", "reset-password", "chief", password="another-password-1")
    r = srv.cli("user", "disable", "nobody", check=False)
    assert r.returncode == 2 and "没有账号 nobody" in r.stderr
    assert "chief" in srv.cli("user", "list", "--json").stdout


# --- ledger: conflicts resolved in the console, status shown when tracing ------------------------


def test_ledger_conflict_listed_resolved_and_status_in_trace(town, tmp_path):
    from fieldkit.config import load_settings
    from fieldkit.store import init_store
    from scanners.idnumber import mask_phone
    from sync import client as sc
    from sync.testing import SyncASGITransport

    transport = SyncASGITransport(town.app)
    person = id_number(31)
    house = {"community": "幸福社区", "building": "3栋", "unit": "2单元", "room": "301"}
    stores = []
    for name, code, phone in (("dev-a", "CP-A", "13900002222"), ("dev-b", "CP-B", "13700003333")):
        settings = load_settings(None, tmp_path / name)
        settings.security.scrypt_n = 2**10
        for k, v in (("argon2_memory_kib", 1024), ("argon2_time_cost", 1)):
            if hasattr(settings.security, k):
                setattr(settings.security, k, v)
        if hasattr(settings.security, "min_pin_length"):
            settings.security.min_pin_length = 4
        s = init_store(settings)
        s.setup("sup", "1234", checkpoint_name=f"Gate {code}", checkpoint_code=code)
        sc.enroll(s, "http://town", town.new_token(name), transport=transport)
        hid, _ = s.ledger.save_household(dict(house, resident_count=3), source="import")
        mid, _ = s.ledger.save_member(
            hid,
            {"name": "张三", "id_number": person, "phone": "13800001111", "relation": "户主"},
            source="import",
        )
        assert sc.run_sync(s, s.settings, transport=transport).stored >= 2
        stores.append((s, hid, mid, phone))
    for s, hid, mid, phone in stores:  # both change the phone before hearing of each other
        s.ledger.save_member(hid, {"phone": phone}, member_id=mid)
    for s, *_ in stores:
        sc.run_sync(s, s.settings, transport=transport)
    (conflict,) = town.repo.ledger_conflicts()
    con = town.app.state.console
    con.accounts.add("chief", "admin", PASSWORD)
    with LoopbackServer(town.app) as srv, httpx.Client(base_url=srv.url) as http:
        csrf = login(http, "chief")
        page = http.get("/console/conflicts").text
        assert mask_phone("13900002222") in page and mask_phone("13700003333") in page
        assert "13900002222" not in page
        r = http.post(
            "/console/conflicts/resolve",
            data={"csrf": csrf, "conflict_id": conflict["conflict_id"], "keep": "other"},
        )
        assert r.status_code == 303
        assert town.repo.ledger_open_conflicts() == 0
        page = http.post("/console/trace", data={"csrf": csrf, "id_number": person}).text
        assert mask_phone("13700003333") in page and "张*" in page  # the ledger, masked
        assert person not in page and "张三" not in page
        r = http.post(
            "/console/conflicts/resolve", data={"csrf": csrf, "conflict_id": "999", "keep": "kept"}
        )
        assert r.status_code == 400 and "没有这条冲突记录" in r.text
    transport.shutdown()
    for s, *_ in stores:
        s.close()


# --- daily report: who reported by the deadline --------------------------------------------------


def test_daily_report_on_time_zero_late_and_missing(town):
    """A sends today's passages (on time today); B sends only passages of three days ago, now:
    for today that is a zero report, for that day it is late; A reported nothing that day."""
    from datetime import date, timedelta

    from sync import protocol as p
    from sync.server.console import views
    from sync.server.console.facts import catch_up
    from sync.testing import SyncASGITransport, fake_record

    today = date.today().isoformat()
    before = (date.today() - timedelta(days=3)).isoformat()
    transport = SyncASGITransport(town.app)
    with httpx.Client(transport=transport, base_url="http://town") as http:
        for name, cp, day in (("gate-a", "CP-A", today), ("gate-b", "CP-B", before)):
            device_id, key = town.enroll_raw(http, name)
            records = [fake_record(i, checkpoint=cp, day=day) for i in range(4)]
            _, body = town.seal(device_id, key, records)
            r = http.post(p.PATH_BATCHES, content=body, headers={"X-Fieldkit-Device": device_id})
            assert r.json()["counts"]["stored"] == 4
    transport.shutdown()
    con = town.app.state.console
    catch_up(con.db, town.keys.data_key)
    now = views.daily_report(con.db, town.repo, today, "10:30")
    assert now["status"] == {"CP-A": "on_time", "CP-B": "zero"}
    then = views.daily_report(con.db, town.repo, before, "10:30")
    assert then["status"] == {"CP-A": "missing", "CP-B": "late"}
    assert [r.total for r in then["rows"]] == [0, 4]


def test_admin_manages_accounts_and_settings_in_the_browser_forms(town):
    con = town.app.state.console
    con.accounts.add("chief", "admin", PASSWORD)
    with LoopbackServer(town.app) as srv, httpx.Client(base_url=srv.url) as http:
        csrf = login(http, "chief")

        def act(**data):
            return http.post("/console/users/action", data={"csrf": csrf, **data})

        assert act(action="add", name="clerk", role="officer", password=PASSWORD).status_code == 303
        assert con.accounts.get("clerk").role == "officer"
        r = act(action="add", name="clerk", role="officer", password=PASSWORD)
        assert r.status_code == 400 and "已存在" in r.text
        r = act(action="add", name="x", role="officer", password="short")
        assert r.status_code == 400 and "密码至少" in r.text
        assert act(action="disable", name="clerk").status_code == 303
        assert con.accounts.get("clerk").disabled
        r = act(action="disable", name="chief")
        assert r.status_code == 400 and "不能停用自己" in r.text
        assert act(action="reset", name="clerk", password="new-password-22").status_code == 303
        r = http.post(
            "/console/settings",
            data={"csrf": csrf, "deadline": "9:05", "minutes": "15", "late": "30"},
        )
        assert r.status_code == 303
        assert (
            con.setting("deadline", "") == "09:05" and con.setting("copresence_minutes", "") == "15"
        )
        r = http.post(
            "/console/settings",
            data={"csrf": csrf, "deadline": "25:00", "minutes": "x", "late": "1"},
        )
        assert (
            r.status_code == 400 and "设置无效" in r.text and con.setting("deadline", "") == "09:05"
        )
        assert "次日 09:05" in http.get("/console/reports").text
        actions = [a["action"] for a in con.audit.rows()]
        assert {"user_add", "user_disable", "user_reset", "settings"} <= set(actions)
        assert con.audit.verify() is None


def test_console_reads_the_servers_own_formats():
    """The console restates two formats to avoid importing the app that mounts it: they must
    stay byte-equal to the app's."""
    import os

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from sync.server import app
    from sync.server.console import sealed

    cipher = AESGCM(os.urandom(32))
    blob = app.encrypt_body(cipher, "rid-1", b'{"body":{}}')
    assert sealed.decrypt_body(cipher, "rid-1", blob) == app.decrypt_body(cipher, "rid-1", blob)
    token = "ABCDEFGH234567ABCDEFGH234567.0123456789abcdef.ffff"
    assert sealed.token_hash(token) == app.token_hash(token)


# --- devices report their outbox; a sync with nothing to send is a zero report -------------------


def _device(town, transport, tmp_path, name, code):
    from sync import client as sc

    from .console_support import gate_store

    store = gate_store(tmp_path / name, code, f"Gate {code}")
    sc.enroll(store, "http://town", town.new_token(name), transport=transport)
    return store


def test_overview_shows_each_devices_outbox_as_last_reported(town, tmp_path, monkeypatch):
    """A real device syncs (nothing left: 待上报 0), then reports 2 records still waiting at its
    anchor exchange; an older device that sends no count is shown as not reported, and its
    sync still succeeds."""
    from sync import anchor_client
    from sync import client as sc
    from sync.server import contacts
    from sync.testing import SyncASGITransport
    from sync.transport import TownClient

    from .console_support import pass_gate

    transport = SyncASGITransport(town.app)
    east = _device(town, transport, tmp_path, "east", "CP-E")
    old = _device(town, transport, tmp_path, "old", "CP-O")
    pass_gate(east, id_number(41), "王五")
    pass_gate(old, id_number(42), "赵六")
    report = sc.run_sync(east, east.settings, transport=transport)
    assert report.ok and report.stored >= 1, report.error
    east_id = east.kv.get("sync.device_id")
    assert contacts.last_reported(town.repo)[east_id][0] == 0
    pass_gate(east, id_number(43), "孙七", direction="out")
    pass_gate(east, id_number(44), "周八")
    assert east.outbox.counts().get("pending") == 2
    ident = sc._identity(east, east.settings)
    with TownClient(ident.url, transport=transport) as client:  # the exchange that ends a sync
        assert anchor_client.exchange_anchor(east, client, ident, None).get("anchor")
    pending, at = contacts.last_reported(town.repo)[east_id]
    assert pending == 2
    # an older device: its anchor exchange carries no count field (and its sync still works)
    newer = anchor_client._query
    with monkeypatch.context() as m:
        m.setattr(
            anchor_client,
            "_query",
            lambda *a: "&".join(f for f in newer(*a).split("&") if not f.startswith("pending=")),
        )
        report = sc.run_sync(old, old.settings, transport=transport)
    assert report.ok and not report.warnings, (report.error, report.warnings)
    old_id = old.kv.get("sync.device_id")
    assert old_id not in contacts.last_reported(town.repo)
    assert old_id in contacts.contacted(town.repo, 0, 2e9)
    transport.shutdown()
    con = town.app.state.console
    con.accounts.add("chief", "admin", PASSWORD)
    hhmm = time.strftime("%H:%M", time.localtime(at))
    with LoopbackServer(town.app) as srv, httpx.Client(base_url=srv.url) as http:
        login(http, "chief")
        page = http.get("/console/overview").text
        assert f"待上报 2 条（{hhmm} 报告）" in page
        assert "待上报：设备未报告" in page  # the older device
        assert "设备尚未向服务器报告" not in page
        http.post("/console/lang", data={"csrf": form_token(page), "lang": "en"})
        page = http.get("/console/overview").text
        assert f"2 waiting (reported {hhmm})" in page
    for s in (east, old):
        s.close()


def test_sync_with_nothing_to_send_counts_as_zero_report(town, tmp_path, monkeypatch):
    """A device placed at CP-Z (it sent a passage today) synced on a day three days ago with
    nothing to send: that day's report is a zero report for CP-Z, not "not reported". CP-L's
    device synced only after that day's deadline: still not reported."""
    from datetime import date, datetime, timedelta

    from sync import client as sc
    from sync.server import contacts
    from sync.server.console import views
    from sync.server.console.facts import catch_up
    from sync.testing import SyncASGITransport

    from .console_support import pass_gate

    before = date.today() - timedelta(days=3)
    transport = SyncASGITransport(town.app)
    stores = []
    for name, code, when in (
        ("zero", "CP-Z", datetime(before.year, before.month, before.day, 18, 0)),
        ("late", "CP-L", datetime(before.year, before.month, before.day) + timedelta(hours=35)),
    ):
        s = _device(town, transport, tmp_path, name, code)
        pass_gate(s, id_number(50 + len(stores)), "吴九")
        assert sc.run_sync(s, s.settings, transport=transport).ok  # today's passage: placed
        fake = when.astimezone().timestamp()
        clock = type("Clock", (), {"time": staticmethod(lambda at=fake: at)})
        with monkeypatch.context() as m:  # the town's clock at that sync
            m.setattr(contacts, "time", clock)
            report = sc.run_sync(s, s.settings, transport=transport)  # nothing to send
        assert report.ok and report.sent == 0, report.error
        stores.append(s)
    transport.shutdown()
    con = town.app.state.console
    catch_up(con.db, town.keys.data_key)
    day = views.daily_report(con.db, town.repo, before.isoformat(), "10:30")
    assert day["status"] == {"CP-L": "missing", "CP-Z": "zero"}
    assert views.daily_report(con.db, town.repo, date.today().isoformat(), "10:30")["status"] == {
        "CP-L": "on_time",
        "CP-Z": "on_time",
    }
    for s in stores:
        s.close()
