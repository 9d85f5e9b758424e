"""Issue 12, second follow-up: the scanner's remaining English, read in zh.

Camera / video / folder status lines (``fieldkit scan`` and the app's camera status), the basic
payload problems, the health-certificate (EU DCC) checker's problems, a scan engine that cannot
be used, and the ``--health-pattern`` error. Each test fails on the English these printed before.
"""

from __future__ import annotations

import ctypes.util
import io
import json
import zlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
import segno

from fieldkit.i18n import catalogue, t
from scanners import engines
from scanners.payloads import parse_payload
from scanners.payloads.dcc import TrustList, decode_dcc
from scanners.sources import ENDED, open_source
from scanners.words import engine_why, result_problem, state_text, status_text
from tests.test_language_leaks import english_runs
from tests.test_language_leaks import runner as runner  # the fixture
from tests.test_ui_app import ready_store as ready_store  # the fixture

DCC = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "dcc"
needs_dcc = pytest.mark.skipif(not DCC.is_dir(), reason="shared corpus absent")


def _qr(path: Path, data: str) -> Path:
    buf = io.BytesIO()
    segno.make_qr(data).save(buf, kind="png", scale=8, border=4)
    path.write_bytes(buf.getvalue())
    return path


def _clean(text: str) -> None:
    assert text and english_runs(text) == [] and "?" not in text.replace("？", ""), text


def _leaks(r) -> str:
    return "\n".join(f"{cmd}: {leak}" for cmd, leak in r.leaks)


def test_every_new_key_speaks_chinese_with_its_parameters():
    zh = catalogue("zh")
    prefixes = ("source.status.", "payload.problem.", "dcc.problem.", "engine.why.")
    keys = [k for k in zh if k.startswith(prefixes)]
    assert len(keys) > 40
    for key in keys:
        text = t(
            key,
            "zh",
            device=0,
            file="a.mp4",
            folder="x",
            size="640×480",
            frames=3,
            count=2,
            unreadable=1,
            length=9000,
            limit=8192,
            prefix="HC1:",
            start="XY",
            kid="AbC=",
            issued="2021",
            expires="2022",
            allowed_types="测试",
            cert_types="康复",
            command="sudo apt-get install libzbar0",
            module="pyzbar",
            version="4.10",
            detector="aruco",
            path="/m",
            package="opencv",
        )
        assert english_runs(text) == [], (key, text)


def test_source_statuses_are_coded_and_said_in_chinese(tmp_path):
    folder = tmp_path / "pics"
    folder.mkdir()
    _qr(folder / "a.png", "示例")
    (folder / "b.png").write_bytes(b"not an image at all")
    seen = []
    for spec in (
        f"images:{folder}",
        f"images:{tmp_path / 'nope'}",
        f"video:{tmp_path / 'x.mp4'}",
        f"camera:{tmp_path / 'video9'}",
    ):
        source = open_source(spec)
        seen.append(source.status)
        while source.status.state != ENDED and spec.startswith(("images", "video")):
            source.read()
            seen.append(source.status)
        source.close()
        seen.append(source.status)
    codes = {s.code for s in seen}
    assert {
        "images_count",
        "images_ended",
        "images_missing",
        "video_missing",
        "camera_missing",
        "camera_closed",
        "video_closed",
    } <= codes, codes
    for status in seen:
        assert status.message  # the English sentence stays for logs
        _clean(status_text(status, "zh") + state_text(status.state, "zh"))
    ended = next(s for s in seen if s.code == "images_ended")
    assert "1 张无法读取" in status_text(ended, "zh")
    assert "1 unreadable" in status_text(ended, "en")


def test_fieldkit_scan_status_lines_speak_chinese(runner, tmp_path):
    r = runner
    pics = tmp_path / "pics"
    pics.mkdir()
    _qr(pics / "a.png", "示例文字")
    _, out = r.device("scan", "--images", pics)
    assert "图片文件夹" in out and "已结束" in out
    for english in ("images ", "[connected]", "[ended]", "unreadable"):
        assert english not in out, english
    _, out = r.device("scan", "--images", tmp_path / "missing")
    assert "找不到这个文件夹" in out and "folder not found" not in out
    assert r.leaks == [], _leaks(r)


def test_payload_problems_are_coded_and_said_in_chinese():
    results = [
        parse_payload("示例文字 12345"),
        parse_payload(b"\x00\xff\xfe"),
        parse_payload("   "),
        parse_payload("1" * 9000),
    ]
    assert [r.problem_code for r in results] == [
        "payload.problem.unrecognised",
        "payload.problem.binary",
        "payload.problem.empty",
        "payload.problem.too_long",
    ]
    for result in results:
        assert result.problem.startswith(("not a", "binary", "empty", "payload too"))  # unchanged
        _clean(result_problem(result, "zh"))
    assert "9000" in result_problem(results[3], "zh")


