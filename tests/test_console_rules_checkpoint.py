"""Console rules page for one checkpoint: the scope choice lists the checkpoints the town
knows, the confirmation names the checkpoint on every line, and once confirmed only the device
at that checkpoint takes the mode and rules (a real sync of two real device stores), on SQLite
and PostgreSQL."""

from __future__ import annotations

import httpx
import pytest

from sync import client as sc
from sync.server import scoped
from sync.testing import LoopbackServer, SyncASGITransport, TestTown, drop_repo, make_repo

from .console_support import PASSWORD, form_token, gate_store, id_number, pass_gate, pg_or_skip
from .test_console_units import FAST, login


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


def _device(town, transport, tmp_path, code):
    store = gate_store(tmp_path / code, code, f"Gate {code}")
    sc.enroll(store, "http://town", town.new_token(code), transport=transport)
    return store


def _sync(store, transport):
    report = sc.run_sync(store, store.settings, transport=transport)
    assert report.ok, report.error
    return report


def test_rules_for_one_checkpoint_confirmed_then_only_that_gate_takes_them(town, tmp_path):
    transport = SyncASGITransport(town.app)
    east = _device(town, transport, tmp_path, "CP-E")
    west = _device(town, transport, tmp_path, "CP-W")
    pass_gate(east, id_number(51), "王五")
    pass_gate(west, id_number(52), "赵六")
    _sync(east, transport), _sync(west, transport)
    town.repo.add_changes("rules", [{"fever_threshold": 37.0}], 1.0)
    con = town.app.state.console
    con.accounts.add("chief", "admin", PASSWORD)
    with LoopbackServer(town.app) as srv, httpx.Client(base_url=srv.url) as http:
        csrf = login(http, "chief")
        page = http.get("/console/rules").text
        assert "全镇" in page and '<option value="CP-E"' in page and '<option value="CP-W"' in page
        page = http.get("/console/rules", params={"scope": "CP-E"}).text
        assert "卡口 CP-E 当前模式：随全镇（各设备自己的设置）" in page
        data = {"csrf": csrf, "scope": "CP-E", "mode": "high", "rules": "fever_threshold = 36.8"}
        r = http.post("/console/rules/preview", data=data)
        assert r.status_code == 200, r.text
        assert "请确认：仅卡口 CP-E 将发生以下变化" in r.text
        assert "仅 CP-E：区域模式：随全镇（各设备自己的设置） → 高风险" in r.text
        assert "仅 CP-E：fever_threshold = 36.8（此前按全镇设置）" in r.text
        assert 'name="scope" value="CP-E"' in r.text
        assert scoped.current(town.repo, "CP-E", "rules") is None  # nothing sent before confirm
        r = http.post("/console/rules/preview", data={**data, "confirmed": "1"})
        assert r.status_code == 303
        assert scoped.current(town.repo, "CP-E", "rules") == {"fever_threshold": 36.8}
        assert scoped.current(town.repo, "CP-E", "mode") == "high"
        assert town.repo.latest_change("mode") is None  # the town-wide mode untouched
        row = next(a for a in con.audit.rows() if a["action"] == "rules_push")
        assert "CP-E" in str(row["detail"])
        # a checkpoint the town does not know: one sentence, nothing pushed
        r = http.post("/console/rules/preview", data={**data, "scope": "CP-X", "confirmed": "1"})
        assert r.status_code == 400 and "没有编码为 CP-X 的卡口" in r.text
        assert scoped.current(town.repo, "CP-X", "rules") is None
        # in English
        http.post("/console/lang", data={"csrf": form_token(page), "lang": "en"})
        r = http.post("/console/rules/preview", data={**data, "rules": "fever_threshold = 36.6"})
        assert "Only CP-E: fever_threshold: 36.8 → 36.6" in r.text
    _sync(east, transport), _sync(west, transport)
    assert east.settings.rules.fever_threshold == 36.8
    assert east.settings.checkpoint.area_mode == "high"
    assert west.settings.rules.fever_threshold == 37.0
    assert west.settings.checkpoint.area_mode != "high"
    transport.shutdown()
    east.close(), west.close()
