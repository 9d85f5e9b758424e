"""QR engines and the pipeline on real corpus images and generated codes (no mocks)."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import segno

from scanners.engines import ZBAR_MISSING, all_engines, decode_payload_bytes, make_engine
from scanners.pipeline import LatestFrameScanner, Pipeline, find_code_regions, to_grey

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "qr"
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus absent")


def qr_image(data: bytes | str, scale: int = 6, border: int = 4) -> np.ndarray:
    buf = io.BytesIO()
    segno.make_qr(data).save(buf, kind="png", scale=scale, border=border)
    return cv2.imdecode(np.frombuffer(buf.getvalue(), np.uint8), cv2.IMREAD_GRAYSCALE)


def camera_cases(name: str) -> list[tuple[Path, str]]:
    folder = CORPUS / name
    return [
        (folder / e["file"], e["expected"])
        for e in json.loads((folder / "expected.json").read_text(encoding="utf-8"))
    ]


def test_every_engine_reports_availability():
    for engine in all_engines():
        assert isinstance(engine.available, bool)
        if engine.available:
            assert engine.status() == "available"
        else:
            assert engine.why_unavailable and engine.status().startswith("unavailable")
    assert "sudo apt-get install libzbar0" in ZBAR_MISSING


def test_unknown_engine_name_is_refused():
    with pytest.raises(ValueError, match="unknown engine"):
        make_engine("nope")


@pytest.mark.parametrize(
    "payload, encoding",
    [
        ("中文健康码 通行证".encode("gbk"), "gbk"),
        ("日本語のテキスト、カタカナ".encode("shift_jis"), "shift_jis"),
        ("Grüße aus Köln".encode(), "utf-8"),
    ],
)
def test_non_utf8_payloads_decoded_by_every_engine(payload, encoding):
    image = qr_image(payload)
    for engine in all_engines():
        if not engine.available or not engine.bytes_api:  # wechat: tests/test_scan_wechat.py
            continue
        found = engine.decode(image)
        assert found, engine.name
        assert found[0].text == payload.decode(encoding), engine.name


def test_binary_payload_kept_as_bytes():
    payload = bytes(range(0, 256, 3))
    for engine in all_engines():
        if engine.available and engine.bytes_api:  # wechat: tests/test_scan_wechat.py
            found = engine.decode(qr_image(payload))
            assert found and found[0].text is None and found[0].raw, engine.name
    assert make_engine("zxing-cpp").decode(qr_image(payload))[0].raw == payload


def test_decode_payload_bytes_rules():
    assert decode_payload_bytes(b"\xef\xbb\xbfhello") == ("hello", "utf-8")
    assert decode_payload_bytes(b"\x00\x01\x02") == (None, "binary")
    assert decode_payload_bytes("中文".encode("gbk")) == ("中文", "gbk")


def test_engines_never_raise_on_odd_images():
    odd = [
        np.zeros((1, 1), np.uint8),
        np.zeros((3, 500), np.uint8),
        np.random.default_rng(1).integers(0, 255, (64, 64), dtype=np.uint8),
    ]
    for engine in all_engines():
        for image in odd:
            # No code in these: each engine answers with an empty list (never raises, never
            # invents a reading).
            assert engine.decode(image) == [], (engine.name, image.shape)


@needs_corpus
def test_pipeline_reads_zxing_corpus_images():
    pipeline = Pipeline(dedupe_seconds=0)
    for path in sorted((CORPUS / "zxing" / "qrcode-1").glob("*.png"))[:8]:
        expected = (
            path.with_suffix(".txt").read_text(encoding="utf-8").replace("\r\n", "\n").strip()
        )
        frame = pipeline.decode(cv2.imread(str(path)))
        texts = [(c.text or "").replace("\r\n", "\n").strip() for c, _ in frame.codes]
        if expected in texts:
            continue
        pytest.fail(f"{path.name}: expected {expected!r}, got {texts!r}")


@needs_corpus
def test_pipeline_reads_camera_frames_and_parses_dcc():
    pipeline = Pipeline(dedupe_seconds=0)
    for path, expected in camera_cases("camera-a")[:5]:
        reads = pipeline.process(cv2.imread(str(path)))
        assert [r.text for r in reads] == [expected]
        read = reads[0]
        assert read.kind == "dcc" and read.engine == "zxing-cpp" and read.step == "fast"
        assert read.result.parsed["certificate"]  # decoded even without a trust list
        assert read.result.problem  # not verified: no trust list given


@needs_corpus
def test_escalation_reads_a_hard_camera_frame_fast_path_misses():
    zxing = make_engine("zxing-cpp")
    pipeline = Pipeline(dedupe_seconds=0, budget_ms=5000)
    for path, expected in camera_cases("camera-b"):
        grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if zxing.decode(grey):
            continue
        frame = pipeline.decode(grey)
        if any(c.text == expected for c, _ in frame.codes):
            assert frame.codes[0][1] != "fast"
            return
    pytest.fail("no camera-b frame was read by escalation")


def test_all_codes_in_a_frame_are_returned():
    a, b = qr_image("first code"), qr_image("second code")
    canvas = np.full(
        (max(a.shape[0], b.shape[0]) + 40, a.shape[1] + b.shape[1] + 60), 255, np.uint8
    )
    canvas[20 : 20 + a.shape[0], 20 : 20 + a.shape[1]] = a
    canvas[20 : 20 + b.shape[0], 40 + a.shape[1] : 40 + a.shape[1] + b.shape[1]] = b
    texts = {c.text for c, _ in Pipeline(dedupe_seconds=0).decode(canvas).codes}
    assert texts == {"first code", "second code"}


def test_dark_mode_inverted_code_is_read():
    frame = 255 - qr_image("dark mode phone")
    assert [c.text for c, _ in Pipeline(dedupe_seconds=0).decode(frame).codes] == [
        "dark mode phone"
    ]


def test_same_payload_dropped_within_dedupe_window():
    now = [100.0]
    pipeline = Pipeline(dedupe_seconds=3.0, clock=lambda: now[0])
    frame = cv2.cvtColor(qr_image("11010519491231002X"), cv2.COLOR_GRAY2BGR)
    first = pipeline.process(frame)
    assert len(first) == 1 and first[0].kind == "resident_id" and first[0].result.ok
    now[0] += 1.0
    assert pipeline.process(frame) == []
    now[0] += 10.0
    assert len(pipeline.process(frame)) == 1


def test_frame_without_code_gives_nothing_and_no_escalation():
    rng = np.random.default_rng(0)
    frame = cv2.GaussianBlur(
        rng.normal(90, 4, (720, 1280)).clip(0, 255).astype(np.uint8), (0, 0), 3
    )
    result = Pipeline().decode(frame)
    assert result.codes == [] and result.steps_tried == ["fast"]
    assert find_code_regions(frame) == []


def test_to_grey_accepts_any_frame_layout():
    for frame in (
        np.zeros((10, 10), np.uint8),
        np.zeros((10, 10, 3), np.uint8),
        np.zeros((10, 10, 4), np.uint8),
        np.zeros((10, 10), np.uint16),
    ):
        grey = to_grey(frame)
        assert grey.shape == (10, 10) and grey.dtype == np.uint8


def test_latest_frame_scanner_skips_frames_when_behind():
    reads = []
    pipeline = Pipeline(dedupe_seconds=0)
    slow_decode = pipeline.decode

    def decode(frame):
        time.sleep(0.05)  # a slow device
        return slow_decode(frame)

    pipeline.decode = decode
    scanner = LatestFrameScanner(pipeline, reads.extend)
    frame = qr_image("latest")
    for _ in range(20):
        scanner.submit(frame)
        time.sleep(0.005)
    deadline = time.monotonic() + 5
    while scanner.decoded + scanner.skipped < 20 and time.monotonic() < deadline:
        time.sleep(0.02)
    scanner.close()
    assert scanner.skipped > 0
    assert scanner.decoded + scanner.skipped == 20
    assert reads and reads[0].text == "latest"
