"""The real ``fieldkit`` console script, as a user or a script runs it."""

import json

from tests.conftest import SUPERVISOR, SUPERVISOR_PIN

ID_A = "11010519491231002X"


def test_init_record_status_audit(cli):
    out = cli.init()
    assert out["checkpoint"] == {"name": "东门卡口", "code": "CP-0101"}
    assert len(out["recovery_key"].replace("-", "")) == 32
    rec = cli.json(
        "record",
        "--direction",
        "in",
        "--id-number",
        ID_A,
        "--name",
        "张三",
        "--temperature",
        "36.6",
        "--code-colour",
        "green",
        pin=SUPERVISOR_PIN,
    )
    assert rec["decision"] == "admit" and rec["id_masked"] == "110105********002X"
    assert rec["name_masked"] == "张*"
    fever = cli.json(
        "record",
        "--direction",
        "in",
        "--id-number",
        ID_A,
        "--temperature",
        "385",
        pin=SUPERVISOR_PIN,
    )
    assert fever["decision"] == "refer"
    assert fever["reasons"][0]["code"] == "fever" and fever["reasons"][0]["alert"]
    status = cli.json("status")
    assert status["passages"] == 2 and status["sync"]["pending"] == 2
    assert status["inside_now"] == 1 and status["audit"]["ok"]
    text = cli.run("--lang", "en", "status").stdout
    assert "passages   2" in text and "chain intact" in text
    assert "audit chain intact" in cli.run("audit", "verify").stdout


def test_human_output_is_in_the_chosen_language(cli):
    cli.init()
    zh = cli.run(
        "record",
        "--direction",
        "in",
        "--id-number",
        ID_A,
        "--temperature",
        "38.0",
        pin=SUPERVISOR_PIN,
        env={"FIELDKIT_LANG": ""},  # the default language
    ).stdout
    assert zh.startswith("转诊") and "发热 38.0" in zh
    en = cli.run(
        "--lang",
        "en",
        "record",
        "--direction",
        "in",
        "--id-number",
        ID_A,
        "--temperature",
        "36.0",
        "--code-colour",
        "yellow",
        pin=SUPERVISOR_PIN,
    ).stdout
    assert en.startswith("TURN BACK") and "Yellow code" in en


def test_operators_through_the_cli(cli):
    cli.init()
    cli.run(
        "operator",
        "add",
        "李强",
        "--role",
        "gate",
        "--pin-stdin",
        stdin=f"{SUPERVISOR_PIN}\n1357\n",
    )
    ops = cli.json("operator", "list")
    assert {(o["name"], o["role"]) for o in ops} == {(SUPERVISOR, "supervisor"), ("李强", "gate")}
    # With two operators, the CLI must be told who is acting.
    r = cli.run(
        "record",
        "--direction",
        "in",
        "--id-number",
        ID_A,
        "--temperature",
        "36.5",
        pin="1357",
        check=False,
    )
    assert r.returncode != 0 and "--operator" in r.stderr
    rec = cli.json(
        "record",
        "--direction",
        "in",
        "--id-number",
        ID_A,
        "--temperature",
        "36.5",
        "--operator",
        "李强",
        pin="1357",
    )
    assert rec["decision"] == "admit"
    denied = cli.run(
        "operator",
        "add",
        "赵六",
        "--role",
        "gate",
        "--operator",
        "李强",
        "--pin-stdin",
        stdin="1357\n2222\n",
        check=False,
    )
    assert denied.returncode != 0 and "not a supervisor" in denied.stderr
    cli.run(
        "operator",
        "reset-pin",
        "李强",
        "--operator",
        SUPERVISOR,
        env={"FIELDKIT_PIN": SUPERVISOR_PIN, "FIELDKIT_NEW_PIN": "8642"},
    )
    cli.json(
        "record",
        "--direction",
        "out",
        "--id-number",
        ID_A,
        "--temperature",
        "36.5",
        "--operator",
        "李强",
        pin="8642",
    )
    cli.run("operator", "remove", "李强", "--operator", SUPERVISOR, pin=SUPERVISOR_PIN)
    assert [o["name"] for o in cli.json("operator", "list")] == [SUPERVISOR]


