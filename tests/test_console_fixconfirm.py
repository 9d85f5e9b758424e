"""Destructive console buttons ask first, and key-person form errors stay on the form
(new-user trial, town office: items 15, 19 名单, 28).

设备 → 吊销 and 重点人员名单 → 移除该类别 open a confirmation that says in one sentence what will
happen, naming the device or the category and how many people, with a second explicit press
(CSRF-checked like every POST). An input error in the key-person forms (按证件号移除 "12345", a bad
upload, a 0-byte file) is said above the same form on the same page with what was typed kept.

A real town (SQLite and PostgreSQL) served over real HTTP on loopback; one test in a real
headless Chromium against ``fieldkit-server serve``."""

from __future__ import annotations

import json
import re
from contextlib import closing

import httpx
import pytest
from argon2 import PasswordHasher

from sync.testing import LoopbackServer, TestTown, drop_repo, make_repo

from .console_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PASSWORD,
    ServerProcess,
    chromium_or_skip,
    console_client,
    form_token,
    id_number,
    pg_or_skip,
)

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
DEVICE = "幸福社区网格员平板"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def scene(request, tmp_path):
    if request.param == "postgresql":
        pg_or_skip()
    repo = make_repo(request.param, str(tmp_path))
    town = TestTown(repo)
    con = town.app.state.console
    con.accounts.hasher = FAST
    con.accounts.add("chief", "admin", PASSWORD)
    con.accounts.add("clerk", "officer", PASSWORD)
    town.new_token(DEVICE)
    with LoopbackServer(town.app) as srv:
        yield town, srv.url
    con.db.close()
    drop_repo(repo)


def client(url: str, name: str) -> tuple[httpx.Client, str]:
    return console_client(url, name, "/console/keypersons")


def publish(http: httpx.Client, csrf: str, rows: list[tuple[str, str]]) -> None:
    text = "身份证号,类别\n" + "".join(f"{n},{cat}\n" for n, cat in rows)
    r = http.post(
        "/console/keypersons/upload",
        data={"csrf": csrf, "category": "重点人员"},
        files={"file": ("名单.csv", text.encode("utf-8"), "text/csv")},
    )
    assert r.status_code == 200, r.text
    upload_id = form_token(r.text, "upload_id")
    r = http.post("/console/keypersons/publish", data={"csrf": csrf, "upload_id": upload_id})
    assert r.status_code == 303, r.text


def active(town, category: str) -> int:
    db = town.app.state.console.db
    flag = True if db.pg else 1
    sql = "SELECT count(*) FROM keypersons WHERE active = ? AND category = ?"
    return db.q(sql, (flag, category))[0][0]


def audit_actions(town) -> list[str]:
    return [a["action"] for a in town.app.state.console.audit.rows()]


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# --- item 15: 吊销 asks first --------------------------------------------------------------------


def test_revoke_opens_a_confirmation_naming_the_device(scene):
    town, url = scene
    repo = town.app.state.console.repo
    [dev] = repo.list_devices()
    http, csrf = client(url, "chief")
    with closing(http):
        page = http.get("/console/devices").text
        row = re.search(rf'<tr data-device="{DEVICE}">.*?</tr>', page, re.S)[0]
        # the row's button no longer posts the revocation: it opens the confirmation
        assert 'method="post" action="/console/devices/revoke"' not in row
        assert 'action="/console/devices/revoke"' in row
        r = http.get("/console/devices/revoke", params={"device_id": dev.device_id})
        assert r.status_code == 200, r.text
        words = text_of(r.text)
        assert f"吊销后，设备“{DEVICE}”的下次同步将被拒绝" in words, words
        assert "重新登记" in words and dev.device_id in words
        assert repo.get_device(dev.device_id).status != "revoked"  # nothing happened yet
        form = re.search(
            r'<form method="post" action="/console/devices/revoke".*?</form>', r.text, re.S
        )[0]
        assert f'name="csrf" value="{csrf}"' in form
        assert f'name="device_id" value="{dev.device_id}"' in form
        assert "确认吊销" in form and 'href="/console/devices"' in r.text  # and a way back
        # the second press, without its CSRF token: refused, nothing changes
        r = http.post("/console/devices/revoke", data={"device_id": dev.device_id, "confirm": "1"})
        assert r.status_code == 403
        assert repo.get_device(dev.device_id).status != "revoked"
        r = http.post(
            "/console/devices/revoke",
            data={"csrf": csrf, "device_id": dev.device_id, "confirm": "1"},
        )
        assert r.status_code == 303 and "console.dev.revoked" in r.headers["location"]
        assert repo.get_device(dev.device_id).status == "revoked"
        assert audit_actions(town).count("device_revoke") == 1
        # a device already revoked: one sentence, not a confirmation
        r = http.get("/console/devices/revoke", params={"device_id": dev.device_id})
        assert r.status_code == 400 and "没有这台设备，或它已被吊销" in r.text
    http, _ = client(url, "clerk")
    with closing(http):  # officers: still no device page and no revocation
        r = http.get("/console/devices/revoke", params={"device_id": dev.device_id})
        assert r.status_code == 403 and "只有管理员" in r.text


