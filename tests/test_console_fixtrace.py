"""The pages a town-office clerk uses to find people and read reports (new-user trial, town
office): who may see names in full, what 按卡口和时段 lists, denials counted as such, the ledger
block and the daily report in words, companions grouped under the person's own passage, a
readable audit list, and input errors shown above the same form with the input kept.

One real town (SQLite and PostgreSQL) fed by a real gate device over the sync protocol: a
household with three members in the ledger, passages at CP-E (a denial among them, one without a
name), then the console's pages over real HTTP on loopback."""

from __future__ import annotations

import io
import re
from contextlib import closing

import httpx
import openpyxl
import pytest
from argon2 import PasswordHasher

from sync import client as sc
from sync.testing import LoopbackServer, SyncASGITransport, TestTown, drop_repo, make_repo

from .console_support import PASSWORD, console_client, gate_store, id_number, pg_or_skip

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
P, Q, R, S, N, W = (id_number(i) for i in (61, 62, 63, 64, 65, 66))
MISSING = "此处文字缺失"


def _commit(store, number, name, direction="in", colour="green"):
    from fieldkit.gate import GateEntry, GateService

    ev, row = GateService(store).commit(
        GateEntry(
            direction=direction,
            id_number=number,
            name=name,
            temperature=36.5,
            code_colour=colour,
        )
    )
    return ev.decision.outcome.value


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def scene(request, tmp_path_factory):
    if request.param == "postgresql":
        pg_or_skip()
    tmp = tmp_path_factory.mktemp("fixtrace-" + request.param)
    repo = make_repo(request.param, str(tmp))
    town = TestTown(repo)
    con = town.app.state.console
    con.accounts.hasher = FAST
    con.accounts.add("chief", "admin", PASSWORD)
    con.accounts.add("clerk", "officer", PASSWORD)
    transport = SyncASGITransport(town.app)
    store = gate_store(tmp / "east", "CP-E", "东门")
    sc.enroll(store, "http://town", town.new_token("东门一号"), transport=transport)
    # the household ledger: these edits sync as ledger_edit records, never as passages
    hid, _ = store.ledger.save_household(
        {"community": "幸福社区", "building": "3栋", "unit": "1单元", "room": "101"},
        source="import",
    )
    for name, number, relation, status in (
        ("张伟", P, "户主", "home_monitoring"),
        ("李娜", Q, "配偶", None),
        ("王强", W, "子女", "home_isolation"),
    ):
        fields = {"name": name, "id_number": number, "relation": relation, "phone": "13800001111"}
        if status:
            fields["health_status"] = status
        store.ledger.save_member(hid, fields, source="import")
    decisions = [
        _commit(store, P, "张伟", "in"),
        _commit(store, Q, "李娜", "out"),
        _commit(store, Q, "李娜", "in"),
        _commit(store, R, "陈静", "in"),
        _commit(store, S, "赵敏", "in", colour="red"),  # a red code: 禁止通行
        _commit(store, N, None, "in"),  # no name typed at the gate
    ]
    assert decisions == ["admit", "admit", "admit", "admit", "deny", "admit"], decisions
    report = sc.run_sync(store, store.settings, transport=transport)
    assert report.ok, report.error
    transport.shutdown()
    with LoopbackServer(town.app) as srv:
        yield town, srv.url
    store.close()
    con.db.close()
    drop_repo(repo)


def client(url: str, name: str) -> tuple[httpx.Client, str]:
    return console_client(url, name, "/console/trace")


def audit_actions(town) -> list[str]:
    return [a["action"] for a in town.app.state.console.audit.rows()]


def xlsx_rows(data: bytes) -> list[tuple]:
    return list(openpyxl.load_workbook(io.BytesIO(data)).active.iter_rows(values_only=True))


def today() -> str:
    from datetime import date

    return date.today().isoformat()


# --- item 4: officers see masked data only; a reveal shows one person ----------------------------


