"""Two writers and a sync on one store (issue 14, item 10): nothing is lost, and a write that
cannot get the store is refused with one clear line."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from fieldkit.domain import Decision, Outcome
from fieldkit.store import PassageInput, open_store
from fieldkit.store import db as store_db
from sync import client as sc
from sync.testing import SyncASGITransport, TestTown

from .sync_support import device_store

ADMIT = Decision(Outcome.ADMIT, ())
PER_WRITER = 160


def _writer(settings, n: int, tag: str, errors: list[str]) -> None:
    s = open_store(settings)  # its own connection, as a second program would have
    s.unlock("sup", "1234")
    try:
        for i in range(n):
            direction = "in" if i % 2 == 0 else "out"
            s.passages.record(
                PassageInput(
                    direction=direction,
                    id_kind="resident_id",
                    id_number="11010519491231002X",
                    name=f"{tag}{i}",
                    source="cli",
                ),
                ADMIT,
            )
    except Exception as exc:  # noqa: BLE001 - the test counts every failure
        errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        s.close()


def test_two_writers_and_a_sync_lose_nothing(tmp_path, sqlite_repo):
    device = device_store(tmp_path / "device", 40)
    town = TestTown(sqlite_repo)
    transport = SyncASGITransport(town.app)
    sc.enroll(device, "http://town", town.new_token("gate-east"), transport=transport)
    errors: list[str] = []
    writers = [
        threading.Thread(target=_writer, args=(device.settings, PER_WRITER, tag, errors))
        for tag in ("a", "b")
    ]
    for w in writers:
        w.start()
    reports = []
    while any(w.is_alive() for w in writers):
        reports.append(sc.run_sync(device, device.settings, transport=transport, operator="sup"))
    for w in writers:
        w.join()
    reports.append(sc.run_sync(device, device.settings, transport=transport, operator="sup"))
    assert errors == []
    assert [r.error for r in reports if not r.ok] == []
    assert device.g.scalar("SELECT count(*) FROM passages") == 2 * PER_WRITER
    assert sqlite_repo.record_count() == 2 * PER_WRITER
    assert device.outbox.counts()["pending"] == 0
    assert device.audit.verify()[1] is None
    transport.shutdown()
    device.close()


def test_a_store_held_by_another_program_is_refused_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(store_db, "BUSY_WAIT_S", 0.3)
    device = device_store(tmp_path / "device", 40)
    holder = sqlite3.connect(str(device.path), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another program keeps the write lock
    try:
        with pytest.raises(store_db.StoreBusyError) as err:
            device.passages.record(
                PassageInput(direction="in", id_kind="other", name="张三"), ADMIT
            )
        for lang in ("zh", "en"):
            text = err.value.render(lang)
            assert "\n" not in text and "locked" not in text.lower()
        assert "try again" in err.value.render("en")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    # Nothing was half-written, and the store works again at once.
    assert device.g.scalar("SELECT count(*) FROM passages") == 0
    device.passages.record(PassageInput(direction="in", id_kind="other", name="张三"), ADMIT)
    assert device.g.scalar("SELECT count(*) FROM passages") == 1
    device.close()
