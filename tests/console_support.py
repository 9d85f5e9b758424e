"""Shared pieces of the console tests: a real ``fieldkit-server serve`` on loopback, gate device
stores at two checkpoints, valid ID numbers, a headless Chromium."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from fieldkit.config import load_settings
from fieldkit.gate import GateEntry, GateService
from fieldkit.store import init_store
from sync.testing import free_port, new_pg_schema, pg_available, pg_url

BIN = Path(sys.executable).parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "correct-horse-9"


def id_number(serial: int, birth: str = "19800101") -> str:
    """A valid 18-digit resident ID (check digit computed)."""
    body = f"110105{birth}{serial % 1000:03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]


def pg_or_skip() -> None:
    why = pg_available()
    if why:
        if os.environ.get("FIELDKIT_REQUIRE_PG"):
            pytest.fail(f"PostgreSQL required but not available: {why}")
        pytest.skip(f"PostgreSQL not available: {why}")


def chromium_or_skip() -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium; make system-deps)")


class ServerProcess:
    """``fieldkit-server init`` + ``user add`` + ``serve`` as separate processes."""

    def __init__(self, tmp: Path, backend: str) -> None:
        self.dir = tmp / "town"
        self.backend = backend
        self.schema = new_pg_schema() if backend == "postgresql" else None
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDKIT_")}
        extra = ["--database-url", pg_url(), "--db-schema", self.schema] if self.schema else []
        self.cli("init", *extra)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def cli(self, *args: str, password: str | None = None, check: bool = True):
        env = dict(self.env)
        if password:
            env["FIELDKIT_CONSOLE_PASSWORD"] = password
        cmd = [str(BIN / "fieldkit-server"), *args, "--data-dir", str(self.dir)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        if check and proc.returncode:
            raise AssertionError(f"{' '.join(args)}: {proc.stdout}{proc.stderr}")
        return proc

    def start(self) -> None:
        log = open(self.dir.parent / "serve.log", "w")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [
                str(BIN / "fieldkit-server"),
                "serve",
                "--data-dir",
                str(self.dir),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError((self.dir.parent / "serve.log").read_text())
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise AssertionError("serve did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if self.schema:
            import psycopg

            with psycopg.connect(pg_url(), autocommit=True) as con:
                con.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')


def gate_store(data_dir: Path, code: str, name: str):
    settings = load_settings(None, data_dir)
    settings.security.scrypt_n = 2**10
    for key, value in (
        ("argon2_memory_kib", 1024),
        ("argon2_time_cost", 1),
        ("argon2_parallelism", 1),
        ("min_pin_length", 4),
    ):
        if hasattr(settings.security, key):
            setattr(settings.security, key, value)
    settings.sync.batch_size = 100
    store = init_store(settings)
    store.setup("sup", "1234", checkpoint_name=name, checkpoint_code=code)
    return store


def pass_gate(store, number: str, name: str, direction: str = "in", temp: float = 36.5):
    gate = GateService(store)
    return gate.commit(
        GateEntry(
            direction=direction,
            id_number=number,
            name=name,
            temperature=temp,
            code_colour="green",
        )
    )


def form_token(html: str, name: str = "csrf") -> str:
    return re.search(rf'name="{name}" value="([^"]+)"', html).group(1)


def console_client(url: str, name: str, page: str = "/console/trace") -> tuple[httpx.Client, str]:
    """A console session over HTTP, logged in as ``name``, and the CSRF token of ``page``."""
    http = httpx.Client(base_url=url)
    login = http.get("/console/login").text
    tok = re.search(r'name="login_csrf" value="([^"]+)"', login)[1]
    r = http.post("/console/login", data={"name": name, "password": PASSWORD, "login_csrf": tok})
    assert r.status_code == 303, r.text
    http.cookies.set("fk_console", r.headers["set-cookie"].split(";")[0].split("=", 1)[1])
    return http, form_token(http.get(page).text)
