"""The town office console in a real headless Chromium against a real ``fieldkit-server serve``,
with two enrolled gate devices syncing real records; on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import io
from datetime import date

import httpx
import openpyxl
import pytest
import zxingcpp
from PIL import Image

from sync.client import enroll, run_sync

from .console_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PASSWORD,
    ServerProcess,
    chromium_or_skip,
    form_token,
    gate_store,
    id_number,
    pass_gate,
    pg_or_skip,
)

P, Q, R, FEVER, KP, KP2 = (id_number(i) for i in (11, 12, 13, 14, 15, 16))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def server(request, tmp_path):
    chromium_or_skip()
    if request.param == "postgresql":
        pg_or_skip()
    srv = ServerProcess(tmp_path, request.param)
    srv.cli("user", "add", "chief", "--role", "admin", password=PASSWORD)
    srv.cli("user", "add", "clerk", "--role", "officer", password=PASSWORD)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def sync(store):
    """Sync a device store; every step, the audit-anchor exchange included, must succeed."""
    report = run_sync(store, store.settings)
    assert report.ok, report.error
    return report


def login(page, url: str, name: str, password: str = PASSWORD) -> None:
    page.goto(url + "/console/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def cell(page, checkpoint: str, key: str) -> int:
    return int(page.inner_text(f'tr[data-checkpoint="{checkpoint}"] td[data-k="{key}"]'))


def messy_keyperson_sheet(path) -> None:
    """A title row merged across, a blank row, the header on row 3, category cells merged
    down, an ID typed with spaces, a wrong check digit, an empty ID."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws["A1"] = "某镇重点人员名单（2022年4月）"
    ws.merge_cells("A1:D1")
    ws.append([])
    ws.append(["序号", "公民身份号码", "人员类别", "管控截止"])
    ws.append([1, KP[:6] + " " + KP[6:], "密接", "2099-05-01"])
    ws.append([2, KP2, None, "2099/05/02"])
    ws.merge_cells("C4:C5")
    ws.append([3, KP[:-1] + ("0" if KP[-1] != "0" else "1"), "次密接", None])
    ws.append([4, None, "次密接", None])
    wb.save(path)


