"""`fieldkit decode` / `fieldkit scan` output: IDs masked, control-character payloads as text,
binary payloads as base64, no wall-clock budget on files, and no exception on any file bytes."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import cv2
import numpy as np
import segno
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scanners import cli
from scanners.engines import decode_payload_bytes
from scanners.pipeline import Pipeline

FULL_ID = "11010519491231002X"
MASKED = "110105********002X"


def write_qr(path: Path, data: str | bytes) -> Path:
    buf = io.BytesIO()
    segno.make_qr(data).save(buf, kind="png", scale=8, border=4)
    path.write_bytes(buf.getvalue())
    return path


def test_scan_masks_id_numbers_in_json_and_text(tmp_path, capsys):
    write_qr(tmp_path / "a.png", FULL_ID)
    write_qr(tmp_path / "b.png", f"姓名:张三 证件:{FULL_ID} 电话")
    assert cli.main(["scan", "--images", str(tmp_path), "--json"]) == 0
    out = capsys.readouterr().out
    assert FULL_ID not in out and MASKED in out
    reads = [json.loads(line) for line in out.splitlines()]
    assert [r["kind"] for r in reads] == ["resident_id", "resident_id"]
    assert all(r["ok"] for r in reads)
    assert cli.main(["scan", "--images", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert FULL_ID not in out and MASKED in out


def test_decode_masks_id_numbers(tmp_path, capsys):
    write_qr(tmp_path / "a.png", FULL_ID)
    for extra in (["--json"], []):
        assert cli.main(["decode", *extra, str(tmp_path)]) == 0
        out = capsys.readouterr().out
        assert FULL_ID not in out and MASKED in out


def test_control_character_payloads_are_text_in_json(tmp_path, capsys):
    gs1 = "01095011010209171719050810ABCD1234\x1d4109501101020917"
    structured = "\x01HDR\x1eFIELD1\x1fVALUE\x04"
    write_qr(tmp_path / "gs1.png", gs1)
    write_qr(tmp_path / "structured.png", structured)
    assert cli.main(["decode", "--json", str(tmp_path)]) == 0
    lines = {Path(r["path"]).stem: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert lines["gs1"]["texts"] == [gs1]
    assert lines["structured"]["texts"] == [structured]
    assert lines["gs1"]["codes"][0]["text"] == gs1
    assert base64.b64decode(lines["gs1"]["codes"][0]["bytes_base64"]) == gs1.encode()


def test_undecodable_bytes_are_given_as_base64(tmp_path, capsys):
    payload = bytes(range(0x80, 0x100, 3)) + b"\x00\xff\xfe"
    write_qr(tmp_path / "bin.png", payload)
    assert cli.main(["decode", "--json", str(tmp_path)]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["texts"] == [None]
    assert base64.b64decode(line["codes"][0]["bytes_base64"]) == payload


def test_decode_payload_bytes_keeps_text_with_control_characters():
    assert decode_payload_bytes(b"0101\x1d21AB") == ("0101\x1d21AB", "utf-8")
    assert decode_payload_bytes(b"\x01HDR\x1eA\x1fB\x04") == ("\x01HDR\x1eA\x1fB\x04", "utf-8")
    assert decode_payload_bytes(b"\x00\x01\x02") == (None, "binary")


def test_decode_files_has_no_time_budget_by_default_scan_has_one():
    import argparse

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="cmd"))
    assert parser.parse_args(["decode", "x.png"]).budget_ms is None
    assert parser.parse_args(["decode", "--budget-ms", "40", "x.png"]).budget_ms == 40
    assert parser.parse_args(["scan", "--images", "d"]).budget_ms > 0


def test_pipeline_without_budget_runs_every_step_whatever_the_clock():
    """A frame with a code-like region that nothing reads: with a budget of 0 ms the pipeline
    gives up after the fast path; without a budget it tries every step on every region, so the
    result cannot depend on the machine's load."""
    rng = np.random.default_rng(3)
    blob = (rng.integers(0, 2, (40, 40)) * 255).astype(np.uint8)
    frame = np.full((720, 1280), 128, np.uint8)
    frame[300:460, 500:660] = cv2.resize(blob, (160, 160), interpolation=cv2.INTER_NEAREST)
    unbounded = Pipeline(budget_ms=None).decode(frame)
    assert not unbounded.budget_exhausted
    assert len(unbounded.steps_tried) > len(Pipeline().steps)  # every step at least once
    assert Pipeline(budget_ms=0).decode(frame).budget_exhausted


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.binary(max_size=2000), st.sampled_from([".png", ".jpg", ".bmp", ".webp", ".tif"]))
def test_decode_never_raises_on_any_file_bytes(tmp_path, data, suffix):
    path = tmp_path / f"any{suffix}"
    path.write_bytes(data)
    result = cli.decode_file(PIPELINE, path)
    assert result["path"] == str(path) and isinstance(result["ok"], bool)
    json.dumps(result)


@settings(max_examples=300, deadline=None, database=None)
@given(st.binary(max_size=300))
def test_decode_payload_bytes_never_raises_and_keeps_every_byte(raw):
    text, encoding = decode_payload_bytes(raw)
    if text is not None and encoding == "utf-8":
        assert text.encode() == raw.removeprefix(b"\xef\xbb\xbf")


PIPELINE = Pipeline(budget_ms=None, dedupe_seconds=0)


def test_legacy_15_digit_id_masked_too(tmp_path, capsys):
    write_qr(tmp_path / "a.png", "110105491231002")
    cli.main(["decode", "--json", str(tmp_path)])
    out = capsys.readouterr().out
    assert "110105491231002" not in out and "11010519491231002" not in out


def test_live_budget_does_not_start_a_step_that_cannot_finish_in_time():
    rng = np.random.default_rng(3)
    blob = (rng.integers(0, 2, (40, 40)) * 255).astype(np.uint8)
    frame = np.full((720, 1280), 128, np.uint8)
    frame[300:460, 500:660] = cv2.resize(blob, (160, 160), interpolation=cv2.INTER_NEAREST)
    live = Pipeline(budget_ms=5000)
    first = live.steps[0][0]
    live.step_cost[first] = 10.0  # learnt: this step takes 10 s, the budget is 5 s
    decoded = live.decode(frame)
    assert decoded.budget_exhausted and decoded.steps_tried == ["fast"]
    files = Pipeline(budget_ms=None)
    files.step_cost[first] = 10.0  # no budget: every step runs whatever it costs
    decoded = files.decode(frame)
    assert not decoded.budget_exhausted and first in decoded.steps_tried
    assert files.step_cost[first] < 10.0  # the estimate follows what it measures
