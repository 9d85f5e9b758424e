"""Cell text and address keys as they were when issue 17 was filed (fieldkit/ledger/model.py at
commit e158bbe, fieldkit/shared/address.py at a5e3d45: the same code): bench/old_importer.py and
bench/old_ledger.py use these, so that speeding up fieldkit.shared.address (the ASCII fast path of
``clean_text``, precompiled suffixes) does not also speed up "today's" import, which calls them five
times as often. Not used by FieldKit."""

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
    return unicodedata.normalize("NFKC", str(value)).strip()


def address_key(community: str, building: str, unit: str, room: str) -> str:
    """One household per normalised address: '3栋' and '3' are the same building."""

    def norm(v: str, suffixes: str) -> str:
        v = clean_text(v).replace(" ", "").upper()
        if suffixes and len(v) > 1:
            v = re.sub(rf"(号楼|[{suffixes}])$", "", v)
        return v

    return "|".join(
        (norm(community, ""), norm(building, "栋幢楼号"), norm(unit, "单元"), norm(room, "室号户"))
    )