def test_console_end_to_end(server, browser, tmp_path):
    url = server.url
    shots = tmp_path / "screens"
    shots.mkdir()
    ctx = browser.new_context(viewport={"width": 1360, "height": 900}, accept_downloads=True)
    page = ctx.new_page()

    def shot(name: str, lang: str = "zh") -> None:
        page.screenshot(path=str(shots / f"{server.backend}-{lang}-{name}.png"), full_page=True)

    page.goto(url + "/console/overview")
    assert "/console/login" in page.url
    shot("login")
    login(page, url, "chief")
    assert page.url.endswith("/console/overview")

    # enroll two devices in the console, each token used by a real device store
    tokens = {}
    for name, scope in (("东门一号", "CP-E"), ("西门一号", "")):
        page.goto(url + "/console/devices")
        page.fill("input[name=name]", name)
        page.fill("input[name=checkpoints]", scope)
        page.click("text=登记新设备")
        assert page.is_visible("#new-device img.qr")
        tokens[name] = page.inner_text("#token").strip()
        qr = page.get_attribute("#new-device img.qr", "src")  # the QR says the same, offline
        assert qr.startswith("data:image/png;base64,")
        image = Image.open(io.BytesIO(base64.b64decode(qr.split(",", 1)[1])))
        assert zxingcpp.read_barcodes(image)[0].text == f"fieldkit enroll {url} {tokens[name]}"
        assert ("只能上报这些卡口的记录：CP-E" if scope else "未限定") in page.inner_text("main")
    shot("devices")
    east = gate_store(tmp_path / "east", "CP-E", "东门")
    west = gate_store(tmp_path / "west", "CP-W", "西门")
    enroll(east, url, tokens["东门一号"])
    enroll(west, url, tokens["西门一号"])

    # real gate decisions: P in at the east gate, out at the west; Q with P at the east gate;
    # R at the west gate; a fever referral at the west gate
    pass_gate(east, P, "张三", "in")
    pass_gate(east, Q, "李四", "in")
    pass_gate(west, P, "张三", "out")
    pass_gate(west, R, "王五", "in")
    pass_gate(west, FEVER, "赵六", "in", temp=38.6)
    for store in (east, west):
        assert sync(store).stored == store.passages.counters(date.today().isoformat())["total"]

    page.goto(url + "/console/overview")
    today = date.today().isoformat()
    for store, cp in ((east, "CP-E"), (west, "CP-W")):
        c = store.passages.counters(today)
        assert cell(page, cp, "in") == c["in"]
        assert cell(page, cp, "out") == c["out"]
        assert cell(page, cp, "turned_back") == c["turned_back"]
        assert cell(page, cp, "denied") == c["denied"]
        assert cell(page, cp, "referred") == c["referred"]
        assert cell(page, cp, "fever") == c["fever"]
    assert cell(page, "CP-W", "fever") == 1 and cell(page, "CP-E", "in") == 2
    assert page.locator("#alerts tr.alert-row").count() == 1
    assert page.is_visible('tr[data-checkpoint="CP-E"] .dev:has-text("东门一号")')
    assert page.locator("svg.chart polyline").count() == 2
    shot("overview")

    # find P: both passages, Q with them at the east gate, masked
    page.goto(url + "/console/trace")
    page.fill("input[name=id_number]", P)
    page.click("form.row button.primary")
    timeline = page.inner_text("#timeline")
    assert "CP-E" in timeline and "CP-W" in timeline
    assert page.locator("#timeline tbody tr").count() == 2
    copresent = page.inner_text("#copresent")
    assert "李*" in copresent and Q[:6] in copresent and Q not in copresent
    assert P not in page.content() and "张三" not in page.content()
    shot("trace")
    page.fill(
        "form[action='/console/trace']:has(input[name=full]) input[name=reason]", "流调 4月3日通报"
    )
    page.click("text=查看完整信息（记入审计）")
    assert P in page.inner_text("#timeline") and "张三" in page.inner_text("#timeline")
    assert Q not in page.content() and "李四" not in page.content()  # companions stay masked
    page.check("#copresent tr:has-text('李*') input[name=companion]")  # one by one, audited
    page.fill("#reveal-one input[name=reason]", "核实同行人 李*")
    page.click("text=查看所选同行记录（记入审计）")
    assert Q in page.inner_text("#copresent") and "李四" in page.inner_text("#copresent")
    assert P not in page.content()
    with page.expect_download() as dl:
        page.fill("form[action='/console/trace/export'] input[name=reason]", "上报县指挥部")
        page.click("text=导出（记入审计）")
    dl.value.save_as(tmp_path / "trace.xlsx")
    wb = openpyxl.load_workbook(tmp_path / "trace.xlsx")
    rows = list(wb.active.iter_rows(values_only=True))
    assert "追踪" in rows[0][0] and rows[2][0] == "序号"
    # title, note, header; P twice; with P: Q at the east gate, R and the fever case at the west
    assert {r[2] for r in rows[3:]} == {"CP-E", "CP-W"} and len(rows) == 3 + 2 + 3
    assert all(P not in str(r) for r in rows)  # masked export unless asked in full

    # key-person list: messy sheet → preview with row errors → publish → device sync → gate hit
    sheet = tmp_path / "名单.xlsx"
    messy_keyperson_sheet(sheet)
    page.goto(url + "/console/keypersons")
    page.set_input_files("input[name=file]", str(sheet))
    page.click("text=检查文件")
    preview = page.inner_text("#preview")
    assert "可发布 2 人" in preview and "有问题 2 行" in preview
    assert "校验位错误" in preview and "缺少身份证号" in preview
    assert KP not in page.content()
    shot("keypersons-preview")
    page.click("#preview button.primary")
    assert "名单已发布" in page.inner_text("main")
    assert "密接" in page.inner_text("#kp-counts")
    shot("keypersons")
    assert sync(east).keypersons_added == 2
    from fieldkit.gate import GateEntry, GateService

    ev = GateService(east).evaluate(
        GateEntry(direction="in", id_number=KP, temperature=36.5, code_colour="green")
    )
    assert ev.keyperson == "密接"
    assert "keyperson_hit" in {r.code for r in ev.decision.reasons}
    pass_gate(east, KP, "钱七", "in")  # recorded: the office sees the hit and acknowledges it
    sync(east)
    page.goto(url + "/console/overview")
    assert cell(page, "CP-E", "keyperson") == 1
    assert page.locator("#alerts tr.alert-row").count() == 2
    assert "重点人员 密接" in page.inner_text("#alerts")
    page.click("#alerts tr.alert-row:has-text('重点人员') button")
    assert "已标记为已处置" in page.inner_text("main")
    assert page.locator("#alerts tr.alert-row").count() == 1

    # daily report, downloaded and read back
    page.goto(url + "/console/reports")
    assert "按时上报" in page.inner_text("#report")
    shot("reports")
    with page.expect_download() as dl:
        page.click("#download")
    dl.value.save_as(tmp_path / "report.xlsx")
    rows = list(openpyxl.load_workbook(tmp_path / "report.xlsx").active.iter_rows(values_only=True))
    total = next(r for r in rows if r[0] == "合计")
    assert total[-1] == 6 and total[8] == 1 and total[9] == 1  # six passages, a fever, a hit

    # revoke the west device: its next sync is refused
    page.goto(url + "/console/devices")
    page.click('tr[data-device="西门一号"] button.revoke')
    assert "西门一号" in page.inner_text("#revoke-confirm")  # it asks first
    page.click("#revoke-submit")
    assert "已吊销" in page.inner_text('tr[data-device="西门一号"]')
    report = run_sync(west, west.settings)
    assert not report.ok and ("revoked" in report.error or "吊销" in report.error), report.error
    assert "device_revoked" in (server.dir.parent / "serve.log").read_text()

    # everyone through the west gate today, by checkpoint and time window
    page.goto(url + "/console/trace/checkpoint")
    page.fill("input[name=checkpoint]", "CP-W")
    page.fill("input[name=start]", f"{today}T00:00")
    page.fill("input[name=end]", f"{today}T23:59")
    page.click("form.row button.primary")
    assert "CP-W 通行记录 3 条" in page.inner_text("main")
    shot("trace-checkpoint")

    # area mode for the town, with a confirmation that says what changes at the gates
    page.goto(url + "/console/rules")
    page.select_option("select[name=mode]", "high")
    page.fill("textarea[name=rules]", "fever_threshold = 37.2")
    page.click("text=预览变化")
    confirm = page.inner_text("#confirm")
    assert (
        "区域模式：各设备自己的设置 → 高风险" in confirm
        and "fever_threshold = 37.2（此前按各设备自己的配置）" in confirm
    )
    shot("rules-confirm")
    page.click("#confirm button.primary")
    assert "已下发" in page.inner_text("main")
    assert sync(east).mode == "high"

    for name in ("rules", "users", "audit", "conflicts"):
        page.goto(f"{url}/console/{name}")
        shot(name)
    page.goto(url + "/console/audit")
    audit = page.inner_text("main")
    assert (
        "查看完整信息（被查人）" in audit and "流调 4月3日通报" in audit and "审计链完整" in audit
    )
    assert "查看完整信息（一位同行人）" in audit and "核实同行人 李*" in audit

    # English by setting: every page again
    page.click("header button.link >> text=English")
    for name in ("overview", "trace", "keypersons", "reports", "devices", "rules", "users"):
        page.goto(f"{url}/console/{name}")
        shot(name, "en")
    assert "Checkpoints today" in page.goto(url + "/console/overview").text()

    # an officer: masked overview works, admin pages are refused by URL
    officer = browser.new_context().new_page()
    login(officer, url, "clerk")
    assert officer.url.endswith("/console/overview")
    resp = officer.goto(url + "/console/devices")
    assert resp.status == 403 and "只有管理员" in officer.inner_text("main")
    officer.screenshot(path=str(shots / f"{server.backend}-zh-officer-refused.png"))
    officer.goto(url + "/console/trace")  # officers see masked data only: no reveal, no full export
    officer.fill("input[name=id_number]", P)
    officer.click("form.row button.primary")
    assert "张*" in officer.inner_text("#timeline")
    assert officer.locator("text=查看完整信息（记入审计）").count() == 0
    assert officer.locator("input[name=full]").count() == 0

    # a form posted without its CSRF token is refused, and nothing changes
    session = next(c for c in ctx.cookies() if c["name"] == "fk_console")["value"]
    east_id = east.kv.get("sync.device_id")
    with httpx.Client(base_url=url, cookies={"fk_console": session}) as http:
        r = http.post("/console/devices/revoke", data={"device_id": east_id})
        assert r.status_code == 403 and "console" not in r.text[:0]
        devices = http.get("/console/devices").text
        assert form_token(devices)  # the session itself still works
    sync(east)
    ctx.close()
    print(f"screenshots: {shots}")