def test_dcc_problems_are_coded_and_said_in_chinese():
    now = datetime(2021, 6, 1, tzinfo=UTC)
    bomb = zlib.compress(b"\0" * 2_000_000, 9)
    from base45 import b45encode

    cases = {
        "prefix": decode_dcc("XYZ:ABC"),
        "base45": decode_dcc("HC1:!!!!"),
        "not_zlib": decode_dcc("HC1:" + b45encode(b"plain bytes").decode()),
        "bomb": decode_dcc("HC1:" + b45encode(bomb).decode()),
        "cose": decode_dcc("HC1:" + b45encode(zlib.compress(b"\x01\x02")).decode(), None, now),
    }
    for code, res in cases.items():
        assert res.problem.code == code, (code, res.problem)
        assert english_runs(res.problem)  # the English machine text is still there
    for text in ("HC1:!!!!", "HC1:" + b45encode(bomb).decode()):
        result = parse_payload(text)
        assert result.kind == "dcc" and result.problem_code.startswith("dcc.problem.")
        _clean(result_problem(result, "zh"))
        assert json.loads(json.dumps(result.to_dict()))["problem"] == str(result.problem)


@needs_dcc
def test_dcc_checker_problems_from_real_certificates_in_chinese():
    def run(name, trust=None):
        c = json.loads((DCC / name).read_text(encoding="utf-8"))
        trust = trust or TrustList.from_der_base64(c["TESTCTX"]["CERTIFICATE"])
        clock = datetime.fromisoformat(c["TESTCTX"]["VALIDATIONCLOCK"].replace("Z", "+00:00"))
        return decode_dcc(c["PREFIX"], trust, clock)

    expect = {
        "common/2DCode/raw/CO5.json": "wrong_signature",
        "common/2DCode/raw/CO22.json": "unknown_signer",
        "common/2DCode/raw/CO17.json": "expired",
        "common/2DCode/raw/CO16.json": "not_yet",
        "common/2DCode/raw/Z2.json": "not_zlib",
        "common/2DCode/raw/CO8.json": "eku_type",
    }
    for name, code in expect.items():
        res = run(name)
        assert res.problem.code == code, (name, res.problem)
        shown = t("dcc.problem." + code, "zh", **_typed(res.problem.params))
        _clean(shown)
    eku = run("common/2DCode/raw/CO8.json").problem
    from scanners.words import coded_text

    zh = coded_text("dcc.problem.eku_type", eku.params, "", "zh")
    _clean(zh)
    assert "certificates" not in zh and ("疫苗接种" in zh or "检测" in zh or "康复" in zh)
    no_trust = decode_dcc(json.loads((DCC / "common/2DCode/raw/CO3.json").read_text())["PREFIX"])
    assert no_trust.problem.code == "no_trust"


def _typed(params: dict) -> dict:
    return {k: "测试" if k.endswith("_types") else v for k, v in params.items()}


def test_decode_of_a_broken_health_certificate_speaks_chinese(runner, tmp_path):
    r = runner
    pics = tmp_path / "pics"
    pics.mkdir()
    _qr(pics / "a_dcc.png", "HC1:!!!!")
    _qr(pics / "b_dcc.png", "XYZ")
    _, out = r.device("decode", pics)
    assert t("dcc.problem.base45", "zh") in out and "base45 is broken" not in out
    _, out = r.device("decode", "--json", pics)
    r.leaks = [leak for leak in r.leaks if "--json" not in leak[0]]  # data fields stay English
    lines = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    codes = [c for x in lines for c in x.get("codes", [])]
    assert "base45 is broken" in codes[0]["problem"]  # the machine field is unchanged
    assert len(codes) == 2 and codes[0]["message"] == t(
        "scanout.invalid", "zh", problem=t("dcc.problem.base45", "zh")
    )
    assert [c["message"] for c in codes if english_runs(c["message"])] == []
    assert r.leaks == [], _leaks(r)


def test_a_missing_scan_engine_is_explained_in_chinese_with_the_command(
    runner, tmp_path, monkeypatch
):
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    engine = engines.make_engine("pyzbar")
    assert not engine.available and engine.why_unavailable.code == "zbar_missing"
    zh = engine_why(engine.why_unavailable, "zh")
    _clean(zh)
    assert "sudo apt-get install libzbar0" in zh and "missing" not in zh
    assert "run: sudo apt-get install libzbar0" in engine_why(engine.why_unavailable, "en")
    missing = engines.check_wechat_models(tmp_path)
    _clean(engine_why(missing, "zh"))
    pics = tmp_path / "pics"
    pics.mkdir()
    _qr(pics / "a.png", "示例")
    _, out = runner.device("decode", "--engine", "pyzbar", pics)
    assert "sudo apt-get install libzbar0" in out and "unavailable" not in out
    assert runner.leaks == [], _leaks(runner)


def test_a_bad_health_pattern_is_told_in_chinese(runner, tmp_path):
    from fieldkit.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["decode", "--health-pattern", "no-equals-sign", str(tmp_path)])
    text = str(exc.value.code)
    assert "--health-pattern" in text and "must be" not in text
    _clean(text)


async def test_the_gate_screen_shows_a_broken_health_certificate_in_chinese(settings, ready_store):
    import time

    from textual.widgets import Static

    from fieldkit.ui.gate import GateScreen
    from fieldkit.ui.messages import ScanRead
    from tests.test_ui_app import GATE, GATE_PIN, SIZE, app_for, login, settle

    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await login(pilot, GATE, GATE_PIN)
        assert isinstance(app.screen, GateScreen)
        for payload, key in (("HC1:!!!!", "dcc.problem.base45"), ("XYZ", None)):
            result = parse_payload(payload)
            app.post_message(ScanRead(payload, result, "scan", time.perf_counter()))
            await settle(pilot)
            line = str(app.screen.query_one("#scan-line", Static).render())
            assert result.problem not in line, line
            assert t(key or result.problem_code, "zh") in line, line
            assert english_runs(line) == [], line
