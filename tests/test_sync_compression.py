"""Batch compression: zstd when both sides read it, zlib from (and for) older peers, and no
decompression bomb either way."""

from __future__ import annotations

import zlib

import httpx
import pytest
import zstandard

from sync import client as sc
from sync import protocol as p
from sync.testing import fake_record
from tests.sync_support import add_passages, device_store, sqlite_town, town_transport

__all__ = ["sqlite_town", "town_transport"]  # fixtures used here


@pytest.fixture
def town(sqlite_town):
    return sqlite_town


@pytest.fixture
def transport(town_transport):
    return town_transport


@pytest.fixture
def http(transport):
    with httpx.Client(transport=transport, base_url="http://town") as client:
        yield client


@pytest.fixture
def store(tmp_path):
    s = device_store(tmp_path / "device", batch_size=25)
    yield s
    s.close()


def post(http, device_id, body):
    return http.post(p.PATH_BATCHES, content=body, headers={"X-Fieldkit-Device": device_id})


def sealed_header(body: bytes) -> p.BatchHeader:
    return p.read_batch_header(body)[0]


def test_both_compressions_are_read_and_zstd_is_smaller(town, http):
    device_id, key = town.enroll_raw(http, "gate-1")
    sizes = {}
    for name in ("zlib", "zstd"):
        batch = [fake_record(i) for i in range(200)]
        _, body = town.seal(device_id, key, batch, compression=name)
        assert sealed_header(body).compression == name
        reply = post(http, device_id, body).json()
        assert reply["counts"]["stored"] == 200, reply
        sizes[name] = len(body)
    assert sizes["zstd"] < sizes["zlib"]
    assert town.repo.record_count() == 400


def test_a_zstd_bomb_is_refused_without_expanding_it(town):
    limit = town.settings.max_plain_bytes
    # A frame that states its own (huge) size: a one-shot decompression would allocate it.
    bomb = zstandard.ZstdCompressor(level=1).compress(b"\n" * (limit * 4))
    assert len(bomb) < limit // 100
    with pytest.raises(p.ProtocolError) as err:
        p.decompress(bomb, "zstd", limit)
    assert err.value.code == "batch_too_large"
    with pytest.raises(p.ProtocolError) as err:
        p.decompress(zlib.compress(b"\n" * (limit * 4)), "zlib", limit)
    assert err.value.code == "batch_too_large"
    with pytest.raises(p.ProtocolError) as err:
        p.decompress(b"not zstd at all", "zstd", limit)
    assert err.value.code == "bad_envelope"
    assert p.decompress(p.compress(b"a\nb", "zstd"), "zstd", limit) == b"a\nb"


def test_an_unknown_compression_is_refused_with_a_clear_reason(town, http, english):
    device_id, key = town.enroll_raw(http, "gate-1")
    _, body = town.seal(device_id, key, [fake_record(1)])
    header_len = int.from_bytes(body[4:8], "big")
    header = body[8 : 8 + header_len].replace(b'"zlib"', b'"brotli"')
    forged = body[:4] + len(header).to_bytes(4, "big") + header + body[8 + header_len : -64]
    forged += key.sign(forged)
    r = post(http, device_id, forged)
    assert r.status_code == 400 and r.json()["error"] == "unsupported_compression"
    assert "brotli" in r.json()["message"] and "zlib" in r.json()["message"]
    assert town.repo.record_count() == 0


def test_a_device_uses_what_the_server_offers(store, town, transport):
    sc.enroll(store, "http://town", town.new_token("gate-east"), transport=transport)
    assert store.kv.get("sync.compression") == "zstd"
    # A device enrolled before zstd existed keeps zlib until the server's next update says more.
    store.kv.set("sync.compression", "zlib")
    sent = []
    real_seal = p.seal_batch

    def spy(*a, **kw):
        sent.append(kw.get("compression"))
        return real_seal(*a, **kw)

    add_passages(store, 30)
    try:
        p.seal_batch = spy
        first = sc.run_sync(store, store.settings, transport=transport)
        add_passages(store, 30)
        second = sc.run_sync(store, store.settings, transport=transport)
    finally:
        p.seal_batch = real_seal
    assert first.ok and second.ok and first.stored == second.stored == 30
    assert sent == ["zlib", "zlib", "zstd", "zstd"]
    assert town.repo.record_count() == 60


def test_a_server_that_stopped_reading_zstd_gets_zlib_and_nothing_is_lost(
    store, town, transport, monkeypatch
):
    sc.enroll(store, "http://town", town.new_token("gate-east"), transport=transport)
    add_passages(store, 60)
    # The town server was reinstalled without zstandard: it reads zlib only, and says so.
    monkeypatch.setattr(p, "COMPRESSIONS", ("zlib",))
    monkeypatch.setattr(
        p,
        "choose_compression",
        lambda offered: offered[0] if offered and offered[0] in ("zstd", "zlib") else "zlib",
    )
    report = sc.run_sync(store, store.settings, transport=transport)
    assert report.ok, report.error
    assert report.stored == 60 and store.outbox.counts()["pending"] == 0
    assert store.kv.get("sync.compression") == "zlib"
    assert town.repo.record_count() == 60
