"""Issue 12 follow-up: the paths the first leak test left English, read in zh.

``fieldkit decode`` / ``fieldkit scan`` output lines, the audit-chain problem shown by
``fieldkit audit verify`` and ``fieldkit status`` on a broken chain, and the town server's HTTP
refusal messages. Each test fails on the English text these paths printed before.
"""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import segno

from fieldkit.i18n import t
from tests.conftest import SUPERVISOR
from tests.test_language_leaks import A, english_runs
from tests.test_language_leaks import runner as runner  # the fixture

ID = "11010519491231002X"


def _qr(path: Path, data: str) -> Path:
    buf = io.BytesIO()
    segno.make_qr(data).save(buf, kind="png", scale=8, border=4)
    path.write_bytes(buf.getvalue())
    return path


def _leaks(r) -> str:
    return "\n".join(f"{cmd}: {leak}" for cmd, leak in r.leaks)


def test_decode_and_scan_lines_speak_chinese(runner, tmp_path):
    r = runner
    pics = tmp_path / "pics"
    pics.mkdir()
    _qr(pics / "a_id.png", ID)
    _qr(pics / "b_bad_id.png", "110105194912310021")  # wrong check digit
    _qr(pics / "c_text.png", "示例文字 12345")
    blank = pics / "d_blank.png"
    import cv2
    import numpy as np

    cv2.imwrite(str(blank), np.full((200, 200), 255, np.uint8))
    (pics / "e_empty.png").write_bytes(b"")
    (pics / "f_cut.png").write_bytes(_qr(tmp_path / "t.png", "cut").read_bytes()[:60])
    (pics / "g_junk.png").write_bytes(b"this is not an image at all" * 4)
    code, out = r.device("decode", pics)
    assert code == 2  # unreadable files still give exit 2 (by error code, not by text)
    assert "110105********002X" in out and ID not in out
    for english in ("no code found", "INVALID", "empty file", "truncated", "not an image"):
        assert english not in out, english
    assert t("scanout.no_code", "zh") in out and t("scanout.problem.empty", "zh") in out
    _, out = r.device("decode", "--json", pics)
    r.leaks = [leak for leak in r.leaks if "--json" not in leak[0]]  # data fields stay English
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    messages = [x["message"] for x in lines if "message" in x]
    messages += [c["message"] for x in lines for c in x.get("codes", [])]
    assert len(messages) == 7 and "?" not in "".join(messages)
    assert [m for m in messages if english_runs(m)] == []
    assert {x.get("error_code") for x in lines} >= {"no_code", "empty", "truncated", "not_image"}
    only_blank = tmp_path / "blank"
    only_blank.mkdir()
    cv2.imwrite(str(only_blank / "x.png"), np.full((200, 200), 255, np.uint8))
    code, out = r.device("decode", only_blank)
    assert code == 1 and t("scanout.no_code", "zh") in out
    code, out = r.device("scan", "--images", pics)
    assert "INVALID" not in out and t("scan.kind.resident_id", "zh") in out
    assert r.leaks == [], _leaks(r)


def test_a_broken_audit_chain_is_told_in_chinese(runner):
    r = runner
    r.device(
        "init",
        "--checkpoint-name",
        "东门卡口",
        "--checkpoint-code",
        "CP-1",
        "--supervisor",
        SUPERVISOR,
    )
    r.device("record", "--direction", "in", "--id-number", A, "--temperature", "36.6")
    db = Path(r.tmp / "home" / "fieldkit.db")
    conn = sqlite3.connect(db)
    conn.execute("UPDATE audit SET operator = 'someone else' WHERE seq = 2")
    conn.commit()
    conn.close()
    code, out = r.device("audit", "verify", env={"FIELDKIT_PIN": ""})
    assert code == 1 and "was altered" not in out
    assert "第 2 条" in out and "被改动过" in out
    code, out = r.device("audit", "verify")  # with the PIN: keyed links checked too
    assert code == 1 and "was altered" not in out and "被改动过" in out
    _, out = r.device("status")
    assert "was altered" not in out and "被改动过" in out
    _, out = r.device("audit", "verify", "--json")
    assert json.loads(out.split("\n", 1)[0] if out.startswith("{") else "{}") is not None
    assert r.leaks == [], _leaks(r)


