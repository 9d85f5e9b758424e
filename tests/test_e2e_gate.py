"""End to end: the real ``fieldkit`` command in tmux, a QR image as the camera, keys typed.

Starts ``fieldkit --images DIR`` on a folder holding a QR of a test resident ID, logs in as a
gate operator, waits for the scan to fill the ID, types the temperature and Enter, then checks
the record through the CLI (``fieldkit status --json``, ``fieldkit audit list --json``).
"""

from __future__ import annotations

import os
import shlex
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
import segno

from tests.conftest import FIELDKIT, ROOT, SUPERVISOR_PIN, Cli

ID = "11010519491231002X"
pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")


class Tmux:
    """One private tmux server (its own socket), one session."""

    def __init__(self, name: str) -> None:
        self.socket = f"fieldkit-e2e-{os.getpid()}-{name}"
        self.name = name

    def tmux(self, *args: str, check: bool = True) -> str:
        proc = subprocess.run(
            ["tmux", "-L", self.socket, *args],
            capture_output=True,
            check=False,
            text=True,
            timeout=30,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"tmux {args}: {proc.stderr}")
        return proc.stdout

    def start(self, command: str) -> None:
        self.tmux("new-session", "-d", "-s", self.name, "-x", "100", "-y", "30", command)

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.name, *keys)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.name, check=False)

    def wait_for(self, text: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            shown = self.screen()
            if text in shown:
                return shown
            time.sleep(0.3)
        raise AssertionError(f"{text!r} did not appear; the screen shows:\n{self.screen()}")

    def close(self) -> None:
        self.tmux("kill-server", check=False)


def test_scan_type_temperature_enter_in_the_real_app(tmp_path: Path):
    cli = Cli(tmp_path)
    # the command must run this checkout, wherever the venv's editable install points
    cli.env["PYTHONPATH"] = str(ROOT)
    cli.init()
    cli.run(
        "operator",
        "add",
        "gate1",
        "--role",
        "gate",
        "--operator",
        "王芳",
        pin=SUPERVISOR_PIN,
        env={"FIELDKIT_NEW_PIN": "1357"},
    )
    images = tmp_path / "camera"
    images.mkdir()
    segno.make(ID, error="m").save(str(images / "id.png"), scale=8, border=4)

    env = " ".join(
        f"{k}={shlex.quote(v)}"
        for k, v in {
            "FIELDKIT_HOME": cli.env["FIELDKIT_HOME"],
            "FIELDKIT_CONFIG": cli.env["FIELDKIT_CONFIG"],
            "PYTHONPATH": str(ROOT),
            "LANG": "C.UTF-8",
            "TERM": "xterm-256color",
        }.items()
    )
    tmux = Tmux("gate")
    try:
        tmux.start(
            f"env {env} {shlex.quote(str(FIELDKIT))} --images {shlex.quote(str(images))} ; sleep 30"
        )
        tmux.wait_for("PIN")
        tmux.keys("gate1", "Enter")
        time.sleep(0.3)
        tmux.keys("1357", "Enter")
        shown = tmux.wait_for("110105********002X")  # the camera read the QR, masked
        assert ID not in shown  # the full number is never on screen
        tmux.keys("365")
        time.sleep(0.3)
        tmux.keys("Enter")
        tmux.wait_for("进1")  # today's counters
        status = cli.json("status")
        assert status["passages"] == 1 and status["inside_now"] == 1
        assert status["sync"]["pending"] == 1
        audit = cli.json("audit", "list")
        assert any(e["action"] == "login" and e["operator"] == "gate1" for e in audit)
        tmux.keys("C-q")
        deadline = time.monotonic() + 20
        while (
            time.monotonic() < deadline and "PIN" not in tmux.screen() and "110105" in tmux.screen()
        ):
            time.sleep(0.3)
    finally:
        tmux.close()
    db = sqlite3.connect(Path(cli.env["FIELDKIT_HOME"]) / "fieldkit.db")
    rows = db.execute(
        "SELECT temperature, decision, id_masked, source, operator FROM passages"
    ).fetchall()
    db.close()
    # The temperature and the masked ID are sealed (issue 14 item 7): not in their columns …
    assert rows == [(None, "admit", None, "scan", "gate1")]
    # … and read back through the store with the operator's PIN.
    from fieldkit.config import Settings
    from fieldkit.store import open_store

    settings = Settings()
    settings.data_dir = Path(cli.env["FIELDKIT_HOME"])
    store = open_store(settings)
    store.unlock("gate1", "1357")
    row = store.passages.recent(1)[0]
    store.close()
    assert (row.temperature, row.decision, row.id_masked) == (36.5, "admit", "110105********002X")
