"""The console's device page in a real headless Chromium against a real ``fieldkit-server serve``:
an admin orders a lost device wiped (reason, the device's name typed back, CSRF), the real
device store erases itself at its next sync, the page shows the flags; an officer gets no
button and cannot post the order. On SQLite and PostgreSQL."""

from __future__ import annotations

import json

import httpx
import pytest

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


def login(page, url: str, name: str) -> None:
    page.goto(url + "/console/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


def row(page, name: str):
    return page.locator(f'tr[data-device="{name}"]')


def test_an_admin_orders_a_wipe_from_the_device_page(server, browser, tmp_path):
    url = server.url
    shots = tmp_path / "screens"
    shots.mkdir()
    token = json.loads(server.cli("device", "add", "南门一号", "--no-qr", "--json").stdout)
    gate = gate_store(tmp_path / "south", "CP-S", "南门")
    enroll(gate, url, token["token"])
    pass_gate(gate, id_number(41), "赵六")
    assert run_sync(gate, gate.settings).ok
    device_id = gate.kv.get("sync.device_id")

    # An officer: no device page, no button, and the order posted by hand is refused.
    officer_ctx = browser.new_context()
    officer = officer_ctx.new_page()
    login(officer, url, "clerk")
    assert officer.url.endswith("/console/overview")
    assert officer.locator("button.wipe").count() == 0
    assert officer.locator('a[href="/console/devices"]').count() == 0
    resp = officer.goto(url + "/console/devices")
    assert resp.status == 403 and officer.locator("button.wipe").count() == 0
    assert officer.goto(f"{url}/console/devices/wipe?device_id={device_id}").status == 403
    officer.goto(url + "/console/overview")
    csrf = form_token(officer.content())  # the officer's own valid token
    session = next(c for c in officer_ctx.cookies() if c["name"] == "fk_console")["value"]
    with httpx.Client(base_url=url, cookies={"fk_console": session}) as http:
        form = {"csrf": csrf, "device_id": device_id, "reason": "x", "confirm": "南门一号"}
        r = http.post("/console/devices/wipe", data=form)
        assert r.status_code == 403 and "只有管理员" in r.text

    # The admin: the button, the confirm step, a wrong name refused, then the order.
    ctx = browser.new_context(viewport={"width": 1360, "height": 900})
    page = ctx.new_page()
    login(page, url, "chief")
    page.goto(url + "/console/devices")
    assert row(page, "南门一号").locator("td.marks").inner_text().strip() == "-"
    assert "没有审计标记" in page.inner_text("#anchor-flags")
    row(page, "南门一号").locator("button.wipe").click()
    assert "/console/devices/wipe" in page.url
    assert "无法恢复" in page.inner_text("#wipe-confirm")
    page.screenshot(path=str(shots / f"{server.backend}-wipe-confirm.png"), full_page=True)
    page.fill("input[name=reason]", "设备在卡口丢失")
    page.fill("input[name=confirm]", "北门一号")
    page.click("#wipe-submit")
    assert "输入的设备名称不对" in page.inner_text("main")
    assert page.input_value("input[name=reason]") == "设备在卡口丢失"  # nothing typed is lost
    page.fill("input[name=confirm]", "南门一号")
    page.click("#wipe-submit")
    assert page.url.split("?")[0].endswith("/console/devices")
    assert "擦除命令已下达" in page.inner_text("p.notice")
    assert "待擦除" in row(page, "南门一号").locator("td.marks").inner_text()
    assert row(page, "南门一号").locator("button.wipe").count() == 0  # ordered once
    # revoking now would stop the order reaching the device: no revoke button while it waits
    assert row(page, "南门一号").locator("button.danger").count() == 0
    page.screenshot(path=str(shots / f"{server.backend}-wipe-ordered.png"), full_page=True)

    # The same form without its CSRF token is refused.
    admin_session = next(c for c in ctx.cookies() if c["name"] == "fk_console")["value"]
    with httpx.Client(base_url=url, cookies={"fk_console": admin_session}) as http:
        r = http.post("/console/devices/wipe", data={"device_id": device_id, "reason": "x"})
        assert r.status_code == 403

    # The device's next contact: it uploads, erases itself, and the page says so.
    pass_gate(gate, id_number(42), "钱七")
    path = gate.path
    report = run_sync(gate, gate.settings)
    assert report.error_kind == "wiped" and not path.exists()
    page.goto(url + "/console/devices")
    assert "已擦除" in row(page, "南门一号").locator("td.marks").inner_text()
    flags = page.inner_text("#anchor-flags")
    assert "南门一号" in flags and "已自行擦除" in flags
    assert page.locator("#flags-hint").count() == 0  # a wipe is no sign of tampering

    # Another gate's chain is cut on the device: the town flags it, and the page says so.
    token = json.loads(server.cli("device", "add", "北门一号", "--no-qr", "--json").stdout)
    north = gate_store(tmp_path / "north", "CP-N", "北门")
    enroll(north, url, token["token"])
    for i in range(3):
        north.audit.append("export", "sup", {"file": f"f{i}.xlsx"})
    assert run_sync(north, north.settings).ok
    held = north.audit.anchor()["count"]
    north.g.db.execute("DELETE FROM audit WHERE seq > ?", [held - 2])
    link = north.audit.link_at(held - 2)
    north.g.db.execute(
        "UPDATE fieldkit_meta SET value = ? WHERE key = 'audit_head'", [f"{held - 2}:{link}"]
    )
    assert run_sync(north, north.settings).warnings
    north.close()
    page.goto(url + "/console/devices")
    assert "审计链倒退" in row(page, "北门一号").locator("td.marks").inner_text()
    backwards = page.inner_text('#anchor-flags tr[data-flag="backwards"]')
    assert "北门一号" in backwards and f"锚定到第 {held} 条" in backwards
    assert page.locator("#flags-hint").is_visible()
    page.screenshot(path=str(shots / f"{server.backend}-zh-devices-wiped.png"), full_page=True)
    page.goto(url + "/console/audit")
    audit = page.inner_text("main")
    assert "远程清除设备" in audit and "设备在卡口丢失" in audit and "审计链完整" in audit
    assert "device_wipe" not in audit  # the action in words, not its code

    page.click("header button.link >> text=English")
    page.goto(url + "/console/devices")
    assert "wiped itself" in page.inner_text("#anchor-flags")
    assert "wiped" in row(page, "南门一号").locator("td.marks").inner_text()
    page.screenshot(path=str(shots / f"{server.backend}-en-devices-wiped.png"), full_page=True)
    stats = json.loads(server.cli("stats", "--json").stdout)
    assert stats["total"] == 2  # what it wrote after the order went up first
    ctx.close()
    officer_ctx.close()
    print(f"screenshots: {shots}")
