"""The adaptive-threshold escalation step: real blurred camera frames it reads, what it makes,
and that a frame without a code never pays for it."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from scanners.engines import all_engines
from scanners.pipeline import ADAPTIVE_OFFSETS, Pipeline, _adaptive_binarised

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "qr"
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus absent")


def frame_and_text(corpus: str, name: str) -> tuple[np.ndarray, str]:
    folder = CORPUS / corpus
    entry = next(
        e for e in json.loads((folder / "expected.json").read_text("utf-8")) if e["file"] == name
    )
    return cv2.imread(str(folder / name), cv2.IMREAD_GRAYSCALE), entry["expected"].strip()


def test_adaptive_binarised_gives_one_clean_binary_image_per_offset_at_twice_the_size():
    rng = np.random.default_rng(1)
    crop = rng.integers(60, 200, (50, 70), dtype=np.uint8)
    images = list(_adaptive_binarised(crop))
    assert len(images) == len(ADAPTIVE_OFFSETS)
    for image in images:
        assert image.shape == (100, 140) and image.dtype == np.uint8
        assert set(np.unique(image)) <= {0, 255}


def test_adaptive_step_sits_before_the_grid_fit_and_cnn_and_a_frame_without_code_never_runs_it():
    pipeline = Pipeline(budget_ms=None)
    names = [n for n, _ in pipeline.steps]
    # then the grid fit, then the CNN
    assert names.index("zxing-adaptive") == names.index("zxing-gridfit") - 1
    assert names.index("zxing-gridfit") == names.index("wechat") - 1
    decoded = pipeline.decode(np.full((720, 1280), 90, np.uint8))
    assert decoded.codes == [] and "zxing-adaptive" not in decoded.steps_tried


@needs_corpus
@pytest.mark.parametrize(
    "corpus,name",
    [
        ("camera-b", "NL_2DCode_raw_205-NL-recovery.jpg"),  # nothing else in the pipeline reads it
        ("camera-b", "NL_2DCode_raw_049-NL-test.jpg"),
        ("camera-a", "CY_2DCode_raw_5.jpg"),  # otherwise only the CNN, at ten times the cost
    ],
)
def test_blurred_camera_frames_are_read_by_the_adaptive_step(corpus, name):
    grey, expected = frame_and_text(corpus, name)
    # no engine but the pipeline's reads it on the whole frame
    for engine in all_engines():
        if engine.available and engine.name != "wechat":
            assert all(c.text != expected for c in engine.decode(grey)), engine.name
    decoded = Pipeline(budget_ms=None).decode(grey)
    assert [(c.text, step) for c, step in decoded.codes] == [(expected, "zxing-adaptive")]