def test_errors_are_one_clear_line_and_nonzero(cli):
    r = cli.run("status", check=False)
    assert r.returncode != 0 and "fieldkit init" in r.stderr and r.stderr.count("\n") == 1
    cli.init()
    again = cli.run(
        "init",
        "--checkpoint-name",
        "x",
        "--checkpoint-code",
        "y",
        "--supervisor",
        "z",
        pin="1111",
        check=False,
    )
    assert again.returncode != 0 and "already set up" in again.stderr
    cases = [
        (["--temperature", "48"], "re-measure"),
        (["--temperature", "abc"], "not a number"),
        (["--temperature", "36.5", "--test-date", "2026-13-01"], "not a date"),
        ([], "temperature missing"),
    ]
    for extra, needle in cases:
        r = cli.run(
            "record",
            "--direction",
            "in",
            "--id-number",
            ID_A,
            *extra,
            pin=SUPERVISOR_PIN,
            check=False,
        )
        assert r.returncode != 0 and needle in r.stderr, (extra, r.stderr)
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    bad_id = cli.run(
        "record",
        "--direction",
        "in",
        "--id-number",
        "110105194912310021",
        "--temperature",
        "36.5",
        pin=SUPERVISOR_PIN,
        check=False,
    )
    assert bad_id.returncode != 0 and "check digit" in bad_id.stderr
    ok = cli.json(
        "record",
        "--direction",
        "in",
        "--id-number",
        "110105194912310021",
        "--temperature",
        "36.5",
        "--confirm-check-digit",
        pin=SUPERVISOR_PIN,
    )
    assert ok["decision"] == "admit"
    wrong_pin = cli.run(
        "record",
        "--direction",
        "in",
        "--id-number",
        ID_A,
        "--temperature",
        "36.5",
        pin="0000",
        check=False,
    )
    assert wrong_pin.returncode == 4 and "wrong PIN" in wrong_pin.stderr
    # Nothing was lost by the failures: one record, audit intact.
    assert cli.json("status")["passages"] == 1
    assert cli.run("audit", "verify").returncode == 0


def test_no_pin_and_no_terminal_says_how(cli):
    cli.init()
    r = cli.run(
        "record",
        "--direction",
        "in",
        "--id-number",
        ID_A,
        "--temperature",
        "36.5",
        check=False,
        stdin="",
    )
    assert r.returncode != 0 and "FIELDKIT_PIN" in r.stderr


def test_bad_config_file_is_one_line(cli):
    cli.config.write_text('[rules]\nfever_threshold = "hot"\n', encoding="utf-8")
    r = cli.run("status", check=False)
    assert r.returncode == 2
    assert r.stderr.strip() == (
        f"fieldkit: {cli.config}: key rules.fever_threshold: expected a "
        "number from 36.0 to 40.0, found 'hot'"
    )


def test_audit_verify_fails_and_names_the_entry(cli):
    import sqlite3

    cli.init()
    cli.json(
        "record",
        "--direction",
        "in",
        "--id-number",
        ID_A,
        "--temperature",
        "36.5",
        pin=SUPERVISOR_PIN,
    )
    conn = sqlite3.connect(cli.home / "fieldkit.db")
    conn.execute("UPDATE audit SET operator = 'someone else' WHERE seq = 2")
    conn.commit()
    conn.close()
    r = cli.run("audit", "verify", check=False)
    assert r.returncode == 1 and "BROKEN at entry 2" in r.stdout
    data = json.loads(cli.run("audit", "verify", "--json", check=False).stdout)
    assert data["first_broken"] == 2 and not data["ok"]


def test_mode_change_needs_supervisor_and_recover(cli):
    out = cli.init()
    cli.run("mode", "medium", pin=SUPERVISOR_PIN)
    assert cli.json("status")["checkpoint"]["mode"] == "medium"
    rec = cli.json(
        "record",
        "--direction",
        "in",
        "--id-number",
        ID_A,
        "--temperature",
        "36.5",
        "--code-colour",
        "green",
        "--category",
        "outsider",
        pin=SUPERVISOR_PIN,
    )
    assert rec["decision"] == "deny"
    cli.run(
        "recover", "--supervisor", SUPERVISOR, "--pin-stdin", stdin=f"{out['recovery_key']}\n5555\n"
    )
    cli.json(
        "record", "--direction", "in", "--id-number", ID_A, "--temperature", "36.5", pin="5555"
    )
