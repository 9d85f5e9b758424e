"""Identity numbers: the rules live in :mod:`fieldkit.shared.identity` (the town server uses
them too); this module keeps the name the scanners, screens and imports use."""

from fieldkit.shared.identity import (
    RESIDENT_ID_IN_TEXT,
    IdentityNumber,
    find_resident_id,
    mask_id,
    mask_name,
    mask_phone,
    normalise_id_text,
    parse_identity,
    resident_check_char,
    upgrade_15_to_18,
)

__all__ = [
    "RESIDENT_ID_IN_TEXT",
    "IdentityNumber",
    "find_resident_id",
    "mask_id",
    "mask_name",
    "mask_phone",
    "normalise_id_text",
    "parse_identity",
    "resident_check_char",
    "upgrade_15_to_18",
]
