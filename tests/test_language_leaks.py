"""No English leaks into a Chinese run: every command line of fieldkit and fieldkit-server, on
its success and error paths, and the app's screens, read in zh.

A leak is a run of three or more English words; identifiers, codes, options, file paths, URLs
and units do not count (``fieldkit-server device add``, ``--data-dir``, ``/tmp/x``, ``°C``).
The commands run in-process (``main(argv)``), so a leak names the command that printed it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from fieldkit.cli import main as device_main
from sync.server.cli import main as server_main
from tests.conftest import SUPERVISOR, SUPERVISOR_PIN
from tests.ledger_support import make_id, write_messy_xlsx

A = make_id(31)

# Words that are names, not English prose (program names, formats, protocol words).
NAMES = {
    "fieldkit",
    "sqlite",
    "postgresql",
    "toml",
    "json",
    "csv",
    "xlsx",
    "pdf",
    "png",
    "http",
    "https",
    "utf",
    "gbk",
    "yyyy",
    "mm",
    "dd",
    "hh",
    "ctrl",
    "enter",
    "tab",
    "kept",
    "other",
    "ca",
    "pem",
    "tls",
    "iso",
    "id",
    "qr",
    "pin",
}
_CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")
_WORD = re.compile(r"[A-Za-z][a-z]+")
_STRIP = "()[]{}'\"“”‘’,;:!?.…`<>|=*"


def english_runs(text: str) -> list[str]:
    """Runs of 3+ English words. Chinese characters and non-words (options, paths, numbers,
    identifiers with _ . / - : digits, ALL-CAPS codes) break a run."""
    runs = []
    for line in _CJK.sub("\n", text).splitlines():
        run: list[str] = []
        for raw in line.split():
            token = raw.strip(_STRIP)
            is_word = (
                bool(_WORD.fullmatch(token))
                and token.lower() not in NAMES
                and not raw.startswith(("-", "'", '"', "{", "`"))  # options, quoted values, keys
            )
            if is_word:
                run.append(token)
                continue
            if len(run) >= 3:
                runs.append(" ".join(run))
            run = []
        if len(run) >= 3:
            runs.append(" ".join(run))
    return runs


def test_the_detector_finds_prose_and_spares_codes():
    assert english_runs("sync failed: cannot reach the town server") != []
    assert english_runs("第 2 位乘车人：refer") == []
    assert english_runs("请运行 fieldkit-server init --data-dir /tmp/town") == []
    assert english_runs("体温 44.0 °C 不在 34.0–43.0 °C 之间") == []
    assert english_runs("{'rows': 3, 'file': '/tmp/a.xlsx'}") == []
    assert english_runs("key list   3 persons, updated never") == ["persons updated never"]
    assert english_runs('{"from": "normal", "to": "high"} invalid choice: \'init\'') == []


def _messages(data) -> list[str]:
    if isinstance(data, dict):
        found = [str(v) for k, v in data.items() if k == "message"]
        return found + [m for k, v in data.items() if k != "message" for m in _messages(v)]
    if isinstance(data, list):
        return [m for v in data for m in _messages(v)]
    return []


class Runner:
    """Runs both command lines in-process in Chinese, collecting every line they print."""

    def __init__(self, tmp_path: Path, monkeypatch, capsys) -> None:
        self.tmp, self.capsys = tmp_path, capsys
        self.config = tmp_path / "config.toml"
        self.config.write_text(
            "[security]\nscrypt_n = 1024\nargon2_memory_kib = 1024\nargon2_time_cost = 1\n"
            "argon2_parallelism = 1\nmin_pin_length = 4\n",
            encoding="utf-8",
        )
        for key in ("FIELDKIT_LANG", "FIELDKIT_OPERATOR", "FIELDKIT_NEW_PIN"):
            monkeypatch.delenv(key, raising=False)
        monkeypatch.setenv("FIELDKIT_HOME", str(tmp_path / "home"))
        monkeypatch.setenv("FIELDKIT_CONFIG", str(self.config))
        monkeypatch.setenv("FIELDKIT_PIN", SUPERVISOR_PIN)
        self.monkeypatch = monkeypatch
        self.town = str(tmp_path / "town")
        self.leaks: list[tuple[str, str]] = []
        self.ran = 0

    def _run(self, main, prog: str, argv: list[str], env: dict[str, str] | None) -> tuple[int, str]:
        with self.monkeypatch.context() as m:
            for k, v in (env or {}).items():
                m.setenv(k, v)
            try:
                code = main([str(a) for a in argv])
            except SystemExit as exc:  # argparse
                code = exc.code if isinstance(exc.code, int) else 2
        out = self.capsys.readouterr()
        text = out.out + out.err
        if "--json" in argv:  # stable English keys; only the human message is read
            try:
                text = "\n".join(_messages(json.loads(out.out))) + "\n" + out.err
            except ValueError:
                pass
        self.ran += 1
        if "Traceback" in text:
            self.leaks.append((f"{prog} {' '.join(map(str, argv))}", "TRACEBACK " + text))
        for leak in english_runs(text):
            self.leaks.append((f"{prog} {' '.join(map(str, argv))}", leak))
        return code, text

    def device(self, *argv, env=None):
        return self._run(device_main, "fieldkit", list(argv), env)

    def server(self, *argv, env=None):
        return self._run(server_main, "fieldkit-server", list(argv), env)


@pytest.fixture
def runner(tmp_path, monkeypatch, capsys):
    return Runner(tmp_path, monkeypatch, capsys)


def _ledger_file(tmp_path: Path) -> Path:
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
            [2, "李四", "12345", "", "3栋", "2单元", "502", "", "", "李", None],
        ],
    )


def _command_paths(parser, path=()):
    """Every command and sub-command of a parser, as argv prefixes."""
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name)
                yield from _command_paths(sub, (*path, name))


def test_every_help_page_speaks_chinese(runner):
    from fieldkit.cli import build_parser
    from sync.server.cli import build_parser as server_parser

    runner.device("--help")
    for path in _command_paths(build_parser(None)):
        runner.device(*path, "--help")
    runner.server("--help")
    for path in _command_paths(server_parser()):
        runner.server(*path, "--help")
    assert runner.ran >= 40
    assert runner.leaks == [], "\n".join(f"{cmd}: {leak}" for cmd, leak in runner.leaks)


def test_every_fieldkit_command_speaks_chinese(runner, tmp_path):
    r = runner
    r.device("status")  # no store yet
    r.device(
        "init",
        "--checkpoint-name",
        "东门卡口",
        "--checkpoint-code",
        "CP-0101",
        "--supervisor",
        SUPERVISOR,
    )
    r.device("init", "--checkpoint-name", "x", "--checkpoint-code", "y", "--supervisor", "z")
    r.device("status")
    r.device("status", "--json")
    r.device("operator", "add", "李明", "--role", "gate", env={"FIELDKIT_NEW_PIN": "1357"})
    r.device("operator", "add", "李明", "--role", "gate", env={"FIELDKIT_NEW_PIN": "1357"})
    r.device("operator", "list")
    r.device(
        "record",
        "--direction",
        "in",
        "--id-number",
        A,
        "--temperature",
        "36.6",
        "--operator",
        SUPERVISOR,
    )
    r.device(
        "record",
        "--direction",
        "in",
        "--id-number",
        A,
        "--temperature",
        "38.5",
        "--code-colour",
        "yellow",
        "--operator",
        SUPERVISOR,
    )
    for extra in (
        [],
        ["--temperature", "abc"],
        ["--temperature", "48"],
        ["--temperature", "36.5", "--test-date", "2026-13-01"],
        ["--temperature", "36.5", "--test-date", "2999-01-01", "--test-result", "negative"],
    ):
        r.device("record", "--direction", "in", "--id-number", A, "--operator", SUPERVISOR, *extra)
    r.device(
        "record",
        "--direction",
        "in",
        "--id-number",
        "110105194912310021",
        "--temperature",
        "36.5",
        "--operator",
        SUPERVISOR,
    )
    r.device(
        "record",
        "--direction",
        "in",
        "--id-number",
        "1101051949123",
        "--id-kind",
        "resident_id",
        "--temperature",
        "36.5",
        "--operator",
        SUPERVISOR,
    )
    r.device(
        "record",
        "--direction",
        "in",
        "--temperature",
        "36.5",
        "--operator",
        "李明",
        env={"FIELDKIT_PIN": "0000"},
    )
    r.device("record", "--direction", "in", "--temperature", "36.5")  # several operators
    r.device("record", "--direction", "sideways")  # argparse
    r.device("mode", "high", "--operator", "李明", env={"FIELDKIT_PIN": "1357"})
    r.device("mode", "medium", "--operator", SUPERVISOR)
    r.device("audit", "verify")
    r.device("audit", "list", "--limit", "3")
    r.device(
        "operator", "reset-pin", "李明", "--operator", SUPERVISOR, env={"FIELDKIT_NEW_PIN": "2222"}
    )
    r.device("operator", "remove", "李明", "--operator", SUPERVISOR)
    r.device("operator", "remove", SUPERVISOR, "--operator", SUPERVISOR)
    r.device(
        "recover",
        "--supervisor",
        "新负责人",
        env={"FIELDKIT_RECOVERY_KEY": "AAAA-BBBB", "FIELDKIT_NEW_PIN": "5555"},
    )
    # Ledger.
    r.device("ledger", "import", _ledger_file(tmp_path))
    r.device("ledger", "import", tmp_path / "nope.xlsx")
    r.device("ledger", "template", tmp_path / "模板.xlsx")
    r.device("ledger", "coverage")
    r.device("ledger", "monitoring")
    r.device("ledger", "export", tmp_path / "out.xlsx")
    r.device("ledger", "export", tmp_path / "out.txt")
    # Shifts, reports, exports, purge.
    r.device("shift", "open", "--note", "早班")
    r.device("shift", "open")
    r.device("shift", "close", "--note", "正常")
    r.device("shift", "close")
    r.device("report", "daily")
    r.device("report", "daily", "--date", "31/02/2024")
    r.device("report", "totals")
    r.device("export", tmp_path / "day.xlsx")
    r.device("export", tmp_path / "day.csv")
    r.device("purge", "--dry-run")
    r.device("purge")
    # Sync without a town.
    r.device("sync")
    r.device("enroll", "http://127.0.0.1:9", "badtoken")
    # Config problems.
    r.config.write_bytes('[checkpoint]\nname = "东门"\n'.encode("gbk"))
    r.device("status")
    r.config.write_text('[rules]\nfever_threshold = "hot"\n[ui]\nlanguage = "zh"\n', "utf-8")
    r.device("status")
    r.config.write_text('[ui]\nlanguage = "fr"\n', "utf-8")
    r.device("status")
    r.config.write_text("[rules\n", "utf-8")
    r.device("status")
    # --help: the command list and the record options.
    r.device("--help")
    r.device("record", "--help")
    r.device("ledger", "--help")
    assert r.ran >= 50
    assert r.leaks == [], "\n".join(f"{cmd}: {leak}" for cmd, leak in r.leaks)


def test_every_fieldkit_server_command_speaks_chinese(runner, tmp_path):
    r = runner
    town = r.town
    r.server("device", "list", "--data-dir", town)  # no town yet
    r.server("init", "--data-dir", town)
    r.server("init", "--data-dir", town)
    r.server("device", "add", "东门", "--data-dir", town, "--no-qr")
    r.server(
        "device", "add", "西门", "--data-dir", town, "--no-qr", "--url", "http://10.0.0.2:8470"
    )
    _, out = r.server("device", "add", "南门", "--data-dir", town, "--no-qr", "--json")
    r.server("device", "list", "--data-dir", town)
    r.server("device", "revoke", "西门", "--data-dir", town)
    r.server("device", "revoke", "nobody", "--data-dir", town)
    kp = tmp_path / "kp.csv"
    kp.write_text(f"身份证号,类别\n{A},密接\n12345,密接\n", encoding="utf-8")
    r.server("keyperson", "import", kp, "--data-dir", town)
    r.server("keyperson", "import", tmp_path / "nope.csv", "--data-dir", town)
    r.server("mode", "high", "--data-dir", town)
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"fever_threshold": 37.0}), "utf-8")
    r.server("rules", rules, "--data-dir", town)
    rules.write_text(json.dumps({"fever_threshold": "hot"}), "utf-8")
    r.server("rules", rules, "--data-dir", town)
    rules.write_text("{", "utf-8")
    r.server("rules", rules, "--data-dir", town)
    empty = tmp_path / "none.json"
    empty.write_text("{}", "utf-8")
    r.server("rules", empty, "--data-dir", town)
    r.server("stats", "--data-dir", town)
    r.server("trace", "--id-number", A, "--data-dir", town)
    r.server("trace", "--data-dir", town)
    r.server("trace", "--checkpoint", "CP-1", "--data-dir", town)
    r.server("trace", "--checkpoint", "CP-1", "--from", "昨天", "--to", "今天", "--data-dir", town)
    r.server("conflicts", "--data-dir", town)
    r.server("ledger-conflicts", "--data-dir", town)
    r.server("ledger-conflicts", "--all", "--data-dir", town)
    r.server("ledger-conflicts", "resolve", "7", "--keep", "kept", "--data-dir", town)
    r.server("pass", "revoke", "P-1", "--data-dir", town)
    r.server(
        "pass",
        "issue",
        "--subject",
        "3-2-501",
        "--valid-from",
        "2026-01-01",
        "--valid-to",
        "2025-01-01",
        "--data-dir",
        town,
    )
    r.server(
        "pass",
        "issue",
        "--subject",
        "3-2-501",
        "--valid-from",
        "明天",
        "--valid-to",
        "2025-01-01",
        "--data-dir",
        town,
    )
    r.server("serve", "--tls-cert", "x.pem", "--data-dir", town)
    r.server("nonsense")
    r.server("--help")
    r.server("device", "--help")
    assert r.ran >= 25
    assert r.leaks == [], "\n".join(f"{cmd}: {leak}" for cmd, leak in r.leaks)
