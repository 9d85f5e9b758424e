"""``fieldkit ledger …`` through the real console script."""

from __future__ import annotations

from openpyxl import load_workbook

from tests.conftest import SUPERVISOR, SUPERVISOR_PIN
from tests.ledger_support import make_id, write_messy_xlsx

A, B = make_id(31), make_id(32)


def _file(tmp_path):
    return write_messy_xlsx(
        tmp_path / "台账.xlsx",
        [
            [
                1,
                "张三",
                A,
                "13800138000",
                "3栋",
                "2单元",
                "501",
                "密接",
                "居家隔离医学观察",
                "李",
                None,
            ],
            [2, "李四", B, "", "3栋", "2单元", "502", "", "", "李", None],
            [
                3,
                "王五",
                A[:-1] + ("0" if A[-1] != "0" else "1"),
                "",
                "3栋",
                "2单元",
                "503",
                "",
                "",
                None,
                None,
            ],
        ],
    )


def test_import_twice_json_summary(cli, tmp_path):
    cli.init()
    path = _file(tmp_path)
    first = cli.run("ledger", "import", str(path), "--json", pin=SUPERVISOR_PIN, check=False)
    assert first.returncode == 1  # some rows were rejected: scripts notice
    import json

    data = json.loads(first.stdout)
    assert (data["imported"], data["updated"], data["rejected_count"]) == (2, 0, 1)
    assert data["rejected"][0]["row"] == 6 and data["rejected"][0]["reason"] == "id_check_digit"
    again = json.loads(
        cli.run("ledger", "import", str(path), "--json", pin=SUPERVISOR_PIN, check=False).stdout
    )
    assert (again["imported"], again["updated"], again["unchanged"]) == (0, 0, 2)


def test_import_text_report_names_rows(cli, tmp_path):
    cli.init()
    out = cli.run(
        "--lang", "en", "ledger", "import", str(_file(tmp_path)), pin=SUPERVISOR_PIN, check=False
    )
    assert "imported 2" in out.stdout and "row 6:" in out.stdout and "check digit" in out.stdout


def test_template_and_masked_export(cli, tmp_path):
    cli.init()
    cli.run("ledger", "template", str(tmp_path / "t.xlsx"))
    assert load_workbook(tmp_path / "t.xlsx").active["A2"].value == "序号"
    cli.run("ledger", "import", str(_file(tmp_path)), pin=SUPERVISOR_PIN, check=False)
    out = cli.json("ledger", "export", str(tmp_path / "e.xlsx"), pin=SUPERVISOR_PIN)
    assert out["rows"] == 2 and out["full"] is False
    values = repr([list(r) for r in load_workbook(tmp_path / "e.xlsx").active.values])
    assert A not in values and "张*" in values


def test_full_export_by_a_patrol_worker_needs_the_supervisor(cli, tmp_path):
    cli.init()
    cli.run(
        "operator",
        "add",
        "小李",
        "--role",
        "patrol",
        pin=SUPERVISOR_PIN,
        env={"FIELDKIT_NEW_PIN": "1357"},
    )
    imported = cli.run(
        "ledger", "import", str(_file(tmp_path)), "--operator", "小李", pin="1357", check=False
    )
    assert imported.returncode == 1 and "2" in imported.stdout
    denied = cli.run(
        "ledger",
        "export",
        str(tmp_path / "f.xlsx"),
        "--full",
        "--operator",
        "小李",
        pin="1357",
        check=False,
    )
    assert denied.returncode != 0 and "supervisor" in denied.stderr
    wrong = cli.run(
        "ledger",
        "export",
        str(tmp_path / "f.xlsx"),
        "--full",
        "--operator",
        "小李",
        "--supervisor",
        SUPERVISOR,
        "--pin-stdin",
        stdin="1357\n0000\n",
        check=False,
    )
    assert wrong.returncode == 4 and not (tmp_path / "f.xlsx").exists()
    ok = cli.json(
        "ledger",
        "export",
        str(tmp_path / "f.xlsx"),
        "--full",
        "--operator",
        "小李",
        "--supervisor",
        SUPERVISOR,
        pin="1357",
        env={"FIELDKIT_SUPERVISOR_PIN": SUPERVISOR_PIN},
    )
    assert ok["full"] is True
    assert A in repr(list(load_workbook(tmp_path / "f.xlsx").active.values))
    audit = cli.json("audit", "list", "--action", "export_full")
    assert audit[0]["operator"] == "小李" and audit[0]["detail"]["confirmed_by"] == SUPERVISOR


def test_export_to_a_missing_folder_fails_cleanly(cli, tmp_path):
    cli.init()
    out = cli.run(
        "ledger", "export", str(tmp_path / "nope" / "e.xlsx"), pin=SUPERVISOR_PIN, check=False
    )
    assert out.returncode == 7 and out.stderr.count("\n") == 1
    assert "does not exist (is the USB stick mounted?)" in out.stderr
    assert out.stderr.rstrip().endswith("e.xlsx was not written")


def test_coverage_and_monitoring_commands(cli, tmp_path):
    cli.init()
    cli.run("ledger", "import", str(_file(tmp_path)), pin=SUPERVISOR_PIN, check=False)
    cov = cli.json("ledger", "coverage", pin=SUPERVISOR_PIN)
    assert cov["total"] == {"total": 2, "visited": 0, "people": 2}
    mon = cli.json("ledger", "monitoring", pin=SUPERVISOR_PIN)
    # --json: stable keys, plus the human text in the chosen language (issue 12)
    assert set(mon) == {"new_missed_alerts", "due", "alerts", "ending", "message"}