def test_an_officer_gets_no_reveal_and_no_full_export(scene):
    town, url = scene
    http, csrf = client(url, "clerk")
    with closing(http):
        page = http.post("/console/trace", data={"csrf": csrf, "id_number": P}).text
        assert "张*" in page and "张伟" not in page
        assert "查看完整信息" not in page and 'name="full"' not in page  # no such button
        before = audit_actions(town)
        r = http.post(
            "/console/trace",
            data={"csrf": csrf, "id_number": P, "full": "1", "reason": "流调 12-02 号通报"},
        )
        assert r.status_code == 403 and "只有管理员" in r.text
        assert P not in r.text and "张伟" not in r.text
        for data in (
            {"id_number": P, "minutes": "30"},
            {"checkpoint": "CP-E", "start": f"{today()}T00:00", "end": f"{today()}T23:59"},
        ):
            r = http.post(
                "/console/trace/export",
                data={"csrf": csrf, "reason": "上报县指挥部", "full": "1", **data},
            )
            assert r.status_code == 403 and "只有管理员" in r.text, r.text[:300]
        assert audit_actions(town) == before  # nothing was shown, nothing audited
        # the masked export stays open to officers
        r = http.post(
            "/console/trace/export",
            data={"csrf": csrf, "reason": "上报县指挥部", "id_number": P, "minutes": "30"},
        )
        assert r.status_code == 200 and P not in str(xlsx_rows(r.content))


def test_a_reveal_shows_that_person_and_companions_one_by_one(scene):
    town, url = scene
    http, csrf = client(url, "chief")
    with closing(http):
        page = http.post("/console/trace", data={"csrf": csrf, "id_number": P}).text
        assert "查看完整信息" in page
        page = http.post(
            "/console/trace",
            data={"csrf": csrf, "id_number": P, "full": "1", "reason": "流调 12-02 号通报"},
        ).text
        timeline = page.split('id="timeline"')[1].split("</table>")[0]
        copresent = page.split('id="copresent"')[1].split("</table>")[0]
        assert P in timeline and "张伟" in timeline
        for name, number in (("李娜", Q), ("陈静", R), ("赵敏", S)):  # companions stay masked
            assert number not in page and name not in page
        assert "李*" in copresent
        audit = town.app.state.console.audit.rows()
        assert audit[0]["action"] == "trace_unmask" and '"records": 1' in audit[0]["detail"]
        # one companion passage revealed on its own, with its own reason, audited
        row = next(r for r in copresent.split("<tr") if "李*" in r)
        rid = re.search(r'name="companion" value="([^"]+)"', row)
        assert rid, row
        page = http.post(
            "/console/trace",
            data={
                "csrf": csrf,
                "id_hash": re.search(r'name="id_hash" value="([0-9a-f]{64})"', page)[1],
                "full": "1",
                "companion": rid[1],
                "reason": "核实同行人 李*",
            },
        ).text
        copresent = page.split('id="copresent"')[1].split("</table>")[0]
        assert Q in copresent and "李娜" in copresent
        assert P not in page and R not in page and "陈静" not in page
        audit = town.app.state.console.audit.rows()
        assert audit[0]["action"] == "trace_unmask_companion"
        assert audit[0]["reason"] == "核实同行人 李*" and rid[1] in audit[0]["detail"]
        # a full export of a person's trace: that person in full, the companions masked
        r = http.post(
            "/console/trace/export",
            data={"csrf": csrf, "reason": "上报县指挥部", "id_number": P, "full": "1"},
        )
        rows = str(xlsx_rows(r.content))
        assert r.status_code == 200 and P in rows and "张伟" in rows
        assert Q not in rows and "李娜" not in rows and "李*" in rows


# --- item 7: 按卡口和时段 lists gate passages only ----------------------------------------------


def test_checkpoint_window_lists_gate_passages_only(scene):
    town, url = scene
    http, csrf = client(url, "clerk")
    window = {"start": f"{today()}T00:00", "end": f"{today()}T23:59"}
    with closing(http):
        for typed in ("CP-E", "cp-e"):  # a code typed in lower case finds the same gate
            page = http.post(
                "/console/trace/checkpoint", data={"csrf": csrf, "checkpoint": typed, **window}
            ).text
            assert "CP-E 通行记录 6 条" in page, typed
            assert "None" not in page
            body = page.split("<tbody>")[1].split("</tbody>")[0]
            assert body.count("<tr>") == 6
        r = http.post(
            "/console/trace/export",
            data={"csrf": csrf, "checkpoint": "cp-e", "reason": "上报县指挥部", **window},
        )
        rows = xlsx_rows(r.content)[3:]
        assert len(rows) == 6 and all(r[3] for r in rows)  # each has a direction
        assert all(r[4] and r[5] and "None" not in (r[4] + r[5]) for r in rows)
        assert any(r[4] == "—" for r in rows)  # the passage without a name


# --- item 10: a denial is counted as 禁止, not as 劝返 -------------------------------------------


