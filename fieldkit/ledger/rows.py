"""A ledger sheet's rows to ledger fields: the header words offices use, finding the header
under title rows, and parsing one row (dates, counts, phones, ID cells, yes/no, addresses) into
(household fields, member fields) or a :class:`RowError` with its reason code.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..i18n import id_problem, t
from ..shared.identity import mask_id, parse_identity
from ..sheets import SheetError, layout
from ..sheets.reader import read_rows as sheet_rows
from . import households  # the clock read at each call: tests set households.now_local
from .headers import HEADERS, header_field, normalise_header  # noqa: F401  (re-exported)
from .households import HOUSEHOLD_FIELDS, MEMBER_FIELDS
from .model import (
    EMPTY_WORDS,
    clean_text,
    parse_found_via,
    parse_status,
    phone_problem,
    read_categories,
)


class ImportFileError(SheetError):
    """The file as a whole cannot be read (not a spreadsheet, no header found ...)."""

    exit_code = 2


# The sheet fills every ledger field but the household's notes (a member's 备注 column is theirs).
HOUSEHOLD_KEYS = tuple(f for f in HOUSEHOLD_FIELDS if f != "notes")
MEMBER_KEYS = MEMBER_FIELDS
_ADDRESS = re.compile(
    r"(?P<community>.*?(?:小区|花园|苑|村|组|社区))?\s*"
    r"(?P<building>[0-9A-Za-z一二三四五六七八九十]+)(?:栋|幢|号楼)\s*"
    r"(?:(?P<unit>[0-9A-Za-z一二三四五六七八九十]+)单元)?\s*"
    r"(?P<room>[0-9A-Za-z\-]+)(?:室|号)?\s*$"
)
_DASHED = re.compile(r"^(?P<building>\d+)-(?P<unit>\d+)-(?P<room>\d+)$")
_TRUE = {"是", "y", "yes", "1", "√", "✓", "出租", "true"}
_FALSE = {"否", "n", "no", "0", "×", "自住", "false"}


# -- reading the file -----------------------------------------------------------------------


def read_rows(path: Path) -> list[list[Any]]:
    """The first sheet (or the CSV) as rows of raw cell values, merged ranges filled: the one
    reader every import shares (:mod:`fieldkit.sheets.reader`), bounded against hostile files."""
    try:
        return sheet_rows(path)
    except SheetError as err:
        raise ImportFileError(err.code or "", **err.params) from None


def find_header(rows: list[list[Any]]) -> tuple[int, int, list[str | None], list[str]]:
    """(first header row, first data row, field per column, unknown header labels)."""
    try:
        first, data_start, labels, unknown = layout.find_header(
            rows, header_field, examples="姓名, 身份证号, 楼栋, 单元, 房号"
        )
    except SheetError as err:
        raise ImportFileError(err.code or "", **err.params) from None
    if not ({"building", "room", "address"} & set(filter(None, labels))):
        raise ImportFileError("sheets.error.no_address_columns")
    return first, data_start, labels, unknown


# -- one row ---------------------------------------------------------------------------------


class RowError(Exception):
    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


def _text(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return clean_text(value)


def parse_date(value: Any, column: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    s = clean_text(value)
    if s.lower() in EMPTY_WORDS:
        return None
    s2 = re.sub(r"[年月./]", "-", s).replace("日", "").strip("-")
    s2 = s2.split(" ")[0].split("T")[0]
    try:
        if re.fullmatch(r"\d{8}", s2):
            return date(int(s2[:4]), int(s2[4:6]), int(s2[6:])).isoformat()
        parts = [int(p) for p in s2.split("-")]
        if len(parts) == 3:
            return date(*parts).isoformat()
        if len(parts) == 2:  # '4月1日': this year
            return date(households.now_local().year, *parts).isoformat()
    except ValueError:
        pass
    raise RowError("bad_date", column=column, value=s)


def parse_count(value: Any, column: str) -> int | None:
    if value is None:
        return None
    s = clean_text(value).rstrip("人")
    if not s or s.lower() in EMPTY_WORDS:
        return None
    if re.fullmatch(r"\d{1,3}", s):
        return int(s)
    raise RowError("bad_count", column=column, value=s)


_MOBILE = re.compile(r"1[3-9]\d{9}")


def parse_phone(value: Any, column: str) -> str | None:
    """The phone cell's number(s), each checked as the add-member form checks one
    (:func:`model.phone_problem`): ``1330000`` is refused (trial_town item 23)."""
    if value is None:
        return None
    s = clean_text(value)
    if _MOBILE.fullmatch(s):
        return s  # the common case: one mobile number, digits only
    if not s or s.lower() in EMPTY_WORDS:
        return None
    parts = [re.sub(r"[\s\-()]", "", p) for p in re.split(r"[/,，、;；]", s) if p.strip()]
    for p in parts:
        if problem := phone_problem(p):
            raise RowError("bad_phone", column=column, value=s, problem=problem)
    if not parts:
        raise RowError("bad_phone", column=column, value=s, problem="form")
    return "/".join(parts)


def parse_id_cell(value: Any) -> tuple[str, str] | None:
    if value is None or value == "":
        return None
    if isinstance(value, float):
        # Excel kept the number as a float: the last digits of an 18-digit ID are gone.
        if not value.is_integer() or value >= 1e15:
            raise RowError("id_as_number")
        value = int(value)
    text = clean_text(value)
    if not text or text.lower() in EMPTY_WORDS:
        return None
    ident = parse_identity(text)
    if ident.problem or not ident.number:
        code = (
            "id_check_digit"
            if ident.kind == "resident_id"
            and not ident.check_ok
            and ident.birth_date is not None
            and "check digit" in (ident.problem or "")
            else "id_invalid"
        )
        raise RowError(code, value=mask_id(ident.number or text), why=id_problem(ident))
    return ident.number, ident.kind


def parse_bool(value: Any, column: str) -> bool | None:
    s = clean_text(value).lower()
    if not s:
        return None
    if s in _TRUE:
        return True
    if s in _FALSE or s in EMPTY_WORDS:
        return False
    raise RowError("bad_yes_no", column=column, value=s)


_HOUSEHOLD_TEXT = (
    "grid",
    "community",
    "building",
    "unit",
    "room",
    "address",
    "worker",
    "landlord_name",
)


_HOUSEHOLD_CELLS = (
    *_HOUSEHOLD_TEXT,
    "registered_count",
    "resident_count",
    "tested_count",
    "is_rental",
    "landlord_phone",
)


def _parse_household(cells: dict[str, Any]) -> dict[str, Any]:
    h: dict[str, Any] = {}
    for key in _HOUSEHOLD_TEXT:
        v = cells.get(key)  # an empty cell is absent (import_rows leaves it out)
        if v is not None:
            v = _text(v)
        h[key] = v if v and v.lower() not in EMPTY_WORDS else None
    for key in ("registered_count", "resident_count", "tested_count"):
        h[key] = parse_count(cells.get(key), key)
    h["is_rental"] = parse_bool(cells.get("is_rental"), "is_rental")
    h["landlord_phone"] = parse_phone(cells.get("landlord_phone"), "landlord_phone")
    if h["room"] and not h["building"] and (dm := _DASHED.match(h["room"])):
        h.update(building=dm["building"], unit=dm["unit"], room=dm["room"])
    if not (h["building"] and h["room"]) and h["address"]:
        am = _ADDRESS.search(h["address"].replace(" ", ""))
        if am:
            for key in ("community", "building", "unit", "room"):
                if am[key] and not h[key]:
                    h[key] = am[key]
    return h


@lru_cache(maxsize=1024)
def _kept_note(column: str, words: tuple[str, ...], lang: str | None) -> str:
    """'人员类别：户籍人口': a cell's words no ledger field holds, as kept in the notes."""
    return t(
        "ledger.note.kept",
        lang,
        column=t(f"ledger.field.{column}", lang),
        value=t("ledger.note.words_sep", lang).join(words),
    )


