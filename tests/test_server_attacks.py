"""The town server under attack (issue 15), each attack against a real ``fieldkit-server serve``
process on loopback: spoofed floods, decompression bombs, poison records, NaN times, records
under another checkpoint's code. Every loop is bounded and stops by itself."""

from __future__ import annotations

import math
import time
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import zstandard

from sync import protocol as p
from sync.testing import fake_record

from .server_attack_support import RawDevice, Served, init_town, new_token, one_sentence


@pytest.fixture
def town_dir(tmp_path):
    return tmp_path / "town"


def _serve(town_dir, *args, host="127.0.0.1"):
    return Served(town_dir, *args, host=host).wait_ready()


# --- 1. a flood under someone else's device id ------------------------------------------------


def test_spoofed_flood_neither_blocks_the_device_nor_escapes_the_limit(town_dir, capsys):
    init_town(capsys, town_dir)  # default quotas: 20 requests/s, bursts of 60
    server = _serve(town_dir)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            victim = RawDevice(http, new_token(capsys, town_dir, "gate-east"), town_dir)
            # The attacker floods from another loopback address: junk bodies under the victim's
            # id, then under a new made-up id per request (bounded: 300 requests or 6 s).
            attacker = httpx.Client(
                base_url=server.url,
                timeout=10,
                transport=httpx.HTTPTransport(local_address="127.0.0.2"),
            )
            passed = {"victim": 0, "rotating": 0}
            started = time.monotonic()
            for n in range(300):
                who = "victim" if n < 150 else "rotating"
                device = victim.device_id if who == "victim" else uuid.uuid4().hex[:16]
                r = attacker.post(
                    p.PATH_BATCHES,
                    content=b"FKB1" + bytes(200),
                    headers={"X-Fieldkit-Device": device},
                )
                if r.status_code != 429:
                    passed[who] += 1
                if time.monotonic() - started > 6:
                    break
            elapsed = time.monotonic() - started
            attacker.close()
            through = passed["victim"] + passed["rotating"]
            print(f"flooding client got {through} of {n + 1} requests through in {elapsed:.1f} s")
            # The address's quota, whatever device ids it claims: the burst plus the rate.
            assert through <= 60 + 20 * elapsed + 1
            assert passed["rotating"] < 150
            # The real device, whose requests verify, is served throughout.
            for i in range(3):
                r = victim.post(http, victim.seal([fake_record(i, checkpoint="CP-E")]))
                assert r.status_code == 200, r.text
                assert r.json()["counts"]["stored"] == 1
    finally:
        server.stop()


# --- 2. decompression bombs from an enrolled device ------------------------------------------


def _newline_bomb(device: RawDevice) -> bytes:
    """64 MiB of newlines (an older server's plaintext limit) in a few kB of zstd."""
    plain = zstandard.ZstdCompressor(level=3).compress(b"\n" * (64 << 20))
    return device.seal_raw(plain, 2000, compression="zstd")


def _long_line_bomb(device: RawDevice) -> bytes:
    """One record line of 12 MiB in zlib (within a batch's bound, far beyond a record's)."""
    d = zlib.compressobj(9)
    chunk = b"a" * (1 << 20)
    plain = b"".join(d.compress(chunk) for _ in range(12)) + d.flush()
    return device.seal_raw(plain, 1)


def _stream_of_records_bomb(device: RawDevice) -> bytes:
    """2,000 lines of 30 kB each (60 MB), every one the same highly compressible record."""
    line = b'{"id":"x","kind":"passage","hash":"0","body":{"pad":"' + b"b" * 30_000 + b'"}}'
    d = zlib.compressobj(9)
    plain = b"".join(d.compress(line + b"\n") for _ in range(1999)) + d.compress(line) + d.flush()
    return device.seal_raw(plain, 2000)


def test_decompression_bombs_keep_server_memory_bounded(town_dir, capsys, english):
    init_town(capsys, town_dir, {"rate_burst": 500, "rate_per_second": 100.0})
    server = _serve(town_dir)
    try:
        with httpx.Client(base_url=server.url, timeout=120) as http:
            device = RawDevice(http, new_token(capsys, town_dir, "gate-east"), town_dir)
            bombs = [
                _newline_bomb(device),
                _long_line_bomb(device),
                _stream_of_records_bomb(device),
            ]
            print("bomb sizes on the wire:", [len(b) for b in bombs])
            # One of each alone first: a server that holds the expansion fails here already.
            for body in bombs:
                r = device.post(http, body)
                assert r.status_code < 500, r.text
                peak = server.peak_rss_mb()
                assert peak < 300, f"peak server memory {peak:.0f} MB after one bomb"
            # Then 40 at once.
            with ThreadPoolExecutor(40) as pool:
                codes = list(
                    pool.map(
                        lambda i: (
                            device.post(
                                httpx.Client(base_url=server.url, timeout=120), bombs[i % 3]
                            ).status_code
                        ),
                        range(40),
                    )
                )
            peak = server.peak_rss_mb()
            print(
                f"peak server memory under 40 concurrent bombs: {peak:.0f} MB; replies {set(codes)}"
            )
            assert all(c < 500 for c in codes)
            assert peak < 300
            # The refusals are sentences and the server still takes an honest batch.
            r = device.post(http, bombs[0])
            assert r.status_code == 400 and "more than the 2000 records" in one_sentence(r)
            r = device.post(http, bombs[1])
            assert r.status_code == 200
            assert r.json()["fates"][0][2] == p.REJECTED and "limit" in r.json()["fates"][0][3]
            r = device.post(http, device.seal([fake_record(1)]))
            assert r.status_code == 200 and r.json()["counts"]["stored"] == 1
    finally:
        server.stop()