# --- item 15: 移除该类别 asks first --------------------------------------------------------------


def test_removing_a_category_opens_a_confirmation_with_the_count(scene):
    town, url = scene
    http, csrf = client(url, "clerk")  # officers may change the list, as before
    with closing(http):
        publish(
            http,
            csrf,
            [(id_number(i), "密接") for i in (1, 2, 3)]
            + [(id_number(i), "次密接") for i in (4, 5)],
        )
        assert active(town, "密接") == 3
        page = http.get("/console/keypersons").text
        assert (
            'method="post" action="/console/keypersons/remove"><input type="hidden" name="csrf"'
            not in page
        )
        r = http.get("/console/keypersons/remove", params={"how": "category", "category": "密接"})
        assert r.status_code == 200, r.text
        words = text_of(r.text)
        assert "将从重点人员名单中移除类别“密接”的全部 3 人" in words, words
        assert active(town, "密接") == 3  # nothing happened yet
        block = re.search(
            r'<section class="card confirm" id="kp-confirm">.*?</section>', r.text, re.S
        )[0]
        assert f'name="csrf" value="{csrf}"' in block and 'name="category" value="密接"' in block
        assert "确认移除" in block and 'href="/console/keypersons"' in block
        r = http.post(
            "/console/keypersons/remove",
            data={"csrf": csrf, "how": "category", "category": "密接", "confirm": "1"},
        )
        assert r.status_code == 303 and "console.kp.removed" in r.headers["location"]
        assert active(town, "密接") == 0 and active(town, "次密接") == 2
        assert audit_actions(town).count("keyperson_remove") == 1
        # a category nobody is in any more: the sentence on the key-person page itself
        r = http.get("/console/keypersons/remove", params={"how": "category", "category": "密接"})
        assert r.status_code == 400 and "没有符合条件的人员" in r.text
        assert 'action="/console/keypersons/upload"' in r.text


# --- item 19: key-person input errors above the same form, the input kept ------------------------


