"""Masking of what the scanner CLI prints: no full ID number, name, birth date, phone number or
health-code token in any output (REQUIREMENTS: personal data only masked unless a person asked
for it with an audited reason; ``decode`` and ``scan`` have no such option).

One function, :func:`mask_personal`, for strings (a code's text, a message) and for the parsed
JSON (dicts and lists: the same shape, only values masked), as the gate screen shows them:
ID ``110105********002X``, name ``张*``, phone ``138****5678``, birth date ``1998-**-**``,
token ``AbC1***``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .idnumber import RESIDENT_ID_IN_TEXT, mask_id, mask_name, mask_phone

_LEGACY_ID_IN_TEXT = re.compile(  # 15-digit numbers (before 1999): YYMMDD, no check digit
    r"(?<![0-9A-Za-z])([1-9]\d{5}\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3})(?![0-9A-Za-z])"
)

_SEP = r"\s*[:：=]\s*"
_SEP_ZH = r"(?:\s*[:：=]\s*|\s+)"  # 姓名 张伟: a Chinese key may be followed by a space only
# 姓名:张伟 / name=… / Name: Li Qiang / xm=… (a value runs to the next separator; words of Latin
# letters after a space belong to it: a given name and a family name).
_NAME_IN_TEXT = re.compile(
    r"(?:(?:姓名|名字|联系人|持证人|持有人|户主)" + _SEP_ZH + r"|(?:(?<![A-Za-z])(?:(?:user|real|"
    r"full|first|last|given|family|sur|holder)[_\-]?)?name|(?<![A-Za-z])(?:xm|holder))"
    r"(?![A-Za-z])" + _SEP + r")([^\s;；,，、&|/\"'<>()（）:：=]+(?: +[A-Za-z][A-Za-z.'\-]*)*)",
    re.IGNORECASE,
)
# 电话:010-12345678 / tel=… / 手机号：… (any number after a phone key, landlines too)
_PHONE_IN_TEXT = re.compile(
    r"(?:(?:电话|手机号码|手机号|手机|联系电话|联系方式)" + _SEP_ZH + r"|(?<![A-Za-z])(?:phone|"
    r"mobile|tel|telephone|sjh|dh)(?![A-Za-z])" + _SEP + r")(\+?\d[\d\- ]{5,18}\d)(?![0-9A-Za-z])",
    re.IGNORECASE,
)
# a mobile number anywhere: 13812345678, +86 138 1234 5678, 138-1234-5678
_MOBILE_IN_TEXT = re.compile(
    r"(?<![0-9A-Za-z])(?:\+?86[\- ]?)?(1[3-9]\d[\- ]?\d{4}[\- ]?\d{4})(?![0-9A-Za-z])"
)
# secrets in a link's query: ?token=… &code=… (the default health-code patterns' names and more)
_SECRET_IN_LINK = re.compile(
    r"(?<=[?&;])(?:token|access_token|code|c|ticket|secret|sign|signature|sig|key|auth|sid|"
    r"session)=([^&#\s]+)",
    re.IGNORECASE,
)

_NAME_KEYS = frozenset({"fn", "gn", "fnt", "gnt", "holder"})  # DCC nam.*; a pass's holder
_BIRTH_KEYS = frozenset({"dob", "birth_date"})  # DCC; a resident ID's birth date
_SECRET_KEYS = frozenset({"token"})  # a health-code link's token


def mask_token(token: str) -> str:
    """``AbC1***``: the first 4 characters of a long token, nothing of a short one."""
    if token.endswith("***"):  # masked already (a token found by its pattern, then in the link)
        return token
    return token[:4] + "***" if len(token) >= 8 else "***"


def mask_birth(value: str) -> str:
    """``1998-**-**``: the year only (also of ``1998-02``, ``19980226``)."""
    return value[:4] + re.sub(r"\d", "*", value[4:])


def _mask_group(pattern: re.Pattern[str], mask, text: str) -> str:
    def one(m: re.Match[str]) -> str:
        start, end = m.span(1)
        return m.group(0)[: start - m.start()] + mask(m.group(1)) + m.group(0)[end - m.start() :]

    return pattern.sub(one, text)


def _mask_text(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:  # a token a pattern found, wherever it is in the text
        text = text.replace(secret, mask_token(secret))
    text = RESIDENT_ID_IN_TEXT.sub(lambda m: mask_id(m.group(1).upper()), text)
    text = _LEGACY_ID_IN_TEXT.sub(lambda m: mask_id(m.group(1)), text)
    text = _mask_group(_NAME_IN_TEXT, mask_name, text)
    text = _mask_group(_PHONE_IN_TEXT, mask_phone, text)
    text = _mask_group(_MOBILE_IN_TEXT, mask_phone, text)
    return _mask_group(_SECRET_IN_LINK, mask_token, text)


def mask_personal(value, secrets: Iterable[str] = (), key: str | None = None):
    """The value with the personal data in it masked: strings, dicts and lists (the same shape,
    only values changed); others as they are. ``secrets`` are exact strings (a health-code
    token) masked wherever they occur; ``key`` is the dict key the value is under."""
    secrets = tuple(s for s in secrets if s)
    if isinstance(value, str):
        if key in _NAME_KEYS:
            return mask_name(value)
        if key in _BIRTH_KEYS:
            return mask_birth(value)
        if key in _SECRET_KEYS:
            return mask_token(value)
        return _mask_text(value, secrets)
    if isinstance(value, dict):
        return {k: mask_personal(v, secrets, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_personal(v, secrets) for v in value]
    return value


def result_secrets(result) -> tuple[str, ...]:
    """The secrets a parsed code names (a health-code token), to mask in its text too."""
    parsed = getattr(result, "parsed", None) or {}
    token = parsed.get("token") if getattr(result, "kind", None) == "health_code" else None
    return (token,) if isinstance(token, str) and token else ()
