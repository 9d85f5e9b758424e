"""The WeChat CNN engine: shipped models checked by sha256, its availability paths, and what it
reads that the other engines do not."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import cv2
import numpy as np
import segno

from scanners.engines import (
    MODEL_DIR,
    WECHAT_MODELS,
    WeChatEngine,
    all_engines,
    check_wechat_models,
    make_engine,
)

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "qr"


def qr_image(data: str, scale: int = 6) -> np.ndarray:
    buf = io.BytesIO()
    segno.make_qr(data).save(buf, kind="png", scale=scale, border=4)
    return cv2.imdecode(np.frombuffer(buf.getvalue(), np.uint8), cv2.IMREAD_GRAYSCALE)


def test_models_ship_with_licence_and_source():
    for name in WECHAT_MODELS:
        assert (MODEL_DIR / name).is_file(), name
    assert "Apache License" in (MODEL_DIR / "LICENSE").read_text(encoding="utf-8")
    readme = (MODEL_DIR / "README.md").read_text(encoding="utf-8")
    for name, digest in WECHAT_MODELS.items():
        assert name in readme and digest in readme
    assert check_wechat_models() is None


def test_engine_available_with_shipped_models_and_reads_a_code():
    engine = make_engine("wechat")
    assert engine.available, engine.why_unavailable
    assert "wechat" in [e.name for e in all_engines()]
    found = engine.decode(qr_image("FieldKit 卡口 test"))
    assert [c.text for c in found] == ["FieldKit 卡口 test"]
    assert found[0].engine == "wechat" and len(found[0].corners) == 4


def test_missing_model_makes_engine_unavailable_with_reason(tmp_path):
    for name in WECHAT_MODELS:
        shutil.copy(MODEL_DIR / name, tmp_path / name)
    (tmp_path / "sr.caffemodel").unlink()
    engine = WeChatEngine(tmp_path)
    assert not engine.available
    assert engine.status().startswith("unavailable: model file")
    assert "sr.caffemodel" in engine.status() and "missing" in engine.status()
    assert engine.decode(qr_image("x")) == []


def test_altered_model_makes_engine_unavailable_with_reason(tmp_path):
    for name in WECHAT_MODELS:
        shutil.copy(MODEL_DIR / name, tmp_path / name)
    data = bytearray((tmp_path / "detect.caffemodel").read_bytes())
    data[1000] ^= 0xFF
    (tmp_path / "detect.caffemodel").write_bytes(bytes(data))
    engine = WeChatEngine(tmp_path)
    assert not engine.available
    assert "detect.caffemodel" in engine.status() and "altered" in engine.status()


def test_copied_models_load_from_another_folder(tmp_path):
    for name in WECHAT_MODELS:
        shutil.copy(MODEL_DIR / name, tmp_path / name)
    engine = WeChatEngine(tmp_path)
    assert engine.available
    assert engine.decode(qr_image("HELLO"))[0].text == "HELLO"


def test_non_utf8_payload_does_not_raise():
    payload = bytes(range(0x80, 0x100, 5))
    buf = io.BytesIO()
    segno.make_qr(payload).save(buf, kind="png", scale=6, border=4)
    image = cv2.imdecode(np.frombuffer(buf.getvalue(), np.uint8), cv2.IMREAD_GRAYSCALE)
    engine = make_engine("wechat")
    found = engine.decode(image)  # OpenCV's binding cannot return these bytes: no read, no raise
    assert all(c.raw for c in found)


def test_text_only_binding_loses_gbk_without_raising_and_says_so():
    engine = make_engine("wechat")
    assert engine.bytes_api is False  # the pipeline's other engines read these payloads
    buf = io.BytesIO()
    segno.make_qr("中文健康码 通行证".encode("gbk")).save(buf, kind="png", scale=6, border=4)
    image = cv2.imdecode(np.frombuffer(buf.getvalue(), np.uint8), cv2.IMREAD_GRAYSCALE)
    assert engine.decode(image) == []
    assert engine.errors == 1 and "UnicodeDecodeError" in engine.last_error


def test_wechat_is_the_last_escalation_step_on_the_whole_frame_only_after_the_gate():
    from scanners.pipeline import Pipeline, Region

    pipeline = Pipeline(budget_ms=None)
    assert pipeline.steps[-1][0] == "wechat" and "wechat" in pipeline.frame_steps
    grey = np.zeros((720, 1280), np.uint8)
    region = Region(100, 100, 200, 200, 1.0)
    assert pipeline.targets("wechat", grey, []) == []  # no code-like region: no CNN cost
    whole = pipeline.targets("wechat", grey, [region, region])
    assert [(r.x, r.y, r.w, r.h) for r in whole] == [(0, 0, 1280, 720)]
    assert pipeline.targets("pyzbar", grey, [region]) == [region]


def test_frame_without_code_never_reaches_the_cnn():
    from scanners.pipeline import Pipeline

    frame = np.full((720, 1280), 90, np.uint8)
    decoded = Pipeline(budget_ms=None).decode(frame)
    assert decoded.codes == [] and "wechat" not in decoded.steps_tried


def test_ladder_keeps_only_steps_that_add_reads_on_two_corpora_and_bench_sees_the_rest():
    from scanners.pipeline import Pipeline

    kept = [n for n, _ in Pipeline().steps]
    assert kept == [
        "zxing-up2-sharp",
        "pyzbar",
        "zxing-up3-sharp",
        "zxing-adaptive",
        "zxing-gridfit",
        "wechat",
    ]
    every = [n for n, _ in Pipeline(candidates=True).steps]
    assert every[: len(kept)] == kept
    assert set(every) - set(kept) == {
        "zxing-up2-sharp-fixed",
        "zxing-up2-normalised",
        "pyzbar-up2-sharp",
        "opencv-aruco",
        "opencv",
    }
