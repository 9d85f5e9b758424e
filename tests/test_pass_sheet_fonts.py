"""The printed pass sheet draws digits and Latin letters with a font that has them: with
DroidSansFallback (the only Chinese font on some machines, and on this one) every digit of the
pass number came out as the same box (trial of stop 21)."""

from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from sync.server import passes_cli
from sync.server.passes_cli import SheetFont, _runs, render_sheet

DROID = "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"


def _drawn(font: SheetFont, text: str) -> bytes:
    image = Image.new("L", (400, 40), 255)
    font.draw(ImageDraw.Draw(image), (2, 2), text)
    return image.tobytes()


@pytest.fixture
def droid_only(monkeypatch):
    if not Path(DROID).exists():
        pytest.skip("DroidSansFallbackFull is not on this machine")
    monkeypatch.setattr(passes_cli, "CJK_FONTS", (DROID,))


def test_digits_and_chinese_are_both_told_apart(droid_only):
    font = SheetFont(22)
    assert _drawn(font, "0") != _drawn(font, "1")  # were the same box
    assert _drawn(font, "P-2F207BF4") != _drawn(font, "P-2F207BF5")
    assert _drawn(font, "张") != _drawn(font, "李")
    assert _drawn(font, "3栋101 张*") != _drawn(font, "3栋102 张*")


def test_text_is_cut_into_runs_of_one_script():
    assert _runs("3栋-1单元 P-01") == ["3", "栋", "-1", "单元", " P-01"]
    assert _runs("") == []


def test_a_sheet_of_two_passes_prints_their_numbers(droid_only):
    item = {"text": "FK1:x", "subject": "3栋-1单元-101", "holder": "张*"}
    item |= {"valid_from": "2026-12-02", "valid_to": "2026-12-16"}
    one = render_sheet([item | {"pass_id": "P-00000001"}], "出入证")[0]
    two = render_sheet([item | {"pass_id": "P-11111111"}], "出入证")[0]
    assert one.tobytes() != two.tobytes()