def test_key_person_input_errors_stay_on_the_form_with_the_input(scene):
    town, url = scene
    http, csrf = client(url, "clerk")
    with closing(http):
        r = http.post(
            "/console/keypersons/remove", data={"csrf": csrf, "how": "id", "id_number": "12345"}
        )
        assert r.status_code == 400 and "身份证号无效" in r.text
        form = re.search(
            r'<form method="post" action="/console/keypersons/remove"[^>]*'
            r'id="kp-remove-one".*?</form>',
            r.text,
            re.S,
        )
        assert form and 'value="12345"' in form[0], r.text
        assert r.text.index('role="alert"') < form.start()  # the sentence above that form
        assert "返回总览" not in r.text and 'id="kp-counts"' in r.text
        # a person not on the list: said on the page, the number kept
        nobody = id_number(9)
        r = http.post(
            "/console/keypersons/remove", data={"csrf": csrf, "how": "id", "id_number": nobody}
        )
        assert (
            r.status_code == 400
            and "没有符合条件的人员" in r.text
            and f'value="{nobody}"' in r.text
        )
        # a file that is not a list: above the upload form, the category typed kept
        r = http.post(
            "/console/keypersons/upload",
            data={"csrf": csrf, "category": "密接"},
            files={"file": ("照片.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "image/png")},
        )
        assert r.status_code == 400 and "只支持" in r.text
        upload = re.search(
            r'<form method="post" action="/console/keypersons/upload".*?</form>', r.text, re.S
        )
        assert upload and 'name="category" value="密接"' in upload[0]
        assert r.text.rindex('role="alert"', 0, upload.start()) > r.text.index('id="kp-counts"')
        assert "返回总览" not in r.text


# --- item 28: a 0-byte file is said to be empty, by name -----------------------------------------


def test_an_empty_file_is_named_and_said_to_be_empty(scene):
    town, url = scene
    http, csrf = client(url, "clerk")
    with closing(http):
        r = http.post(
            "/console/keypersons/upload",
            data={"csrf": csrf, "category": "重点人员"},
            files={"file": ("名单.csv", b"", "text/csv")},
        )
        assert r.status_code == 400
        words = text_of(r.text)
        assert "名单.csv" in words and "0 字节" in words, words
        assert "请选择要上传的文件" not in words
        # no file chosen at all (a form posted without one) still says so
        r = http.post(
            "/console/keypersons/upload",
            data={"csrf": csrf, "category": "重点人员"},
            files={"file": ("", b"", "application/octet-stream")},
        )
        assert r.status_code == 400 and "请选择要上传的文件" in r.text


# --- in a real browser: 吊销 → the confirmation → 确认吊销 ----------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def served(request, tmp_path):
    chromium_or_skip()
    if request.param == "postgresql":
        pg_or_skip()
    srv = ServerProcess(tmp_path, request.param)
    srv.cli("user", "add", "chief", "--role", "admin", password=PASSWORD)
    srv.start()
    yield srv
    srv.stop()


def test_browser_revoke_asks_then_revokes(served, tmp_path):
    from playwright.sync_api import sync_playwright

    url = served.url
    shots = tmp_path / "screens"
    shots.mkdir()
    added = json.loads(served.cli("device", "add", "南门一号", "--no-qr", "--json").stdout)
    assert added["token"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(url + "/console/login")
        page.fill("input[name=name]", "chief")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.goto(url + "/console/devices")
        row = page.locator('tr[data-device="南门一号"]')
        row.locator("button.revoke").click()
        page.wait_for_url("**/console/devices/revoke?*")
        box = page.locator("#revoke-confirm")
        assert "吊销后，设备“南门一号”的下次同步将被拒绝" in box.inner_text()
        page.screenshot(path=str(shots / f"{served.backend}-revoke-confirm.png"), full_page=True)
        assert "南门一号" in page.inner_text("#revoke-confirm strong")
        page.click("#revoke-submit")
        page.wait_for_url("**/console/devices?ok=*")
        assert "设备已吊销" in page.inner_text("main")
        assert "已吊销" in row.inner_text()
        assert row.locator("button.revoke").count() == 0
        # 移除该类别 likewise: the confirmation block, then the second press
        sheet = tmp_path / "名单.csv"
        sheet.write_text(f"身份证号,类别\n{id_number(7)},密接\n{id_number(8)},密接\n", "utf-8")
        page.goto(url + "/console/keypersons")
        page.set_input_files("#kp-upload input[type=file]", str(sheet))
        page.click("#kp-upload button.primary")
        page.click("#preview button.primary")
        page.click("#kp-counts button.remove-category")
        assert "移除类别“密接”的全部 2 人" in page.inner_text("#kp-confirm")
        page.screenshot(path=str(shots / f"{served.backend}-kp-confirm.png"), full_page=True)
        page.click("#kp-confirm-submit")
        page.wait_for_url("**/console/keypersons?ok=*")
        assert "密接" not in page.inner_text("#kp-counts")
        # an ID number mistyped: the sentence above that form, the number still in it
        page.fill("#kp-remove-one input[name=id_number]", "12345")
        page.click("#kp-remove-one button")
        assert "身份证号无效" in page.inner_text("p.error")
        assert page.input_value("#kp-remove-one input[name=id_number]") == "12345"
        page.screenshot(path=str(shots / f"{served.backend}-kp-error.png"), full_page=True)
        browser.close()
    print(f"screenshots: {shots}")
