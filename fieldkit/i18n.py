"""Message catalogues: every user-facing string, Chinese (default) and English.

Catalogues are TOML files in ``fieldkit/locale/``, flat dotted keys → text with
``{placeholders}``. A key missing in one language falls back to the other, then to the key
itself, so a missing string is visible but never crashes a screen.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Any

LANGUAGES = ("zh", "en")


def _flatten(prefix: str, table: dict[str, Any], out: dict[str, str]) -> None:
    for key, value in table.items():
        full = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            _flatten(full, value, out)
        else:
            out[full] = str(value)


@cache
def catalogue(lang: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for entry in sorted(resources.files("fieldkit.locale").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(f".{lang}.toml") or entry.name == f"{lang}.toml":
            _flatten("", tomllib.loads(entry.read_text("utf-8")), out)
    return out


def t(key: str, lang: str = "zh", /, **params: Any) -> str:
    text = catalogue(lang).get(key)
    if text is None:
        other = "en" if lang == "zh" else "zh"
        text = catalogue(other).get(key, key)
    try:
        return text.format(**params)
    except (KeyError, IndexError, ValueError):
        return text


def reason_text(code: str, params: dict[str, str], lang: str = "zh") -> str:
    return t(f"reason.{code}", lang, **params)


def outcome_text(outcome: str, lang: str = "zh") -> str:
    return t(f"outcome.{outcome}", lang)
