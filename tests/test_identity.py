from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from scanners.idnumber import (
    find_resident_id,
    mask_id,
    mask_name,
    parse_identity,
    resident_check_char,
    upgrade_15_to_18,
)

# GB 11643-1999 examples with known check characters.
KNOWN = {
    "11010519491231002X": ("X", date(1949, 12, 31), "F"),
    "440524188001010014": ("4", date(1880, 1, 1), "M"),
}


def test_known_numbers():
    for number, (check, birth, sex) in KNOWN.items():
        assert resident_check_char(number[:17]) == check
        ident = parse_identity(number)
        assert ident.kind == "resident_id" and ident.valid
        assert ident.birth_date == birth and ident.sex == sex


def test_wrong_check_digit_is_flagged_not_accepted():
    ident = parse_identity("110105194912310021")
    assert ident.kind == "resident_id"
    assert not ident.check_ok and not ident.valid
    assert "expected X" in ident.problem


def test_fifteen_digit_number_is_upgraded():
    ident = parse_identity("110105491231002")
    assert ident.number == upgrade_15_to_18("110105491231002")
    assert ident.number[:17] == "11010519491231002"
    assert ident.upgraded_from == "110105491231002"
    assert ident.birth_date == date(1949, 12, 31) and ident.valid


def test_full_width_and_spaces_are_normalised():
    ident = parse_identity("１１０１０５ １９４９１２３１ ００２ｘ")
    assert ident.number == "11010519491231002X" and ident.valid


def test_impossible_birth_date():
    first17 = "11010519491331002"  # month 13
    ident = parse_identity(first17 + resident_check_char(first17))
    assert not ident.valid and "not a real date" in ident.problem


def test_other_documents():
    assert parse_identity("E12345678").kind == "passport"
    assert parse_identity("H12345678").kind == "hk_macau_permit"
    assert parse_identity("12345678").kind == "taiwan_permit"
    assert parse_identity("").problem == "empty identity number"


def test_find_in_text_and_masks():
    assert find_resident_id("https://x.example/p?id=11010519491231002X&t=1") == "11010519491231002X"
    assert find_resident_id("no number here") is None
    assert mask_id("11010519491231002X") == "110105********002X"
    assert mask_name("张三") == "张*" and mask_name("欧阳娜娜") == "欧***"
    # a long foreign name: a fixed-width mask, not one star per character
    assert mask_name("Gabriele Musterfrau-Gößinger") == "G***" and mask_name("张") == "张*"
    # 19 characters with an X inside: a resident ID with a character too many, not a document
    # of another kind (the import took 32010619781203302X1 without a word; trial of stop 21)
    ident = parse_identity("32010619781203302X1")
    assert ident.kind == "resident_id" and ident.problem


@st.composite
def resident_numbers(draw):
    area = draw(st.integers(110000, 659999))
    birth = draw(st.dates(date(1900, 1, 1), date(2020, 12, 31)))
    seq = draw(st.integers(0, 999))
    first17 = f"{area}{birth:%Y%m%d}{seq:03d}"
    return first17 + resident_check_char(first17)


@settings(max_examples=500)
@given(resident_numbers(), st.integers(0, 16), st.integers(1, 9))
def test_any_single_digit_change_is_caught(number, pos, delta):
    """MOD 11-2 catches every single-digit error."""
    assert parse_identity(number).valid
    changed = number[:pos] + str((int(number[pos]) + delta) % 10) + number[pos + 1 :]
    assert not parse_identity(changed).valid


@settings(max_examples=2000)
@given(st.text(max_size=60))
def test_parser_never_raises(text):
    ident = parse_identity(text)
    assert (
        ident.valid
        or ident.problem is not None
        or ident.kind in ("passport", "hk_macau_permit", "taiwan_permit", "other")
    )
