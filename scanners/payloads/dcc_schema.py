"""EU DCC payload validation against the eHealth Network JSON schema (versions 1.0.x – 1.3.x).

The schema generation is chosen from the certificate's own ``ver``, as the reference test runner
does. 1.3.x (and later) is validated with ``jsonschema`` against the published
``DCC.combined-schema.json`` shipped in ``dcc_schemas/1.3.0`` (source and sha256 in its README),
with a ``valueset-uri`` keyword for the closed value sets. The published files of the earlier
generations could not be obtained offline (only drafts), so their rules are still written out
here by hand:

=============  ===========================================================================
1.0.x          dob ``(19|20)\\d{2}-\\d{2}-\\d{2}`` (unanchored, so a date-time form matches too);
               names, ``is``, ``ci``, ``tc`` at most 50 characters; doses 1 – 9
1.1.x, 1.2.x   dob ``YYYY``, ``YYYY-MM``, ``YYYY-MM-DD`` or empty (anchored); lengths 80;
               doses 1 – 9
1.3.x          as 1.2.x; doses ≥ 1 without an upper bound; each group holds exactly one entry
=============  ===========================================================================

All generations: ``ver`` (``^\\d+.\\d+.\\d+$``), ``nam`` (object, ``fnt`` required, standardised
names ``^[A-Z<]*$``) and ``dob`` required; exactly one of ``v`` / ``t`` / ``r`` present (a group
written as ``null`` by older encoders counts as absent), as a non-empty array of objects with
the required fields of its kind::

    v: tg vp mp ma dn sd dt co is ci     t: tg tt sc tr tc co is ci     r: tg fr co is df du ci

``co`` is ``[A-Z]{1,10}`` and, through the schema's ``valueset-uri``, an ISO 3166-1 alpha-2
code; ``tg``, ``tt`` (test type) and ``tr`` (test result) are checked against their value sets
too, which are closed and have not changed since 1.0.0. The open value sets (vaccine product,
manufacturer, RAT device list) grow every few weeks and are business rules, not structure:
they are not checked here. The schema does not forbid additional properties (``meta`` and the
like are allowed), and ``format`` (date, date-time) is an annotation in JSON Schema 2020-12, not
an assertion, so date fields are checked as strings only.

:func:`validate_hcert` never raises; it returns every problem found.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

VER_RE = re.compile(r"^\d+.\d+.\d+$")
STANDARDISED_NAME_RE = re.compile(r"^[A-Z<]*$")
COUNTRY_RE = re.compile(r"[A-Z]{1,10}")  # unanchored in the schema
DOB_1_0_RE = re.compile(r"(19|20)\d{2}-\d{2}-\d{2}")  # unanchored in 1.0.x
DOB_RE = re.compile(r"^((19|20)\d\d(-\d\d){0,2}){0,1}$")

# Closed value sets (eHN value sets 1.0, 2021-04-16 onwards).
DISEASE_AGENT_TARGETED = frozenset({"840539006"})
TEST_TYPE = frozenset({"LP6464-4", "LP217198-3"})
TEST_RESULT = frozenset({"260415000", "260373001"})
# ISO 3166-1 alpha-2 (the schema's country-2-codes value set).
_ISO_3166_ALPHA_2 = """
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS
BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE
EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM
HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC
LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA
NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW
SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO
TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
"""
COUNTRY_CODES = frozenset(_ISO_3166_ALPHA_2.split())

REQUIRED = {
    "v": ("tg", "vp", "mp", "ma", "dn", "sd", "dt", "co", "is", "ci"),
    "t": ("tg", "tt", "sc", "tr", "tc", "co", "is", "ci"),
    "r": ("tg", "fr", "co", "is", "df", "du", "ci"),
}
GROUP_NAMES = {"v": "vaccination", "t": "test", "r": "recovery"}


@dataclass(frozen=True)
class Generation:
    name: str
    max_len: int  # names, issuer, certificate id, testing centre
    dose_max: int | None
    dob_anchored: bool
    max_items: int | None


GEN_1_0 = Generation("1.0", 50, 9, False, None)
GEN_1_2 = Generation("1.1–1.2", 80, 9, True, None)
GEN_1_3 = Generation("1.3", 80, None, True, 1)


def generation_of(ver: str) -> Generation:
    parts = ver.split(".")
    try:
        major, minor = int(parts[0]), int(parts[1])
    except (ValueError, IndexError):
        return GEN_1_3
    if (major, minor) == (1, 0):
        return GEN_1_0
    if (major, minor) in ((1, 1), (1, 2)):
        return GEN_1_2
    return GEN_1_3


@dataclass
class SchemaResult:
    ok: bool
    version: str | None
    problems: list[str] = field(default_factory=list)


def validate_hcert(hcert: object) -> SchemaResult:
    """Validate a decoded health certificate (claim -260/1, JSON-like). Never raises."""
    try:
        ver = hcert.get("ver") if isinstance(hcert, Mapping) else None
        if _is_str(ver) and VER_RE.match(ver) and generation_of(ver) is GEN_1_3:
            from .dcc_jsonschema import validate_published

            return SchemaResult(*validate_published(hcert, ver))
        return _validate(hcert)
    except Exception as exc:  # noqa: BLE001 - a validator never crashes the gate
        return SchemaResult(False, None, [f"unvalidatable certificate ({type(exc).__name__})"])


def _is_str(value) -> bool:
    return isinstance(value, str)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _validate(hcert: object) -> SchemaResult:
    problems: list[str] = []
    if not isinstance(hcert, Mapping):
        return SchemaResult(False, None, ["the certificate is not an object"])
    ver = hcert.get("ver")
    if not _is_str(ver) or not VER_RE.match(ver):
        problems.append(f"ver must be a version like 1.3.0, got {ver!r}")
        ver_text = None
        gen = GEN_1_3
    else:
        ver_text = ver
        gen = generation_of(ver)

    _check_name(hcert.get("nam"), gen, problems)
    _check_dob(hcert, gen, problems)

    present = [k for k in ("v", "t", "r") if k in hcert and hcert[k] is not None]
    if len(present) != 1:
        what = "none" if not present else ", ".join(present)
        problems.append(f"exactly one of v, t, r must be present (found {what})")
    for kind in present:
        _check_group(kind, hcert[kind], gen, problems)
    return SchemaResult(not problems, ver_text, problems)


def _check_string(
    where: str,
    value,
    problems: list[str],
    *,
    max_len: int | None = None,
    pattern: re.Pattern | None = None,
    anchored: bool = True,
) -> bool:
    if not _is_str(value):
        problems.append(f"{where} must be a string, got {type(value).__name__}")
        return False
    if max_len is not None and len(value) > max_len:
        problems.append(f"{where} is longer than {max_len} characters")
        return False
    if pattern is not None:
        hit = pattern.match(value) if anchored else pattern.search(value)
        if not hit:
            problems.append(f"{where} {value!r} does not match {pattern.pattern}")
            return False
    return True


def _check_name(nam, gen: Generation, problems: list[str]) -> None:
    if nam is None:
        problems.append("nam is required")
        return
    if not isinstance(nam, Mapping):
        problems.append("nam must be an object")
        return
    if "fnt" not in nam:
        problems.append("nam.fnt (standardised surname) is required")
    for key in ("fn", "gn"):
        if key in nam:
            _check_string(f"nam.{key}", nam[key], problems, max_len=gen.max_len)
    for key in ("fnt", "gnt"):
        if key in nam:
            _check_string(
                f"nam.{key}", nam[key], problems, max_len=gen.max_len, pattern=STANDARDISED_NAME_RE
            )


def _check_dob(hcert: Mapping, gen: Generation, problems: list[str]) -> None:
    if "dob" not in hcert:
        problems.append("dob is required")
        return
    if gen.dob_anchored:
        _check_string("dob", hcert["dob"], problems, pattern=DOB_RE)
    else:
        _check_string("dob", hcert["dob"], problems, pattern=DOB_1_0_RE, anchored=False)


def _check_group(kind: str, entries, gen: Generation, problems: list[str]) -> None:
    if not isinstance(entries, list):
        problems.append(f"{kind} must be an array of {GROUP_NAMES[kind]} entries")
        return
    if not entries:
        problems.append(f"{kind} must hold at least one entry")
        return
    if gen.max_items is not None and len(entries) > gen.max_items:
        problems.append(f"{kind} may hold at most {gen.max_items} entry in schema {gen.name}")
    for i, entry in enumerate(entries):
        where = f"{kind}[{i}]"
        if not isinstance(entry, Mapping):
            problems.append(f"{where} must be an object")
            continue
        missing = [f for f in REQUIRED[kind] if f not in entry]
        if missing:
            problems.append(f"{where} lacks required field(s) {', '.join(missing)}")
        for key, value in entry.items():
            _check_field(f"{where}.{key}", kind, key, value, gen, problems)


def _check_field(
    where: str, kind: str, key: str, value, gen: Generation, problems: list[str]
) -> None:
    if key in ("dn", "sd") and kind == "v":
        if not _is_int(value):
            problems.append(f"{where} must be an integer")
        elif value < 1 or (gen.dose_max is not None and value > gen.dose_max):
            upper = f"–{gen.dose_max}" if gen.dose_max else " or more"
            problems.append(f"{where} = {value} is out of range (1{upper})")
        return
    if key == "co":
        if _check_string(where, value, problems, pattern=COUNTRY_RE, anchored=False) and (
            value not in COUNTRY_CODES
        ):
            problems.append(f"{where} {value!r} is not an ISO 3166-1 alpha-2 country code")
        return
    if key in ("is", "ci") or (key == "tc" and kind == "t"):
        _check_string(where, value, problems, max_len=gen.max_len)
        return
    if key == "nm" and kind == "t":
        _check_string(where, value, problems, max_len=80 if gen is GEN_1_3 else None)
        return
    if key == "tg":
        if _check_string(where, value, problems) and value not in DISEASE_AGENT_TARGETED:
            problems.append(f"{where} {value!r} is not a disease in the value set")
        return
    if key == "tt" and kind == "t":
        if _check_string(where, value, problems) and value not in TEST_TYPE:
            problems.append(f"{where} {value!r} is not a test type in the value set")
        return
    if key == "tr" and kind == "t":
        if _check_string(where, value, problems) and value not in TEST_RESULT:
            problems.append(f"{where} {value!r} is not a test result in the value set")
        return
    if key in REQUIRED[kind] or key in ("dr", "nm", "ma"):
        _check_string(where, value, problems)
