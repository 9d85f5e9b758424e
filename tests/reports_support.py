"""Helpers for the report, export and purge tests: a day at the gate, recorded through the real
gate service (and, where a test needs past days, through the store's bulk path with a time)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

from fieldkit.crypto import blind_index
from fieldkit.domain import Decision, Outcome, Reason
from fieldkit.gate import GateEntry, GateService
from fieldkit.store import PassageInput
from tests.conftest import ROOT

# Valid resident ID numbers (GB 11643 check digits).
ID_ZHANG = "11010519491231002X"
ID_LI = "110105199001011232"
ID_WANG = "320102198506150313"
ID_KEY = "440106197803030316"
TOWN_KEY = b"t" * 32


def person(
    direction: str,
    id_number: str | None,
    name: str | None,
    temperature: float | None,
    colour: str | None = "green",
    **kw,
) -> GateEntry:
    return GateEntry(
        direction=direction,
        id_number=id_number,
        name=name,
        temperature=temperature,
        code_colour=colour,
        **kw,
    )


def busy_day(store) -> dict[str, int]:
    """A shift's worth of gate work with one of everything; returns what a person would count."""
    store.secrets.set("town_index_key", TOWN_KEY)
    store.keypersons.apply([{"id_hash": blind_index(TOWN_KEY, ID_KEY), "category": "密接"}])
    gate = GateService(store)
    gate.commit(person("in", ID_ZHANG, "张三", 36.5, phone="13812345678"))
    gate.commit(person("in", ID_LI, "李四", 36.7))
    gate.commit(person("out", ID_ZHANG, "张三", 36.4))  # matches 张三's entry
    gate.commit(person("in", ID_WANG, "王五", 38.2))  # fever → referred
    gate.commit(person("in", None, "赵六", 36.6, colour="yellow"))  # yellow → turned back
    gate.commit(person("in", ID_KEY, "钱七", 36.5))  # key person → referred
    gate.commit(person("out", None, "孙八", 36.5))  # exit without a recorded entry
    gate.commit_vehicle(
        direction="in",
        plate="京A12345",
        kind="resident",
        occupants=[person("in", None, "周九", 36.3)],
        disinfected=True,
    )
    return {
        "total": 8,
        "entries": 3,
        "exits": 2,
        "turned_back": 1,
        "referred": 2,
        "fever": 1,
        "green": 7,
        "yellow": 1,
        "keyperson_hits": 1,
        "vehicles": 1,
    }


def admitted(reason: str = "ok") -> Decision:
    return Decision(Outcome.ADMIT, (Reason(reason, Outcome.ADMIT),))


def passages_at(store, when: datetime, n: int, **kw) -> None:
    """``n`` admitted entries at a given time (the bulk path the importer uses)."""
    store.passages.record_many(
        (PassageInput(direction="in", ts=when + timedelta(seconds=i), **kw), admitted())
        for i in range(n)
    )


def run_cli(
    tmp_path: Path,
    *args: str,
    pin: str | None = None,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """``python -m fieldkit`` from the repository, against a data directory in ``tmp_path``."""
    config = tmp_path / "config.toml"
    if not config.exists():
        config.write_text(
            "[security]\nscrypt_n = 1024\nargon2_memory_kib = 1024\nargon2_time_cost = 1\n"
            "argon2_parallelism = 1\nmin_pin_length = 4\n",
            encoding="utf-8",
        )
    e = {k: v for k, v in os.environ.items() if not k.startswith("FIELDKIT_")}
    e.update(FIELDKIT_HOME=str(tmp_path / "home"), FIELDKIT_CONFIG=str(config), **(env or {}))
    if pin is not None:
        e["FIELDKIT_PIN"] = pin
    return subprocess.run(
        [sys.executable, "-m", "fieldkit", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=e,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
