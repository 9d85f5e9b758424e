"""Identity numbers: Chinese resident ID (GB 11643-1999), passports and permits.

Pure functions, no I/O; used by the payload parsers, the rules engine, manual entry and imports
on the device, and by the town server (key-person lists, ``trace``, the ledger's masked values):
one rule for both, so it lives with the shared pieces. ``scanners.idnumber`` re-exports it.
A wrong check digit is *flagged* (``check_ok=False``), never silently accepted or silently
dropped: the caller must ask the operator to confirm.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from datetime import date

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"
_FULLWIDTH = str.maketrans(
    "０１２３４５６７８９ＸｘＡＢＣＤＥＦＧＨＩＪＫＬＭＮＯＰＱＲＳＴＵＶＷＹＺ",
    "0123456789XXABCDEFGHIJKLMNOPQRSTUVWYZ",
)

RESIDENT_ID_IN_TEXT = re.compile(
    r"(?<![0-9A-Za-z])([1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])"
    r"(?:0[1-9]|[12]\d|3[01])\d{3}[0-9Xx])(?![0-9A-Za-z])"
)


_ID_SPACING = re.compile(r"[\s\-\u3000]")
_RESIDENT_18 = re.compile(r"\d{17}[\dX]")


def normalise_id_text(text: str) -> str:
    """Full-width digits to ASCII, spaces and dashes removed, upper case."""
    return _ID_SPACING.sub("", text.translate(_FULLWIDTH)).upper()


def resident_check_char(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character for the first 17 digits."""
    if len(first17) != 17:
        raise ValueError("17 digits needed")
    total = sum(map(operator.mul, map(int, first17), _WEIGHTS))  # in C: once per ID read
    return _CHECK_CHARS[total % 11]


def upgrade_15_to_18(number15: str) -> str:
    """Legacy 15-digit numbers: insert the century ("19") and append the check character."""
    first17 = number15[:6] + "19" + number15[6:]
    return first17 + resident_check_char(first17)


@dataclass(frozen=True)
class IdentityNumber:
    kind: str  # resident_id | passport | hk_macau_permit | taiwan_permit | other
    number: str  # normalised (18-digit for resident IDs)
    check_ok: bool = True  # False: wrong check digit, must be confirmed by the operator
    birth_date: date | None = None
    sex: str | None = None  # "M" | "F"
    upgraded_from: str | None = None  # the 15-digit legacy number, if upgraded
    problem: str | None = None  # why it is not fully valid, in plain words
    # The same as a catalogue code (``id.problem.<code>``) and its parameters, for the screen.
    problem_code: str | None = None
    problem_params: tuple[tuple[str, str], ...] = ()

    @property
    def valid(self) -> bool:
        return self.problem is None and self.check_ok


def _birth(s: str) -> date | None:
    try:
        return date(int(s[0:4]), int(s[4:6]), int(s[6:8]))
    except ValueError:
        return None


