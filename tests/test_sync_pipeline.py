"""The upload pipeline: two batches in flight once the server has answered, ledger edits never
beside each other, and a failure among batches in flight loses and doubles nothing."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from sync import client as sc
from sync import protocol as p
from sync.testing import SyncASGITransport
from tests.sync_support import add_passages, device_store, sqlite_town, town_transport

__all__ = ["sqlite_town", "town_transport"]  # fixtures used here


class Watching(httpx.BaseTransport):
    """The in-process server, slowed a little per batch, noting what was in flight together
    and failing the batch requests it is told to."""

    def __init__(self, inner: SyncASGITransport, delay: float = 0.05) -> None:
        self.inner, self.delay = inner, delay
        self.lock = threading.Lock()
        self.now: list[list[str]] = []  # kinds of each batch being handled right now
        self.together: list[list[list[str]]] = []  # snapshots when a batch arrives
        self.fail_on: set[int] = set()  # batch request numbers (from 1) answered with a 500
        self.count = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not request.url.path.endswith("/batches"):
            return self.inner.handle_request(request)
        kinds = sorted(set(batch_kinds(request.read())))
        with self.lock:
            self.count += 1
            number = self.count
            self.now.append(kinds)
            self.together.append([list(k) for k in self.now])
        try:
            time.sleep(self.delay)
            if number in self.fail_on:
                return httpx.Response(500, text="Internal Server Error")
            return self.inner.handle_request(request)
        finally:
            with self.lock:
                self.now.remove(kinds)


KEYS: dict[str, object] = {}


def batch_kinds(body: bytes) -> list[str]:
    header, header_bytes, ciphertext, _ = p.read_batch_header(body)
    opened = p.open_batch(header, header_bytes, ciphertext, KEYS["x25519"], 10**8)
    return [p.loads(line)["kind"] for line in opened.lines]


@pytest.fixture
def town(sqlite_town):
    KEYS["x25519"] = sqlite_town.keys.x25519
    return sqlite_town


@pytest.fixture
def inner(town, town_transport):
    return town_transport


@pytest.fixture
def store(tmp_path, town, inner):
    s = device_store(tmp_path / "device", batch_size=10)
    sc.enroll(s, "http://town", town.new_token("gate-east"), transport=inner)
    yield s
    s.close()


def on_server(town) -> int:
    return town.repo.record_count()


def test_two_batches_fly_together_after_the_first_answer(store, town, inner):
    add_passages(store, 60)
    watch = Watching(inner)
    report = sc.run_sync(store, store.settings, transport=watch, download=False)
    assert report.ok and report.stored == 60 and report.batches == 6
    widths = [len(snapshot) for snapshot in watch.together]
    assert widths[0] == 1  # the first batch goes alone: the server has not answered yet
    assert max(widths) == 2 and max(widths) <= sc._Pipeline.DEPTH
    assert on_server(town) == 60 and store.outbox.counts()["pending"] == 0


def test_ledger_edits_never_fly_beside_each_other(store, town, inner):
    for k in range(25):  # 25 households, each one ledger edit: three batches of them
        store.ledger.save_household(
            {"community": "幸福社区", "building": f"{k}栋", "unit": "1单元", "room": "101"},
            source="import",
        )
    add_passages(store, 30)
    watch = Watching(inner)
    report = sc.run_sync(store, store.settings, transport=watch, download=False)
    assert report.ok, report.error
    assert store.outbox.counts()["pending"] == 0
    ledger_batches = [s for s in watch.together if "ledger_edit" in s[-1]]
    assert len(ledger_batches) >= 3
    for snapshot in ledger_batches:
        assert snapshot == [snapshot[-1]], snapshot  # alone in flight when it arrived
    assert on_server(town) == store.outbox.counts()["synced"]


def test_a_failure_beside_a_batch_in_flight_loses_and_doubles_nothing(store, town, inner):
    add_passages(store, 60)
    watch = Watching(inner)
    # Request 1 succeeds (two may now fly), then request 3 fails three times running (its
    # retries are requests 4 and 5 or later ones, depending on which finishes first).
    watch.fail_on = {3, 4, 5, 6, 7}
    report = sc.run_sync(
        store, store.settings, transport=watch, sleep=lambda s: None, download=False
    )
    assert not report.ok and "HTTP 500" in report.error
    counts = store.outbox.counts()
    assert counts["synced"] == on_server(town) == report.stored
    assert counts["synced"] + counts["pending"] == 60 and counts["quarantined"] == 0
    watch.fail_on = set()
    again = sc.run_sync(store, store.settings, transport=watch, download=False)
    assert again.ok and again.duplicate == 0
    assert on_server(town) == 60 and store.outbox.counts()["pending"] == 0
    assert town.repo.record_hashes() == store.outbox.content_hashes()