def parse_row(
    cells: dict[str, Any],
    households: dict[tuple, dict[str, Any]] | None = None,
    warnings: list[tuple[str, dict[str, Any]]] | None = None,
    lang: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(household fields, member fields) of one row; raises RowError.

    ``households``: a bulk import's memo of household cells already parsed (a household's cells
    repeat on every member's row); only cells that parsed are kept, so a bad one is refused on
    every row that carries it.

    ``warnings``: gets (reason code, parameters) for a cell kept or left out without refusing
    the person (trial_town item 2): 人员类别 words no category means go to the member's notes
    (户籍人口, 外来人员 … silently, an unknown word with a warning), an unknown 健康管理状态
    leaves the status empty with a warning. ``lang``: the language of those notes."""
    if households is None:
        h = _parse_household(cells)
    else:
        values = tuple(map(cells.get, _HOUSEHOLD_CELLS))
        seen = values + tuple(map(type, values))  # 1 and 1.0 are equal keys, not equal cells
        memo = households.get(seen)  # shared between rows: the caller reads, never changes it
        if memo is None:
            memo = households[seen] = _parse_household(cells)
        h = memo
    m: dict[str, Any] = {}
    ident = parse_id_cell(cells.get("id_number"))
    if ident:
        m["id_number"], m["id_kind"] = ident
    name = _text(cells.get("name"))
    m["name"] = name if name and name.lower() not in EMPTY_WORDS else None
    m["phone"] = parse_phone(cells.get("phone"), "phone")
    cats: list[str] = []
    kept: list[str] = []
    for key in ("categories", "occupation"):
        if cells.get(key) is not None:
            found, residence, unknown = read_categories(_text(cells[key]))
            if residence or unknown:
                kept.append(_kept_note(key, residence + unknown, lang))
                # An occupation that is no watch group (教师, 退休) is no news: notes only.
                if unknown and key == "categories" and warnings is not None:
                    warnings.append(
                        (
                            "unknown_category",
                            {"value": t("ledger.note.words_sep", lang).join(unknown)},
                        )
                    )
            cats += [c for c in found if c not in cats]
    m["categories"] = cats or None
    if cells.get("health_status") not in (None, ""):
        status = parse_status(_text(cells.get("health_status")))
        if status is None:
            if warnings is not None:
                warnings.append(("unknown_status", {"value": _text(cells["health_status"])}))
        else:
            m["health_status"] = status or None
    m["status_start"] = parse_date(cells.get("status_start"), "status_start")
    m["status_end"] = parse_date(cells.get("status_end"), "status_end")
    m["last_test_date"] = parse_date(cells.get("last_test_date"), "last_test_date")
    for key in ("relation", "vaccination", "last_test_result", "notes"):
        v = cells.get(key)
        if v is not None:
            v = _text(v)
        m[key] = v if v and v.lower() not in EMPTY_WORDS else None
    if kept:
        if m["notes"]:
            kept.insert(0, m["notes"])
        m["notes"] = t("ledger.note.sep", lang).join(kept)
    fv = cells.get("found_via")
    m["found_via"] = (parse_found_via(_text(fv)) or None) if fv is not None else None
    if not (h["building"] and h["room"]):
        raise RowError("address_missing")
    return h, m