def test_a_denial_has_its_own_column_in_overview_and_report(scene):
    town, url = scene
    http, _ = client(url, "clerk")
    with closing(http):
        page = http.get("/console/overview").text
        row = page.split('data-checkpoint="CP-E"')[1].split("</tr>")[0]
        assert 'data-k="turned_back">0<' in row and 'data-k="denied">1<' in row
        assert "<th>禁止</th>" in page
        page = http.get("/console/reports").text
        assert "<th>禁止</th>" in page
        report = page.split('id="report"')[1].split("</table>")[0]
        cells = re.findall(r'<td class="n">(\d+)</td>', report)
        # 进入 外出 劝返 禁止 转诊 发热 重点人员 合计
        assert cells == ["4", "1", "0", "1", "0", "0", "0", "6"], cells
        rows = xlsx_rows(http.get("/console/reports/xlsx").content)
        header = rows[2]
        total = next(r for r in rows if r[0] == "合计")
        assert total[header.index("劝返")] == 0 and total[header.index("禁止")] == 1


# --- items 8 and 9: the ledger block and the daily report in words -------------------------------


def test_trace_ledger_block_in_words_with_the_address(scene):
    town, url = scene
    http, csrf = client(url, "clerk")
    with closing(http):
        page = http.post("/console/trace", data={"csrf": csrf, "id_number": P}).text
        ledger = page.split('class="ledger"')[1].split("</ul>")[0]
        assert MISSING not in page and "resident_id" not in page
        assert "居民身份证" in ledger and "居家健康监测" in ledger
        assert "home_monitoring" not in ledger
        for word in ("3栋", "1单元", "101"):
            assert word in ledger
        assert "张*" in ledger and "张伟" not in page and P not in page


def test_daily_report_names_statuses_and_categories_in_words(scene):
    town, url = scene
    http, _ = client(url, "clerk")
    with closing(http):
        page = http.get("/console/reports").text
        assert "居家健康监测: 1" in page and "居家隔离医学观察: 1" in page
        assert "home_monitoring" not in page and "home_isolation" not in page
        data = http.get("/console/reports/xlsx").content
        book = openpyxl.load_workbook(io.BytesIO(data))
        assert book.active.title == "日报"
        cells = {c for r in book.active.iter_rows(values_only=True) for c in r if c}
        assert {"居家健康监测", "居家隔离医学观察", "本地居民"} <= cells
        assert not {"home_monitoring", "home_isolation", "resident"} & cells


# --- item 16: companions grouped under the person's own passage ---------------------------------


def test_companions_grouped_under_each_own_passage_counted_in_words(scene):
    town, url = scene
    http, csrf = client(url, "clerk")
    with closing(http):
        page = http.post("/console/trace", data={"csrf": csrf, "id_number": P}).text
        copresent = page.split('id="copresent"')[1].split("</table>")[0]
        # 李娜 passed twice within the window: both passages are listed (she was left out once)
        assert copresent.count("李*") == 2
        assert "5 条通行（4 人）" in page
        assert not re.search(r"[+-]\d+ min", page) and "+0 分钟" in copresent
        page = http.post("/console/trace", data={"csrf": csrf, "id_number": Q}).text
        copresent = page.split('id="copresent"')[1].split("</table>")[0]
        assert copresent.count('class="mine"') == 2  # a heading row per passage of hers
        assert "8 条通行（4 人）" in page
        r = http.post(
            "/console/trace/export",
            data={"csrf": csrf, "reason": "上报县指挥部", "id_number": Q, "minutes": "30"},
        )
        notes = [row[8] for row in xlsx_rows(r.content)[3:] if row[8]]
        assert len(notes) == 8 and all("分钟" in n and "min" not in n for n in notes)


# --- item 17: a readable audit list ---------------------------------------------------------------


def test_audit_list_reads_in_words_and_dates(scene):
    town, url = scene
    http, csrf = client(url, "chief")
    with closing(http):
        http.post(
            "/console/trace/export",
            data={
                "csrf": csrf,
                "reason": "上报县指挥部",
                "checkpoint": "CP-E",
                "start": f"{today()}T00:00",
                "end": f"{today()}T23:59",
            },
        )
        page = http.get("/console/audit").text
        table = page.split("<table")[1].split("</table>")[0]
        assert "trace_export" not in table and "导出通行记录" in table
        assert "事由（必填）" not in table and "<th>事由</th>" in table
        assert not re.search(r"\b1[0-9]{9}(\.[0-9]+)?\b", table)  # no epoch seconds
        assert f"{today()} 00:00" in table
        assert '{"' not in table


