"""Frame sources (real video written with cv2.VideoWriter, real image folders), the keyboard
wedge, and the decode/scan CLI on real and broken files."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import segno
from PIL import Image

from scanners import cli
from scanners.sources import (
    CONNECTED,
    ENDED,
    MISSING,
    CameraSource,
    ImageFolderSource,
    SourceSpec,
    load_image,
    open_source,
)
from scanners.wedge import KeyboardWedge

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "qr"
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus absent")


def qr_bgr(text: str, size: int = 480) -> np.ndarray:
    buf = io.BytesIO()
    segno.make_qr(text).save(buf, kind="png", scale=8, border=4)
    grey = cv2.imdecode(np.frombuffer(buf.getvalue(), np.uint8), cv2.IMREAD_GRAYSCALE)
    canvas = np.full((size, size), 255, np.uint8)
    canvas[20 : 20 + grey.shape[0], 20 : 20 + grey.shape[1]] = grey
    return cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR)


def test_video_file_source_plays_then_ends(tmp_path):
    path = tmp_path / "gate.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (480, 480))
    assert writer.isOpened()
    for i in range(12):
        writer.write(
            qr_bgr("11010519491231002X") if 4 <= i < 8 else np.full((480, 480, 3), 80, np.uint8)
        )
    writer.release()

    source = open_source(f"video:{path}")
    assert source.status.state == CONNECTED
    frames = list(source.frames())
    assert len(frames) == 12 and source.status.state == ENDED
    assert source.read() is None  # reading past the end is harmless

    from scanners.pipeline import Pipeline

    pipeline = Pipeline(dedupe_seconds=3.0)
    reads = [r for f in frames for r in pipeline.process(f)]
    assert [r.kind for r in reads] == ["resident_id"]  # 4 frames with the code, read once


def test_missing_video_is_a_status_not_an_exception(tmp_path):
    source = open_source(SourceSpec("video", str(tmp_path / "nope.mp4")))
    assert source.status.state == MISSING and "not found" in source.status.message
    assert source.read() is None and source.status.state == ENDED


def test_image_folder_source_skips_unreadable_files(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), qr_bgr("first"))
    (tmp_path / "b.png").write_bytes(b"not a png")
    (tmp_path / "c.jpg").write_bytes(b"")
    cv2.imwrite(str(tmp_path / "d.jpg"), qr_bgr("second"))
    (tmp_path / "notes.txt").write_text("ignored")
    source = open_source(SourceSpec("images", str(tmp_path)))
    assert source.status.state == CONNECTED
    frames = list(source.frames())
    assert len(frames) == 2 and source.status.state == ENDED
    assert {p.name for p, _ in source.skipped} == {"b.png", "c.jpg"}


@needs_corpus
def test_image_folder_over_corpus(tmp_path):
    for p in sorted((CORPUS / "camera-a").glob("*.jpg"))[:3]:
        shutil.copy(p, tmp_path / p.name)
    source = ImageFolderSource(tmp_path)
    assert sum(1 for _ in source.frames()) == 3


def test_missing_camera_gives_status_and_retries():
    clock = [0.0]
    camera = CameraSource(
        99, width=640, height=480, fps=15, reconnect_seconds=2.0, clock=lambda: clock[0]
    )
    assert camera.status.state == MISSING and "no such camera" in camera.status.message
    assert camera.read() is None
    clock[0] = 5.0
    assert camera.read() is None and camera.status.state == MISSING  # retried, still missing
    camera.close()
    assert camera.status.state == ENDED


def test_missing_camera_by_path():
    source = open_source("camera:/dev/video-not-here")
    assert source.status.state == MISSING and source.read() is None


def test_bad_source_spec_is_explained():
    with pytest.raises(ValueError, match="camera:N"):
        SourceSpec.parse("webcam0")


def test_load_image_errors_are_clear(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("hello")
    good = tmp_path / "good.jpg"
    cv2.imwrite(str(good), qr_bgr("x"))
    (tmp_path / "cut.jpg").write_bytes(good.read_bytes()[:800])
    Image.new("L", (8000, 8000)).save(tmp_path / "huge.png")
    assert load_image(tmp_path / "empty.png")[1] == "empty file"
    assert "not an image" in load_image(tmp_path / "text.jpg")[1]
    assert "truncated" in load_image(tmp_path / "cut.jpg")[1]
    assert "too large" in load_image(tmp_path / "huge.png")[1]
    assert "cannot open" in load_image(tmp_path / "missing.png")[1]
    assert load_image(good)[0] is not None


# -- keyboard wedge ------------------------------------------------------------------------
def test_wedge_detects_a_scanner_burst():
    wedge = KeyboardWedge()
    scans = wedge.feed_text("11010519491231002X\n", start=10.0, gap_s=0.004)
    assert [s.text for s in scans] == ["11010519491231002X"]
    assert scans[0].chars_per_second > 100


def test_wedge_ignores_a_person_typing():
    wedge = KeyboardWedge()
    assert wedge.feed_text("11010519491231002X\n", start=0.0, gap_s=0.18) == []


def test_wedge_drops_slow_prefix_before_the_burst():
    wedge = KeyboardWedge()
    wedge.feed("a", 0.0)
    wedge.feed("b", 0.5)
    scans = wedge.feed_text("HC1:ABC123\n", start=1.5, gap_s=0.003)
    assert [s.text for s in scans] == ["HC1:ABC123"]


def test_wedge_short_bursts_and_named_keys():
    wedge = KeyboardWedge(min_length=4)
    assert wedge.feed_text("ab\n", 0.0, 0.001) == []
    wedge.feed("shift", 1.0)
    assert [s.text for s in wedge.feed_text("abcd\r", 1.0, 0.001)] == ["abcd"]
    assert wedge.pending == ""


# -- CLI -------------------------------------------------------------------------------------
@needs_corpus
def test_cli_decode_json_per_file_with_errors(tmp_path, capsys):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnope")
    Image.new("L", (8000, 8000)).save(tmp_path / "huge.png")
    camera = min((CORPUS / "camera-a").glob("*.jpg"))
    zx = CORPUS / "zxing" / "qrcode-1" / "1.png"
    code = cli.main(["decode", "--json", str(camera), str(tmp_path), str(zx)])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 2  # some files could not be read, the run went on
    by_name = {Path(r["path"]).name: r for r in lines}
    assert set(by_name) == {camera.name, "broken.png", "huge.png", "1.png"}
    good = by_name[camera.name]
    assert good["ok"] and good["kind"] == "dcc" and good["engine"] == "zxing-cpp"
    assert good["texts"][0].startswith("HC1:") and good["ms"] >= 0 and good["parsed"]["certificate"]
    assert {"path", "ok", "texts", "engine", "ms", "kind", "parsed"} <= set(good)
    assert by_name["1.png"]["ok"] and by_name["1.png"]["kind"] == "unknown"
    assert not by_name["broken.png"]["ok"] and by_name["broken.png"]["error"]
    assert "too large" in by_name["huge.png"]["error"]


def test_cli_scan_images_prints_reads(tmp_path, capsys):
    cv2.imwrite(str(tmp_path / "a.png"), qr_bgr("11010519491231002X"))
    cv2.imwrite(str(tmp_path / "b.png"), qr_bgr("11010519491231002X"))  # same code: deduped
    assert cli.main(["scan", "--images", str(tmp_path), "--json"]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(out) == 1 and out[0]["kind"] == "resident_id" and out[0]["ok"]


def test_cli_register_adds_subcommands():
    import argparse

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="cmd"))
    args = parser.parse_args(["scan", "--camera", "99"])
    assert args.func is cli.cmd_scan and args.camera == "99"
    args = parser.parse_args(["decode", "x.png"])
    assert args.func is cli.cmd_decode
