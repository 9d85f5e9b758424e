"""clean_text and address_key: the device and the town server file households under the same
key, so a faster spelling of either must give exactly what the code before it gave (kept in
bench/old_text.py as issue 17's baseline) for any cell."""

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from bench.old_text import address_key as address_key_before
from bench.old_text import clean_text as clean_text_before
from fieldkit.shared.address import address_key, clean_text

CELLS = st.one_of(
    st.none(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(),
    st.text(alphabet="0123456789 栋幢楼号单元室户号楼ＡＢ１２\u3000\t-Xx"),
)


@settings(max_examples=400, deadline=None)
@given(CELLS)
def test_clean_text_is_the_nfkc_of_before(value):
    assert clean_text(value) == clean_text_before(value)


@settings(max_examples=300, deadline=None)
@given(st.lists(CELLS.map(lambda v: "" if v is None else str(v)), min_size=4, max_size=4))
def test_address_key_is_the_key_of_before(parts):
    assert address_key(*parts) == address_key_before(*parts)


def test_ascii_cells_skip_the_normaliser_and_are_their_own_nfkc():
    for ch in map(chr, range(128)):
        assert unicodedata.normalize("NFKC", f"a{ch}b") == f"a{ch}b"
    assert clean_text(" 3栋 ") == "3栋"
    assert clean_text("１０１") == "101"  # full-width digits still normalised
    assert clean_text(12.0) == "12"
    assert address_key("", "3号楼", "2", "101室") == "|3|2|101"