# --- item 19: an input error is shown above the same form, the input kept -----------------------


def test_input_errors_shown_above_the_form_with_the_input_kept(scene):
    town, url = scene
    http, csrf = client(url, "clerk")
    with closing(http):
        r = http.post("/console/trace", data={"csrf": csrf, "id_number": "11010519800101123"})
        assert r.status_code == 400 and "身份证号无效" in r.text
        assert 'value="11010519800101123"' in r.text and 'action="/console/trace"' in r.text
        r = http.post("/console/trace", data={"csrf": csrf, "id_number": P, "minutes": "abc"})
        assert r.status_code == 400 and "时间窗请填" in r.text
        assert f'value="{P}"' in r.text and 'value="abc"' in r.text
        r = http.post(
            "/console/trace/checkpoint",
            data={"csrf": csrf, "checkpoint": "CP-E", "start": "2026-12-02T10:00", "end": "x"},
        )
        assert r.status_code == 400 and "请选择卡口" in r.text
        assert 'value="CP-E"' in r.text and 'value="2026-12-02T10:00"' in r.text
        assert 'action="/console/trace/checkpoint"' in r.text
    http, csrf = client(url, "chief")
    with closing(http):  # a reveal without a reason: the sentence above the reveal forms
        r = http.post(
            "/console/trace", data={"csrf": csrf, "id_number": P, "full": "1", "reason": "流调"}
        )
        assert r.status_code == 400 and "请填写事由" in r.text
        assert 'id="timeline"' in r.text and "张*" in r.text and P not in r.text
        assert "查看完整信息（记入审计）" in r.text


# --- item 7, the command line: ``fieldkit-server trace --checkpoint`` lists passages only -------


def test_server_trace_cli_lists_gate_passages_only(tmp_path, capsys):
    import hashlib
    import json
    import time
    import uuid

    from sync import protocol as p
    from sync.server.app import TownServer, parse_record
    from sync.server.cli import main as server_main
    from sync.server.repository import BatchMeta, open_repository
    from sync.server.town import ServerSettings, TownKeys
    from sync.testing import fake_record

    town_dir = tmp_path / "town"
    assert server_main(["init", "--data-dir", str(town_dir)]) == 0
    keys = TownKeys.load(town_dir)
    repo = open_repository(None, str(town_dir))
    passage = fake_record(0, checkpoint="CP-2")
    body = {
        "id": str(uuid.uuid4()),
        "ts": passage["body"]["ts"],
        "day": passage["body"]["day"],
        "checkpoint": "CP-2",
        "entity": "household",
        "entity_id": str(uuid.uuid4()),
        "base_version": 0,
        "version": 1,
        "changes": {"building": "3栋", "room": "101"},
        "source": "import",
        "writer": "sup@CP-2",
    }
    digest = hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()
    edit = {"id": body["id"], "kind": "ledger_edit", "hash": digest, "body": body}
    server = TownServer(keys, repo, ServerSettings())
    rows = [
        parse_record(i, line, server.cipher, 65536)
        for i, line in enumerate(p.encode_records([passage, edit]))
    ]
    repo.ingest(BatchMeta("b-1", "dev", time.time(), 2), rows, {}, lambda o: {}, time.time())
    assert {r.kind for r in repo.trace_checkpoint("CP-2", 0, 2e9)} == {"passage", "ledger_edit"}
    repo.close()
    capsys.readouterr()
    code = server_main(
        [
            "trace",
            "--checkpoint",
            "CP-2",
            "--from",
            "2022-04-01T00:00+08:00",
            "--to",
            "2022-04-02T00:00+08:00",
            "--json",
            "--data-dir",
            str(town_dir),
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and [r["record_id"] for r in out] == [passage["id"]]


# --- item 20: how long ago a device synced, in the page's words ---------------------------------


def test_the_overview_says_how_long_ago_in_words(scene):
    town, url = scene
    http, _ = client(url, "clerk")
    with closing(http):
        page = http.get("/console/overview").text
    ages = re.findall(r"同步，([^<·]*?)前", page)
    assert ages and all(re.fullmatch(r"\d+ (秒|分钟|小时|天)", a) for a in ages), ages
    assert not re.search(r"\d+(s|min|h|d) 前", page)
