"""The ledger's field lists and the small pieces every part of it uses: the clock's ISO form,
natural room order, ID checks, home-status end dates, record ids, the JSON encoders and the
sealed forms of a member's profile, a household's place and a reading.
"""

from __future__ import annotations

import os
import re
import threading
import time
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import orjson

from ..crypto import FieldCipher
from ..errors import InputError
from ..i18n import id_problem
from ..shared.identity import mask_id, parse_identity
from .model import clean_text

if TYPE_CHECKING:
    pass


HOUSEHOLD_FIELDS = (
    "grid",
    "community",
    "building",
    "unit",
    "room",
    "address",
    "worker",
    "registered_count",
    "resident_count",
    "tested_count",
    "is_rental",
    "landlord_name",
    "landlord_phone",
    "notes",
)
HOUSEHOLD_SECRET = ("address", "landlord_name", "landlord_phone", "notes")
MEMBER_FIELDS = (
    "name",
    "id_number",
    "phone",
    "relation",
    "categories",
    "health_status",
    "status_start",
    "status_end",
    "found_via",
    "vaccination",
    "last_test_date",
    "last_test_result",
    "notes",
)
MEMBER_SECRET = ("name", "id_number", "phone", "notes")


UNKNOWN: Any = object()  # "not looked up yet" (None means: looked up, not there)


@lru_cache(maxsize=16)
def _iso(ts: datetime) -> str:
    return ts.isoformat(timespec="milliseconds")


def sort_key(room: str) -> str:
    """Natural order of room numbers: 2 < 10 < 101, '3-201' by its parts."""
    return re.sub(r"\d+", lambda m: m.group().zfill(8), clean_text(room).upper())


def normalise_id(text: str) -> tuple[str, str]:
    """(normalised number, kind); raises InputError with the parser's reason when unusable."""
    ident = parse_identity(text)
    if ident.problem or not ident.number:
        raise InputError("err.id_invalid", id=mask_id(text or ""), problem=id_problem(ident))
    return ident.number, ident.kind


def end_date_for(status: str, start: str | date, rules) -> str | None:
    """Planned end of home isolation / monitoring: start + configured days."""
    days = {
        "home_isolation": rules.isolation_days,
        "home_monitoring": rules.health_monitoring_days,
    }.get(status)
    if days is None:
        return None
    start_d = date.fromisoformat(start) if isinstance(start, str) else start
    return (start_d + timedelta(days=days)).isoformat()


# Health and address fields sealed together in one ciphertext per record (issue 14 item 7): the
# clear columns of the same names keep only these placeholders (NOT NULL needs a value).
PLACE = ("building", "unit", "room")
PLACE_CLEAR = {"building": "", "unit": "", "room": "", "sort_key": ""}
PROFILE = (
    "name_masked",
    "id_masked",
    "phone_masked",
    "categories",
    "health_status",
    "status_start",
    "status_end",
    "found_via",
    "vaccination",
    "last_test_date",
    "last_test_result",
)
PROFILE_CLEAR: dict[str, Any] = dict.fromkeys(PROFILE) | {
    "categories": "[]",
    "health_status": "none",
}


def profile_json(profile: dict[str, Any]) -> str:
    """The profile as sealed: its values in :data:`PROFILE` order (an array: the names cost
    bytes and time on every member), empty ones null, trailing nulls left out."""
    values = [profile.get(k) or None for k in PROFILE]
    if values[4] == "none":
        values[4] = None
    while values and values[-1] is None:
        values.pop()
    return to_json(values)


def _profile_of(stored: Any) -> dict[str, Any]:
    if isinstance(stored, dict):  # written as an object before the array (same day, dev only)
        stored = [stored.get(k) for k in PROFILE]
    out = dict(zip(PROFILE, stored, strict=False))
    for k in PROFILE[len(stored) :]:
        out[k] = None
    out["categories"] = out["categories"] or []
    out["health_status"] = out["health_status"] or "none"
    return out


def _place_of(stored: Any) -> dict[str, str]:
    if isinstance(stored, dict):
        return stored
    return dict(zip(PLACE, stored, strict=True))


# One encoder each, made once: ``json.dumps`` with options builds a new encoder on every call.
def to_json(value: Any) -> str:
    """Compact JSON text (orjson: a bulk import writes two or three per row; ~8x json's speed)."""
    return orjson.dumps(value).decode()


def to_json_sorted(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


_random = ""  # random hex digits, drawn 4 KiB of randomness at a time
_random_lock = threading.Lock()
_VARIANT = {f"{i:x}": "89ab"[i & 3] for i in range(16)}


def _forget_random() -> None:
    global _random
    _random = ""  # a forked child must not hand out its parent's next ids


os.register_at_fork(after_in_child=_forget_random)


def new_id() -> str:
    """A new record id: a UUID version 7 (RFC 9562) as text, the creation time in ms then
    74 random bits. Time-ordered ids are appended at the end of every index keyed on them
    instead of landing at random pages (a bulk import writes tens of thousands); the time is no
    secret, the rows carry it in clear (``created_at``, ``ts``). A fifth of
    ``str(uuid.uuid4())``'s cost."""
    global _random
    with _random_lock:
        if len(_random) < 19:
            _random = os.urandom(4096).hex()
        r = _random[-19:]
        _random = _random[:-19]
    ms = f"{time.time_ns() // 1_000_000:012x}"
    return f"{ms[:8]}-{ms[8:]}-7{r[:3]}-{_VARIANT[r[3]]}{r[4:7]}-{r[7:]}"


def reading_blob(c: FieldCipher, rid: str, temperature: float | None, symptoms: list[str]) -> bytes:
    """A reading's temperature and symptoms, sealed together (``readings.reading_enc``)."""
    body = to_json({"temperature": temperature, "symptoms": symptoms})
    return c.encrypt(rid, "reading", body) or b""
