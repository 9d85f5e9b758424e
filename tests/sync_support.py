"""Shared pieces of the sync tests that run a device store against an in-process town."""

from __future__ import annotations

from pathlib import Path

import pytest

from fieldkit.config import load_settings
from fieldkit.domain import Decision, Outcome
from fieldkit.store import PassageInput, init_store
from sync.testing import SyncASGITransport, TestTown, make_repo

ADMIT = Decision(Outcome.ADMIT, ())


def device_store(data_dir: Path, batch_size: int):
    """A set-up device store (fast PIN hashing), its supervisor logged in."""
    settings = load_settings(None, data_dir)
    settings.security.scrypt_n = 2**10
    settings.security.argon2_memory_kib, settings.security.argon2_time_cost = 1024, 1
    settings.security.argon2_parallelism, settings.security.min_pin_length = 1, 4
    settings.sync.batch_size = batch_size
    store = init_store(settings)
    store.setup("sup", "1234", checkpoint_name="East gate", checkpoint_code="CP-E")
    return store


def add_passages(store, n: int) -> None:
    store.passages.record_many(
        (
            PassageInput(
                direction="in",
                id_kind="resident_id",
                id_number="11010519491231002X",
                name="张三",
                temperature=36.5,
                source="cli",
            ),
            ADMIT,
        )
        for _ in range(n)
    )


@pytest.fixture
def sqlite_town(tmp_path):
    """A town server on SQLite, in memory (keys) and in tmp_path (its database)."""
    (tmp_path / "town").mkdir()
    repo = make_repo("sqlite", str(tmp_path / "town"))
    yield TestTown(repo)
    repo.close()


@pytest.fixture
def town_transport(sqlite_town):
    transport = SyncASGITransport(sqlite_town.app)
    yield transport
    transport.shutdown()
