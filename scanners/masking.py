"""Masking of what the scanner CLI prints: no full ID number in any output (REQUIREMENTS)."""

from __future__ import annotations

import re

from .idnumber import RESIDENT_ID_IN_TEXT, mask_id

_LEGACY_ID_IN_TEXT = re.compile(  # 15-digit numbers (before 1999): YYMMDD, no check digit
    r"(?<![0-9A-Za-z])([1-9]\d{5}\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3})(?![0-9A-Za-z])"
)


def mask_ids(value):
    """The value with every resident ID number in it masked (strings, dicts, lists; others as
    they are). ``110105********002X`` keeps what an operator compares with the card."""
    if isinstance(value, str):
        value = RESIDENT_ID_IN_TEXT.sub(lambda m: mask_id(m.group(1).upper()), value)
        return _LEGACY_ID_IN_TEXT.sub(lambda m: mask_id(m.group(1)), value)
    if isinstance(value, dict):
        return {k: mask_ids(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_ids(v) for v in value]
    return value
