"""Both command lines in the user's language, and never a traceback.

``fieldkit``: --lang > FIELDKIT_LANG > the config's ui.language > Chinese; config-file errors
(encoding, BOM, bad keys, unknown language) in that language; --json keeps English keys and
codes and adds the message. ``fieldkit-server``: its own --lang / FIELDKIT_LANG / setting. A
closed pipe (``… | head``) ends quietly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import SUPERVISOR_PIN

SERVER = Path(sys.executable).parent / "fieldkit-server"


def _server(tmp_path: Path, *args: str, env: dict[str, str] | None = None, **kw):
    e = {k: v for k, v in os.environ.items() if not k.startswith("FIELDKIT_")}
    e.update(env or {})
    return subprocess.run(
        [str(SERVER), *args], capture_output=True, text=True, env=e, timeout=120, **kw
    )


def test_default_is_chinese_and_lang_or_env_switch(cli):
    zh = cli.run("status", check=False, env={"FIELDKIT_LANG": ""})
    assert zh.returncode == 3 and "没有 FieldKit 数据库" in zh.stderr.replace("处没有", "没有")
    en = cli.run("--lang", "en", "status", check=False, env={"FIELDKIT_LANG": "zh"})
    assert "no FieldKit store" in en.stderr  # --lang beats FIELDKIT_LANG
    env_en = cli.run("status", check=False, env={"FIELDKIT_LANG": "en"})
    assert "no FieldKit store" in env_en.stderr
    cli.config.write_text(cli.config.read_text("utf-8") + '[ui]\nlanguage = "en"\n', "utf-8")
    cfg = cli.run("status", check=False, env={"FIELDKIT_LANG": ""})
    assert "no FieldKit store" in cfg.stderr  # the config's language


def test_json_keeps_codes_and_adds_the_message(cli):
    cli.init()
    data = json.loads(cli.run("status", "--json", env={"FIELDKIT_LANG": ""}).stdout)
    assert "passages" in data and "审计" in data["message"]
    bad = cli.run(
        "record",
        "--direction",
        "in",
        "--temperature",
        "abc",
        "--json",
        pin=SUPERVISOR_PIN,
        check=False,
        env={"FIELDKIT_LANG": ""},
    )
    err = json.loads(bad.stdout)
    assert err["error"] == "err.temp_nan" and err["params"]["value"] == "abc"
    assert "不是数字" in err["message"] and "不是数字" in bad.stderr


def test_config_with_a_bom_is_read(cli):
    cli.config.write_bytes(b"\xef\xbb\xbf" + cli.config.read_bytes())  # as Notepad saves it
    r = cli.run(
        "init",
        "--checkpoint-name",
        "东门",
        "--checkpoint-code",
        "CP-1",
        "--supervisor",
        "王芳",
        pin=SUPERVISOR_PIN,
        check=False,
    )
    assert r.returncode == 0, r.stderr


def test_gbk_config_is_one_line_naming_the_file(cli):
    cli.config.write_bytes('[checkpoint]\nname = "东门卡口"\n'.encode("gbk"))
    r = cli.run("status", check=False, env={"FIELDKIT_LANG": ""})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and str(cli.config) in r.stderr and "UTF-8" in r.stderr
    en = cli.run("status", check=False)
    assert "save it as UTF-8" in en.stderr


def test_config_errors_in_the_users_language(cli):
    cli.config.write_text('[rules]\nfever_threshold = "hot"\n', encoding="utf-8")
    r = cli.run("status", check=False, env={"FIELDKIT_LANG": ""})
    assert r.stderr.strip() == (
        f"fieldkit: {cli.config}：rules.fever_threshold 应为36.0 到 40.0 之间的数字，实际是 'hot'"
    )
    cli.config.write_text('[ui]\nlanguage = "fr"\n', encoding="utf-8")
    r = cli.run("status", check=False, env={"FIELDKIT_LANG": ""})
    assert "ui.language" in r.stderr and "zh, en" in r.stderr and "以下之一" in r.stderr
    # A broken file that names its language is answered in it.
    cli.config.write_text('[ui]\nlanguage = "en"\n[rules]\nfever_threshold = 99\n', "utf-8")
    r = cli.run("status", check=False, env={"FIELDKIT_LANG": ""})
    assert "expected a number from 36.0 to 40.0" in r.stderr


def test_argparse_errors_are_translated(cli):
    r = cli.run("record", "--direction", "sideways", check=False, env={"FIELDKIT_LANG": ""})
    assert r.returncode == 2 and "错误" in r.stderr and "无效的选项" in r.stderr
    assert "invalid choice" not in r.stderr and "usage" not in r.stderr


def test_server_speaks_chinese_by_default_and_english_on_request(tmp_path):
    town = tmp_path / "town"
    r = _server(tmp_path, "init", "--data-dir", str(town))
    assert r.returncode == 0 and "镇服务器已在" in r.stdout, r.stderr
    r = _server(tmp_path, "device", "list", "--data-dir", str(town))
    assert "还没有设备" in r.stdout
    r = _server(tmp_path, "device", "list", "--data-dir", str(town), "--lang", "en")
    assert "No devices yet" in r.stdout
    r = _server(tmp_path, "--lang", "en", "device", "revoke", "nobody", "--data-dir", str(town))
    assert r.returncode == 2 and "no active or pending device" in r.stderr
    r = _server(
        tmp_path, "device", "revoke", "nobody", "--data-dir", str(town), env={"FIELDKIT_LANG": "en"}
    )
    assert "no active or pending device" in r.stderr
    # The town's own setting.
    settings = town / "server.toml"
    text = settings.read_text("utf-8").replace('language = ""', 'language = "en"')
    settings.write_text(text, "utf-8")
    r = _server(tmp_path, "device", "revoke", "nobody", "--data-dir", str(town))
    assert "no active or pending device" in r.stderr


def test_a_closed_pipe_ends_quietly(tmp_path):
    """``fieldkit-server device add … | head``: the reader is gone before the output."""
    town = tmp_path / "town"
    assert _server(tmp_path, "init", "--data-dir", str(town)).returncode == 0
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [str(SERVER), "device", "add", "gate-1", "--data-dir", str(town)],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("FIELDKIT_")},
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr
    assert proc.returncode == 0