def test_login_lockout_and_bad_upload(server):
    """Wrong passwords lock the account with back-off; a non-spreadsheet upload gets one
    sentence and changes nothing (plain HTTP client, no browser needed)."""
    with httpx.Client(base_url=server.url) as http:
        for _ in range(5):
            page = http.get("/console/login").text
            tok = form_token(page, "login_csrf")
            r = http.post(
                "/console/login",
                data={"name": "clerk", "password": "wrong-password", "login_csrf": tok},
            )
        assert r.status_code == 401 and "锁定" in r.text
        tok = form_token(http.get("/console/login").text, "login_csrf")
        r = http.post(
            "/console/login", data={"name": "clerk", "password": PASSWORD, "login_csrf": tok}
        )
        assert r.status_code == 401 and "锁定" in r.text  # right password, still locked
        r = http.post("/console/login", data={"name": "chief", "password": PASSWORD})
        assert r.status_code == 403  # no login CSRF token
        tok = form_token(http.get("/console/login").text, "login_csrf")
        r = http.post(
            "/console/login", data={"name": "chief", "password": PASSWORD, "login_csrf": tok}
        )
        assert r.status_code == 303
        cookie = r.headers["set-cookie"].split(";")[0].split("=", 1)[1]
        http.cookies.clear()
        http.cookies.set("fk_console", cookie)
        csrf = form_token(http.get("/console/keypersons").text)
        r = http.post(
            "/console/keypersons/upload",
            data={"csrf": csrf},
            files={"file": ("list.xlsx", io.BytesIO(b"PK\x03\x04 not really a zip"))},
        )
        assert r.status_code == 400 and "无法读取该文件" in r.text
        assert "Traceback" not in r.text
        r = http.get("/console/keypersons")
        assert "名单为空" in r.text
