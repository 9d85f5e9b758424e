"""The grid-fitting step (scanners/gridfit.py): small, blurred codes no engine reads, a code
printed on cloth, a synthetic low-resolution rendering, and junk that must read as nothing."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import segno
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from scanners import gridfit
from scanners.engines import all_engines
from scanners.pipeline import Pipeline

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "qr"
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus absent")


def step(pipeline: Pipeline):
    return dict(pipeline.steps)["zxing-gridfit"]


def read_texts(pipeline: Pipeline, grey: np.ndarray) -> list[str | None]:
    """What the grid-fitting step reads in the pipeline's candidate regions."""
    texts = []
    for region in pipeline.candidate_regions(grey):
        texts += [c.text for c in step(pipeline)(region.crop(grey)[0])]
    return texts


def camera_frame(version: int, px: float, blur: float, text: str) -> np.ndarray:
    """A 640×480 camera-like frame: the code at ``px`` pixels per module, turned 17°, tilted,
    Gaussian blur ``blur`` px, sensor noise, JPEG quality 60."""
    matrix = np.array(segno.make_qr(text, version=version, error="q").matrix, bool)
    n = matrix.shape[0]
    printed = np.pad(np.where(matrix, 30, 220).astype(np.uint8), 2, constant_values=220)
    big = np.kron(printed, np.ones((8, 8), np.uint8))
    size = big.shape[0]
    side = (n + 4) * px
    corners = np.float32([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * side / 2
    corners[:2] *= 0.85  # the top edge further away
    angle = np.deg2rad(17)
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = (corners @ turn.T + [320, 240]).astype(np.float32)
    src = np.float32([[0, 0], [size, 0], [size, size], [0, size]])
    warp = cv2.getPerspectiveTransform(src, dst)
    frame = cv2.warpPerspective(big, warp, (640, 480), flags=cv2.INTER_AREA, borderValue=110)
    frame = cv2.GaussianBlur(frame, (0, 0), blur)
    noise = np.random.default_rng(1).normal(0, 4, frame.shape)
    frame = np.clip(frame + noise, 0, 255).astype(np.uint8)
    ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 60])
    assert ok
    return cv2.imdecode(jpeg, cv2.IMREAD_GRAYSCALE)


DCC_LIKE = ("HC1:" + "NCFOXN%TS3DH0RGPJB/IB-OM7533DN2" * 20)[:300]


@pytest.mark.parametrize("version", [13, 17])
def test_a_blurred_code_at_two_pixels_per_module_is_read_by_this_step_alone(version):
    frame = camera_frame(version, 2.0, 1.0, DCC_LIKE)
    zxing = next(e for e in all_engines() if e.name == "zxing-cpp")
    assert zxing.decode(frame) == []
    pipeline = Pipeline(budget_ms=None)
    assert DCC_LIKE in read_texts(pipeline, frame)
    decoded = pipeline.decode(frame)
    assert [(c.text, s) for c, s in decoded.codes] == [(DCC_LIKE, "zxing-gridfit")]


@needs_corpus
@pytest.mark.parametrize(
    "corpus,name",
    [
        ("camera-b", "NL_2DCode_raw_219-NL-test+wrong_key.jpg"),  # version 18, 2.9 px/module
        ("camera-b", "HU_2DCode_raw_4.jpg"),  # version 17, 2.4 px/module
    ],
)
def test_camera_frames_no_engine_and_no_other_step_reads_are_read(corpus, name):
    folder = CORPUS / corpus
    entry = next(
        e for e in json.loads((folder / "expected.json").read_text("utf-8")) if e["file"] == name
    )
    grey = cv2.imread(str(folder / name), cv2.IMREAD_GRAYSCALE)
    expected = entry["expected"].strip()
    for engine in all_engines():
        if engine.available:
            assert all(c.text != expected for c in engine.decode(grey)), engine.name
    decoded = Pipeline(budget_ms=None).decode(grey)
    assert [(c.text.strip() if c.text else None, s) for c, s in decoded.codes] == [
        (expected, "zxing-gridfit")
    ]


@needs_corpus
def test_a_code_printed_on_creased_cloth_is_read_by_the_per_region_correction():
    # zxing/qrcode-4/30.png: no engine reads it; a single homography does not fit the cloth
    folder = CORPUS / "zxing" / "qrcode-4"
    grey = cv2.imread(str(folder / "30.png"), cv2.IMREAD_GRAYSCALE)
    expected = (folder / "30.txt").read_text("utf-8").strip()
    for engine in all_engines():
        if engine.available:
            assert all(c.text != expected for c in engine.decode(grey)), engine.name
    assert expected in read_texts(Pipeline(budget_ms=None), grey)