# --- 5. poison input: 4xx with one sentence, a bad record refused alone ----------------------


def test_malformed_enrollment_is_a_4xx_sentence(town_dir, capsys):
    init_town(capsys, town_dir)
    server = _serve(town_dir)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            for body in (
                b'{"token": 5, "public_key": 5, "seal_to": null}',
                b'{"token": "X.Y", "public_key": ["a"], "seal_to": {}}',
                b'{"token": "X.Y"}',
                b"[" * 30_000 + b"]" * 30_000,
                b'{"token": ' + b"[" * 30_000 + b"]" * 30_000 + b"}",
                b"\xff\xfe not json",
            ):
                r = http.post(p.PATH_ENROLL, content=body)
                assert 400 <= r.status_code < 500, (body[:40], r.status_code, r.text)
                one_sentence(r)
    finally:
        server.stop()


def test_poison_record_and_cursor_are_refused_alone(town_dir, capsys, english):
    init_town(capsys, town_dir)
    server = _serve(town_dir)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            device = RawDevice(http, new_token(capsys, town_dir, "gate-east"), town_dir)
            deep = fake_record(1)
            deep["body"]["nested"] = "@@"
            good = [fake_record(i) for i in range(3)]
            lines = p.encode_records(good[:1] + [deep] + good[1:])
            lines[1] = lines[1].replace(b'"@@"', b"[" * 30_000 + b"]" * 30_000)
            batch = device.seal_raw(zlib.compress(b"\n".join(lines)), len(lines))
            for _ in range(2):  # sent again: the same answer, never a poison batch
                r = device.post(http, batch)
                assert r.status_code == 200, r.text
                reply = r.json()
                assert reply["counts"]["rejected"] == 1 and reply["counts"]["stored"] == 3
                [fate] = reply["fates"]
                assert fate[0] == 1 and fate[2] == p.REJECTED and "nested" in fate[3]
            for cursor in (str(10**30), "-1", "abc", "1e9", "9" * 400):
                r = device.get_updates(http, f"cursor={cursor}")
                assert r.status_code == 400, (cursor, r.status_code, r.text)
                assert "cursor" in one_sentence(r)
            r = device.get_updates(http, "cursor=0")
            assert r.status_code == 200
    finally:
        server.stop()


# --- 6. values the server should not take --------------------------------------------------------


def test_nan_and_out_of_range_times_are_refused(town_dir, capsys):
    init_town(capsys, town_dir)
    server = _serve(town_dir)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            device = RawDevice(http, new_token(capsys, town_dir, "gate-east"), town_dir)
            for when in (math.nan, math.inf, -math.inf):
                plain = zlib.compress(p.canonical_json(fake_record(1)))
                r = device.post(http, device.seal_raw(plain, 1, created_at=when))
                assert r.status_code == 400, r.text
                one_sentence(r)
            for ts in ("NaN", "nan", "inf", "-Infinity"):
                r = device.get_updates(http, "cursor=0", ts=ts)
                assert r.status_code == 401, (ts, r.text)
                one_sentence(r)
            records = [
                fake_record(1),
                fake_record(2, day="2199-01-01"),
                fake_record(3, day="1970-01-02"),
                fake_record(4),
            ]
            r = device.post(http, device.seal(records))
            assert r.status_code == 200
            fates = {f[0]: f[3] for f in r.json()["fates"]}
            assert set(fates) == {1, 2} and all("out of range" in v for v in fates.values())
            assert r.json()["counts"]["stored"] == 2
    finally:
        server.stop()


def test_device_writes_only_for_its_enrolled_checkpoints(town_dir, capsys):
    init_town(capsys, town_dir)
    server = _serve(town_dir)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            token = new_token(capsys, town_dir, "gate-east", "--checkpoint", "CP-E")
            device = RawDevice(http, token, town_dir)
            records = [
                fake_record(1, checkpoint="CP-E"),
                fake_record(2, checkpoint="CP-W"),
                fake_record(3, checkpoint="CP-E"),
            ]
            r = device.post(http, device.seal(records))
            assert r.status_code == 200
            [fate] = r.json()["fates"]
            assert fate[0] == 1 and fate[2] == p.REJECTED
            assert "CP-E" in fate[3] and "CP-W" in fate[3]
            assert r.json()["counts"]["stored"] == 2
    finally:
        server.stop()


# --- the streaming reader itself ---------------------------------------------------------------


@pytest.mark.parametrize("compression", ["zstd", "zlib"])
def test_streamed_lines_are_the_split_lines_with_oversize_marked(compression):
    import random

    rnd = random.Random(15)
    sizes = [0, 1, 5, 100, 65_535, 65_536, 65_537, 70_000, 200_000]
    for _ in range(60):  # lines across chunk boundaries, at and around the per-line bound
        plain = b"\n".join(b"x" * rnd.choice(sizes) for _ in range(rnd.randint(1, 6)))
        if not plain:
            continue  # no plaintext is no line (a batch of zero records)
        data = p.compress(plain, compression)
        want = [
            line if len(line) <= 65_536 else p.OversizedLine(len(line))
            for line in plain.split(b"\n")
        ]
        got = p.iter_batch_lines(data, compression, max_total=10**8, max_line=65_536, max_lines=6)
        assert list(got) == want
        with pytest.raises(p.ProtocolError):
            short = len(want) - 1
            list(
                p.iter_batch_lines(
                    data, compression, max_total=10**8, max_line=65_536, max_lines=short
                )
            )
        with pytest.raises(p.ProtocolError):
            list(
                p.iter_batch_lines(
                    data, compression, max_total=len(plain) - 1, max_line=65_536, max_lines=6
                )
            )
