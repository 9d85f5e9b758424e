"""`fieldkit decode` / `fieldkit scan` never print personal data in full (text and --json):
EU DCC holder names and birth date, names and phone numbers in QR text, the birth date of an
ID number, health-code tokens. The JSON keeps its shape; only the values are masked."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import segno

from fieldkit.shared.identity import mask_name
from scanners import cli

from .conftest import CORPUS, FIELDKIT

DCC_IMAGE = CORPUS / "qr" / "camera-a" / "AT_2DCode_raw_1.jpg"
needs_corpus = pytest.mark.skipif(not DCC_IMAGE.is_file(), reason="shared corpus absent")

# what the Austrian test certificate holds in clear
DCC_CLEAR = ("Musterfrau", "Gößinger", "MUSTERFRAU", "GOESSINGER", "Gabriele", "GABRIELE")
DCC_DOB = "1998-02-26"

ID = "510107197701014563"
NAMED = f"姓名:张伟;身份证号:{ID};电话:13812345678"
HEALTH = f"https://jkm.example.gov.cn/hc/show?token=AbC123xyz789&id={ID}"
LATIN = "Name: Li Qiang; Tel: 139-1234-5678; note call 15987654321 first"
# as the gate screen shows them
NAMED_SHOWN = f"姓名:{mask_name('张伟')};身份证号:510107********4563;电话:138****5678"
LATIN_SHOWN = f"Name: {mask_name('Li Qiang')}; Tel: 139****5678; note call 159****4321 first"
CLEAR = (
    "张伟",
    ID,
    "1977-01-01",  # the birth date in the ID number
    "13812345678",
    "AbC123xyz789",
    "Li Qiang",
    "Qiang",
    "139-1234-5678",
    "15987654321",
)


def write_qr(path: Path, text: str) -> Path:
    buf = io.BytesIO()
    segno.make_qr(text).save(buf, kind="png", scale=6, border=4)
    path.write_bytes(buf.getvalue())
    return path


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "imgs"
    folder.mkdir()
    write_qr(folder / "named.png", NAMED)
    write_qr(folder / "health.png", HEALTH)
    write_qr(folder / "latin.png", LATIN)
    if DCC_IMAGE.is_file():
        shutil.copy(DCC_IMAGE, folder / "dcc.jpg")
    return folder


def assert_masked(out: str) -> None:
    for clear in (*CLEAR, *DCC_CLEAR, DCC_DOB):
        assert clear not in out, clear


def by_name(out: str) -> dict[str, dict]:
    return {Path(r["path"]).stem: r for r in map(json.loads, out.splitlines())}


def test_decode_masks_names_phones_birth_dates_and_tokens(images, capsys):
    assert cli.main(["decode", str(images)]) == 0
    captured = capsys.readouterr()
    assert_masked(captured.out + captured.err)
    assert NAMED_SHOWN in captured.out
    assert "token=AbC1***&id=510107********4563" in captured.out
    assert LATIN_SHOWN in captured.out


def test_decode_json_keeps_its_shape_with_masked_values(images, capsys):
    assert cli.main(["decode", "--json", str(images)]) == 0
    captured = capsys.readouterr()
    assert_masked(captured.out + captured.err)
    lines = by_name(captured.out)
    named = lines["named"]
    assert named["texts"] == [NAMED_SHOWN]
    assert named["parsed"]["birth_date"] == "1977-**-**"
    assert named["codes"][0]["parsed"]["number"] == "510107********4563"
    assert "bytes_base64" not in named["codes"][0]  # the clear text, base64-encoded
    health = lines["health"]["codes"][0]
    assert health["kind"] == "health_code"
    assert health["parsed"]["token"] == "AbC1***"
    assert (
        health["parsed"]["url"]
        == "https://jkm.example.gov.cn/hc/show?token=AbC1***&id=510107********4563"
    )
    assert "bytes_base64" not in health


@needs_corpus
def test_decode_json_masks_the_dcc_holder(images, capsys):
    assert cli.main(["decode", "--json", str(images / "dcc.jpg")]) == 0
    captured = capsys.readouterr()
    assert_masked(captured.out + captured.err)
    line = json.loads(captured.out)
    for cert in (line["parsed"]["certificate"], line["codes"][0]["parsed"]["certificate"]):
        assert cert["nam"] == {  # as the gate screen masks names (M*****)
            "fnt": mask_name("MUSTERFRAU<GOESSINGER"),
            "fn": mask_name("Musterfrau-Gößinger"),
            "gnt": mask_name("GABRIELE"),
            "gn": mask_name("Gabriele"),
        }
        assert cert["dob"] == "1998-**-**"
        assert cert["v"][0]["dt"] == "2021-02-18"  # the vaccination date is not personal
    assert line["kind"] == "dcc" and line["codes"][0]["problem"].startswith("expired")


def test_scan_masks_personal_data_in_text_and_json(images, capsys):
    assert cli.main(["scan", "--images", str(images)]) == 0
    captured = capsys.readouterr()
    assert_masked(captured.out + captured.err)
    assert "138****5678" in captured.out and "token=AbC1***" in captured.out
    assert cli.main(["scan", "--images", str(images), "--json"]) == 0
    captured = capsys.readouterr()
    assert_masked(captured.out + captured.err)
    reads = [json.loads(line) for line in captured.out.splitlines()]
    kinds = sorted(r["kind"] for r in reads)
    dcc = ["dcc"] if DCC_IMAGE.is_file() else []
    assert kinds == sorted([*dcc, "health_code", "resident_id", "unknown"])
    for read in reads:
        if read["kind"] == "dcc":
            assert read["parsed"]["certificate"]["dob"] == "1998-**-**"


def test_the_installed_command_prints_masked(images):
    """The real entry point, in both languages."""
    for lang in ("zh", "en"):
        for extra in ([], ["--json"]):
            done = subprocess.run(
                [str(FIELDKIT), "--lang", lang, "decode", *extra, str(images)],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, done.stderr
            assert_masked(done.stdout + done.stderr)
            assert "138****5678" in done.stdout


def test_other_ways_of_writing_names_and_phones(tmp_path, capsys):
    text = "联系人 王芳 电话 010-12345678；username=zhangwei&mobile=+86 138 1234 5678"
    write_qr(tmp_path / "other.png", text)
    assert cli.main(["decode", "--json", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for clear in ("王芳", "12345678", "zhangwei", "1234 5678"):
        assert clear not in out, clear
    assert json.loads(out)["texts"] == [
        f"联系人 {mask_name('王芳')} 电话 010****5678；username={mask_name('zhangwei')}"
        "&mobile=+86****5678"
    ]
