"""Shared fixtures: a fresh store per test (real SQLite file in tmp_path), fast PIN hashing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import fieldkit.ledger  # noqa: F401  (plugs the household ledger into every store)
from fieldkit.config import Settings
from fieldkit.store import Store, open_store

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus"
FIELDKIT = Path(sys.executable).parent / "fieldkit"
SUPERVISOR, SUPERVISOR_PIN = "王芳", "2468"


def make_settings(data_dir: Path) -> Settings:
    settings = Settings()
    settings.data_dir = data_dir
    settings.security.scrypt_n = 1024  # fast PINs in tests; the default is 2**15
    settings.security.argon2_memory_kib, settings.security.argon2_time_cost = 1024, 1
    settings.security.argon2_parallelism, settings.security.min_pin_length = 1, 4
    return settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


@pytest.fixture
def store(settings: Settings) -> Store:
    """A new store, set up and unlocked as the supervisor."""
    s = open_store(settings, create=True)
    s.setup(SUPERVISOR, SUPERVISOR_PIN, checkpoint_name="东门卡口", checkpoint_code="CP-0101")
    yield s
    s.close()


class Cli:
    """Runs the real ``fieldkit`` console script against one data directory."""

    def __init__(self, tmp_path: Path) -> None:
        self.home = tmp_path / "home"
        self.config = tmp_path / "config.toml"
        self.config.write_text(
            "[security]\nscrypt_n = 1024\nargon2_memory_kib = 1024\nargon2_time_cost = 1\n"
            "argon2_parallelism = 1\nmin_pin_length = 4\n",
            encoding="utf-8",
        )
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDKIT_")}
        self.env.update(FIELDKIT_HOME=str(self.home), FIELDKIT_CONFIG=str(self.config))
        # These tests read the English messages; FIELDKIT_LANG="" gives the default (Chinese).
        self.env["FIELDKIT_LANG"] = "en"

    def run(
        self,
        *args: str,
        pin: str | None = None,
        stdin: str | None = None,
        env: dict[str, str] | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess:
        e = dict(self.env, **(env or {}))
        if pin is not None:
            e["FIELDKIT_PIN"] = pin
        proc = subprocess.run(
            [str(FIELDKIT), *args], input=stdin, capture_output=True, text=True, env=e, timeout=120
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"fieldkit {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def json(self, *args: str, **kw) -> object:
        return json.loads(self.run(*args, "--json", **kw).stdout)

    def init(self) -> dict:
        return self.json(
            "init",
            "--checkpoint-name",
            "东门卡口",
            "--checkpoint-code",
            "CP-0101",
            "--supervisor",
            SUPERVISOR,
            pin=SUPERVISOR_PIN,
        )


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


@pytest.fixture(autouse=True)
def _language_reset():
    """Each test starts in the default language (Chinese) unless it asks for another."""
    from fieldkit.i18n import set_language

    set_language(None)
    yield
    set_language(None)


@pytest.fixture
def english(monkeypatch):
    """For tests that read the messages in English (``pytestmark`` in their module): the
    process language, and FIELDKIT_LANG for command lines run in-process."""
    from fieldkit.i18n import set_language

    monkeypatch.setenv("FIELDKIT_LANG", "en")
    set_language("en")
    yield
    set_language(None)


# -- town server repositories (sync tests): the same tests run on SQLite and PostgreSQL ----------


def require_pg() -> None:
    """Skip when PostgreSQL is unavailable; fail instead when CI requires it
    (``FIELDKIT_REQUIRE_PG=1``)."""
    from sync.testing import pg_available

    why = pg_available()
    if why:
        if os.environ.get("FIELDKIT_REQUIRE_PG") == "1":
            pytest.fail(f"PostgreSQL required (FIELDKIT_REQUIRE_PG=1) but unavailable: {why}")
        pytest.skip(f"PostgreSQL unavailable: {why}")


@pytest.fixture(params=["sqlite", "postgresql"])
def repo(request, tmp_path: Path):
    """A fresh, empty town repository: an SQLite file, or a new PostgreSQL schema."""
    from sync.testing import drop_repo, make_repo

    if request.param == "postgresql":
        require_pg()
    (tmp_path / "town").mkdir(exist_ok=True)
    r = make_repo(request.param, str(tmp_path / "town"))
    yield r
    drop_repo(r)


@pytest.fixture
def sqlite_repo(tmp_path: Path):
    """A fresh town repository in an SQLite file (tests that need one backend only)."""
    from sync.testing import drop_repo, make_repo

    (tmp_path / "town").mkdir(exist_ok=True)
    r = make_repo("sqlite", str(tmp_path / "town"))
    yield r
    drop_repo(r)