def test_every_audit_problem_has_words_in_both_languages():
    from fieldkit.store.audit import AuditProblem

    for code, params in [
        ("missing", {"seq": 3, "next": 5}),
        ("unlinked", {"seq": 3, "prev": 2}),
        ("altered", {"seq": 2, "action": "record"}),
        ("unkeyed", {"seq": 2, "action": "record"}),
        ("replaced", {}),
        ("cut", {"count": 4, "head": 9}),
        ("no_head", {}),
        ("backwards", {"town": 9, "count": 4}),
        ("town_differs", {"seq": 4}),
    ]:
        problem = AuditProblem(1, "english", code, tuple(params.items()))
        zh, en = problem.text("zh"), problem.text("en")
        assert english_runs(zh) == [] and "?" not in zh and "?" not in en, (code, zh, en)
        assert zh != en
    assert AuditProblem(1, "plain english").text("zh") == "plain english"


def _post(http, device_id, body):
    from sync import protocol as p

    return http.post(p.PATH_BATCHES, content=body, headers={"X-Fieldkit-Device": device_id})


def _refusals(repo, tag: str) -> list[tuple[str, dict]]:
    """(what, body) of refusals a town server gives, in the process language."""
    import time

    import httpx
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from sync import protocol as p
    from sync.server.town import ServerSettings
    from sync.testing import SyncASGITransport, TestTown, fake_record

    town = TestTown(repo, ServerSettings(max_batch_records=10))
    transport = SyncASGITransport(town.app)
    out = []
    with httpx.Client(transport=transport, base_url="http://town") as http:
        device_id, key = town.enroll_raw(http, "gate-1" + tag)
        records = [fake_record(i) for i in range(3)]
        _, body = town.seal("0123456789abcdef", Ed25519PrivateKey.generate(), records)
        out.append(("unknown device", _post(http, "0123456789abcdef", body).json()))
        _, old = town.seal(device_id, key, records, created_at=time.time() - 90 * 86400)
        out.append(("stale", _post(http, device_id, old).json()))
        _, big = town.seal(device_id, key, [fake_record(i) for i in range(11)])
        out.append(("too many", _post(http, device_id, big).json()))
        out.append(("not json", http.post(p.PATH_ENROLL, content=b"{").json()))
        token = town.new_token("gate-2" + tag)
        req = {
            "token": token,
            "public_key": p.b64e(p.raw_public(Ed25519PrivateKey.generate().public_key())),
            "seal_to": p.b64e(p.raw_public(Ed25519PrivateKey.generate().public_key())),
        }
        out.append(("bad token", http.post(p.PATH_ENROLL, json={**req, "token": "X.1"}).json()))
    transport.shutdown()
    return out


def test_server_refusals_speak_the_servers_language(repo, monkeypatch):
    monkeypatch.delenv("FIELDKIT_LANG", raising=False)  # the default: Chinese
    zh = _refusals(repo, "zh")
    codes = [body["error"] for _, body in zh]
    assert codes == ["unknown_device", "stale_batch", "batch_too_large", "bad_request", "bad_token"]
    for what, body in zh:
        assert english_runs(body["message"]) == [], (what, body)
        assert "?" not in body["message"], (what, body)
    assert "最多收 10 条" in zh[2][1]["message"]
    monkeypatch.setenv("FIELDKIT_LANG", "en")
    en = _refusals(repo, "en")
    assert [body["error"] for _, body in en] == codes  # the machine field never changes
    assert "at most 10" in en[2][1]["message"] and "clock" in en[1][1]["message"]


def test_help_follows_the_config_files_language(runner):
    r = runner
    _, zh = r.device("--help")
    assert english_runs(zh) == []
    base = r.config.read_text("utf-8")
    r.config.write_text(base + '[ui]\nlanguage = "en"\n', "utf-8")
    _, en = r.device("--help")
    _, en_sub = r.device("record", "--help")
    r.leaks.clear()  # English asked for
    assert english_runs(en) != [] and english_runs(en_sub) != [], en
    _, back = r.device("--lang", "zh", "--help")  # --lang still beats the file
    r.config.write_text(base + '[ui]\nlanguage = "zh"\n', "utf-8")
    _, zh_file = r.device("--help", env={"FIELDKIT_LANG": "en"})  # and so does FIELDKIT_LANG
    assert english_runs(back) == [] and english_runs(zh_file) != []