def parse_identity(text: str, kind_hint: str | None = None) -> IdentityNumber:
    """Parse an identity number of any supported kind.

    Never raises: an unusable input comes back with ``problem`` set.
    """
    raw = normalise_id_text(text or "")
    if not raw:
        return IdentityNumber(
            "other", "", check_ok=False, problem="empty identity number", problem_code="empty"
        )
    if kind_hint in (None, "resident_id"):
        if _RESIDENT_18.fullmatch(raw):
            birth = _birth(raw[6:14])
            sex = "M" if int(raw[16]) % 2 else "F"
            expected = resident_check_char(raw[:17])
            check_ok = expected == raw[17]
            problem = code = None
            params: tuple[tuple[str, str], ...] = ()
            if birth is None or birth > date.today() or birth.year < 1880:
                problem = f"birth date {raw[6:14]} in the number is not a real date"
                code, params = "birth", (("value", raw[6:14]),)
            elif not check_ok:
                problem = f"check digit is {raw[17]}, expected {expected}: confirm the number"
                code, params = "check_digit", (("got", raw[17]), ("want", expected))
            return IdentityNumber(
                "resident_id", raw, check_ok, birth, sex, None, problem, code, params
            )
        if re.fullmatch(r"\d{15}", raw):
            full = upgrade_15_to_18(raw)
            birth = _birth(full[6:14])
            sex = "M" if int(raw[14]) % 2 else "F"
            problem = (
                None if birth else f"birth date 19{raw[6:12]} in the number is not a real date"
            )
            code = None if birth else "birth"
            params = () if birth else (("value", "19" + raw[6:12]),)
            return IdentityNumber("resident_id", full, True, birth, sex, raw, problem, code, params)
        if re.fullmatch(r"\d{17}[A-Z]", raw):
            return IdentityNumber(
                "resident_id",
                raw,
                False,
                _birth(raw[6:14]),
                problem=f"last character {raw[17]} is not a digit or X: check the number",
                problem_code="last_char",
                problem_params=(("value", raw[17]),),
            )
        # 16, 17 or 19+ digits (an X or not), or at most 7: a resident ID with digits missing
        # or extra (a reading typed in front of it), never another kind of document (a permit
        # has 8 digits, a passport letters). Gate, CLI and imports share this rule.
        if kind_hint == "resident_id" or re.fullmatch(
            r"\d{1,7}|\d{16,17}|\d{14,16}X|\d{19,}X?|(?=[\dX]{16,}$)\d+X\d+", raw
        ):
            return IdentityNumber(
                "resident_id",
                raw,
                False,
                problem="a resident ID has 18 characters (or 15 digits)",
                problem_code="length",
            )
    # Mainland travel permit for HK/Macau residents: H or M + 8 (or 10) digits.
    if kind_hint in (None, "hk_macau_permit") and re.fullmatch(r"[HM]\d{8}(\d{2})?", raw):
        return IdentityNumber("hk_macau_permit", raw)
    # Mainland travel permit for Taiwan residents: 8 digits (older ones 10 with letters).
    if kind_hint in (None, "taiwan_permit") and re.fullmatch(r"\d{8}", raw):
        return IdentityNumber("taiwan_permit", raw)
    # Passports: Chinese E/G + 8, or any 6-9 alphanumerics (ICAO document numbers).
    if (
        kind_hint in (None, "passport")
        and re.fullmatch(r"[A-Z0-9]{6,9}", raw)
        and any(c.isalpha() for c in raw)
    ):
        return IdentityNumber("passport", raw)
    if kind_hint in ("passport", "hk_macau_permit", "taiwan_permit"):
        return IdentityNumber(
            kind_hint,
            raw,
            False,
            problem=f"not a valid {kind_hint} number",
            problem_code="kind",
            problem_params=(("kind", kind_hint),),
        )
    if len(raw) > 40:
        return IdentityNumber(
            "other", raw[:40], False, problem="identity number is too long", problem_code="too_long"
        )
    return IdentityNumber("other", raw)


def find_resident_id(text: str) -> str | None:
    """The first resident ID number inside free text (e.g. a URL), or None."""
    m = RESIDENT_ID_IN_TEXT.search(normalise_id_text(text) if len(text) < 200 else text)
    return m.group(1).upper() if m else None


def mask_id(number: str) -> str:
    """110105********1234 style: keep the first 6 and last 4."""
    if len(number) <= 10:
        return (
            number[:2] + "*" * max(0, len(number) - 4) + number[-2:]
            if len(number) > 4
            else "*" * len(number)
        )
    return number[:6] + "*" * (len(number) - 10) + number[-4:]


def mask_name(name: str) -> str:
    """张* / 欧阳** / J*** : keep the first character, then one star a character, at most
    three: "Gabriele Musterfrau-Gößinger" is G***, not a 28-character mask that tells its
    length and pushes a table's columns off an 80-column screen (trial of stop 21)."""
    if not name:
        return ""
    return name[0] + "*" * min(max(len(name) - 1, 1), 3)


def mask_phone(phone: str) -> str:
    p = normalise_id_text(phone)
    return p[:3] + "****" + p[-4:] if len(p) >= 11 else "*" * len(p)