def test_stamp_sets_every_function_pattern_and_keeps_the_data_modules():
    truth = np.array(segno.make_qr("gridfit", version=7, error="m").matrix, bool)
    noisy = truth ^ (np.random.default_rng(2).random(truth.shape) < 0.2)
    stamped = gridfit.stamp(noisy, 7)
    known = gridfit._function_mask(7)
    assert (stamped[known] == truth[known]).all()
    assert (stamped[~known] == noisy[~known]).all()


def test_equalised_recovers_a_blurred_matrix_that_a_plain_threshold_gets_wrong():
    truth = np.array(segno.make_qr(DCC_LIKE, version=13, error="q").matrix, bool)
    x = truth.astype(np.float32)
    # each module's sample: its own colour plus a strong spill from its eight neighbours
    spill = cv2.filter2D(x, -1, np.array([[1, 2, 1], [2, 0, 2], [1, 2, 1]], np.float32) / 12)
    values = 200 - 90 * x - 70 * spill + np.random.default_rng(3).normal(0, 6, x.shape)
    plain = gridfit.stamp(values < np.median(values), 13)
    equalised = gridfit.equalised(values.astype(np.float32), 13)
    assert (equalised != truth).mean() < 0.5 * (plain != truth).mean()
    assert (equalised != truth).mean() < 0.02


def test_a_frame_without_a_code_never_runs_the_step():
    decoded = Pipeline(budget_ms=None).decode(np.full((720, 1280), 90, np.uint8))
    assert decoded.codes == [] and "zxing-gridfit" not in decoded.steps_tried


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((0, 0), np.uint8),
        np.zeros((10, 400), np.uint8),
        np.full((200, 200), 255, np.uint8),
        np.zeros((200, 200), np.uint8),
        np.random.default_rng(4).integers(0, 256, (300, 300), dtype=np.uint8),
        np.tile(np.uint8([0, 255]), (120, 60)),  # stripes
        np.kron(np.random.default_rng(5).integers(0, 2, (40, 40)) * 255, np.ones((3, 3))).astype(
            np.uint8
        ),  # random modules, no finder patterns
        np.zeros((100, 100, 3), np.uint8),  # colour: not this step's input
        np.zeros((100, 100), np.float32),
    ],
)
def test_junk_reads_as_nothing(image):
    pipeline = Pipeline(budget_ms=None)
    assert step(pipeline)(image) == []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arrays(np.uint8, st.tuples(st.integers(1, 120), st.integers(1, 120))))
def test_never_raises_on_any_grey_image(image):
    assert gridfit.read(image, lambda symbol: []) == []


def test_the_learned_equaliser_corrects_modules_the_fixed_one_gets_wrong():
    truth = np.array(segno.make_qr(DCC_LIKE, version=13, error="q").matrix, bool)
    n = truth.shape[0]
    px = 2.0
    # the symbol drawn at 2 px per module (8 px, then averaged down), blurred more along x than
    # along y (a blur the fixed 3×3 model does not describe), with sensor noise
    fine = np.kron(np.where(truth, 40.0, 210.0), np.ones((8, 8)))
    grey = cv2.resize(fine, (int(n * px), int(n * px)), interpolation=cv2.INTER_AREA)
    grey = cv2.GaussianBlur(grey, (0, 0), sigmaX=1.3, sigmaY=0.7)
    grey = grey + np.random.default_rng(6).normal(0, 5, grey.shape)
    grey = np.pad(np.clip(grey, 0, 255), 8, constant_values=210).astype(np.float32)
    homography = np.array([[px, 0, 8], [0, px, 8], [0, 0, 1]], np.float64)
    values = gridfit.soft_modules(grey, homography, n)
    fixed = gridfit.equalised(values, 13)
    learned = gridfit.learned(grey, homography, 13, fixed)
    assert (fixed != truth).mean() > 0.01  # the case is hard enough to tell them apart
    assert (learned != truth).mean() < 0.5 * (fixed != truth).mean()


@pytest.mark.parametrize("sigma", [0, 1, 2, 3])
def test_texture_that_no_grid_fits_is_given_up_before_any_module_is_sampled(sigma):
    noise = np.random.default_rng(7).integers(0, 256, (300, 300), dtype=np.uint8)
    if sigma:
        noise = cv2.GaussianBlur(noise, (0, 0), sigma)
    assert list(gridfit.candidates(noise)) == []
