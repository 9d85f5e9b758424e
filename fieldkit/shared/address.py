"""A household's address key: the device files households under it and the town server merges
households created on different devices by it, so both must compute it the same way."""

from __future__ import annotations

import re
import unicodedata
from typing import Any


def clean_text(value: Any) -> str:
    """Cell text: NFKC (full-width digits and letters to ASCII), trimmed; None → ''."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value)
    # ASCII is its own NFKC form: most cells (numbers, IDs, rooms) skip the normaliser.
    return (text if text.isascii() else unicodedata.normalize("NFKC", text)).strip()


# The suffix a building, unit or room may carry: '3栋', '2单元', '101室' (building's first).
_BUILDING, _UNIT, _ROOM = (re.compile(rf"(号楼|[{s}])$") for s in ("栋幢楼号", "单元", "室号户"))


def _norm(v: str, suffix: re.Pattern[str] | None) -> str:
    v = clean_text(v).replace(" ", "").upper()
    if suffix is not None and len(v) > 1:
        v = suffix.sub("", v)
    return v


def address_key(community: str, building: str, unit: str, room: str) -> str:
    """One household per normalised address: '3栋' and '3' are the same building."""
    return "|".join(
        (
            _norm(community, None),
            _norm(building, _BUILDING),
            _norm(unit, _UNIT),
            _norm(room, _ROOM),
        )
    )
