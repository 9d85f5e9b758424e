"""Message catalogues: every user-facing string, Chinese (default) and English.

Catalogues are TOML files in ``fieldkit/locale/``: every ``*.zh.toml`` / ``*.en.toml`` there is
merged, flat dotted keys → text with ``{placeholders}``. Code holds keys, never sentences.

* The language of a run: :func:`set_language` (the CLI sets it from ``--lang``,
  ``FIELDKIT_LANG`` or the config's ``ui.language``); :func:`current_language` otherwise reads
  ``FIELDKIT_LANG`` and defaults to Chinese.
* A key missing in one language falls back to the other and is logged; a key missing in both
  gives a generic "text missing" line with the parameters, never the raw key and never a crash.
* :class:`Msg` is a message not yet rendered (key + parameters): errors and results carry it,
  and the screen or command line renders it in its own language.
"""

from __future__ import annotations

import logging
import os
import re
import tomllib
from functools import cache
from importlib import resources
from typing import Any

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"
log = logging.getLogger("fieldkit.i18n")

# A catalogue key: lower-case dotted words (``gate.err.temp_missing``). Sentences never match.
KEY_SHAPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")

_current: str | None = None


def set_language(lang: str | None) -> None:
    """Language of this process's messages (``None``: back to FIELDKIT_LANG / default)."""
    global _current
    _current = lang if lang in LANGUAGES else None


def env_language() -> str | None:
    value = (os.environ.get("FIELDKIT_LANG") or "").strip().lower()
    return value if value in LANGUAGES else None


def current_language() -> str:
    return _current or env_language() or DEFAULT_LANGUAGE


def _flatten(prefix: str, table: dict[str, Any], out: dict[str, str]) -> None:
    for key, value in table.items():
        full = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            _flatten(full, value, out)
        else:
            out[full] = str(value)


def catalogue_files(lang: str) -> list[str]:
    return sorted(
        e.name
        for e in resources.files("fieldkit.locale").iterdir()
        if e.name.endswith(f".{lang}.toml") or e.name == f"{lang}.toml"
    )


@cache
def catalogue(lang: str) -> dict[str, str]:
    out: dict[str, str] = {}
    base = resources.files("fieldkit.locale")
    for name in catalogue_files(lang):
        try:
            _flatten("", tomllib.loads(base.joinpath(name).read_text("utf-8")), out)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
            # One broken catalogue file must not take every message down with it.
            log.error("catalogue %s cannot be read (%s): its keys fall back", name, exc)
    return out


def has_key(key: str) -> bool:
    return key in catalogue("zh") or key in catalogue("en")


def looks_like_key(text: object) -> bool:
    return isinstance(text, str) and bool(KEY_SHAPE.match(text))


class _Params(dict):
    """Format parameters: a missing one shows as ``?`` (and is logged), never a crash."""

    def __init__(self, key: str, lang: str, params: dict[str, Any]) -> None:
        super().__init__({k: localise(v, lang) for k, v in params.items()})
        self._key = key

    def __missing__(self, name: str) -> str:
        log.warning("message %s: no value for {%s}", self._key, name)
        return "?"


_logged: set[tuple[str, str]] = set()


def _warn_once(key: str, lang: str, what: str) -> None:
    if (key, lang) not in _logged:
        _logged.add((key, lang))
        log.warning("message %s %s in the %s catalogue", key, what, lang)


def t(key: str, lang: str | None = None, /, **params: Any) -> str:
    """The text of ``key`` in ``lang`` (default: the run's language), parameters filled in."""
    lang = lang if lang in LANGUAGES else current_language()
    text = catalogue(lang).get(key)
    if text is None:
        _warn_once(key, lang, "missing")
        other = "en" if lang == "zh" else "zh"
        text = catalogue(other).get(key)
        if text is None:
            shown = ", ".join(str(localise(v, lang)) for v in params.values())
            return catalogue(lang).get("core.text_missing", "?") + (f"（{shown}）" if shown else "")
    try:
        return text.format_map(_Params(key, lang, params))
    except (IndexError, ValueError, AttributeError, TypeError):
        _warn_once(key, lang, "badly formed")
        return text


class Msg:
    """A message to be rendered later, in whatever language the reader has chosen."""

    __slots__ = ("key", "params")

    def __init__(self, key: str, /, **params: Any) -> None:
        self.key = key
        self.params = params

    def render(self, lang: str | None = None) -> str:
        return t(self.key, lang, **self.params)

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        return f"Msg({self.key!r}, **{self.params!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Msg) and (self.key, self.params) == (other.key, other.params)

    def __hash__(self) -> int:
        return hash(self.key)

    def as_json(self, lang: str | None = None) -> dict[str, Any]:
        return {
            "code": self.key,
            "params": {k: plain(v) for k, v in self.params.items()},
            "message": self.render(lang),
        }


def localise(value: Any, lang: str | None = None) -> Any:
    """A parameter as the reader sees it: messages (and errors with a code) rendered."""
    render = getattr(value, "render", None)
    if callable(render):
        return render(lang)
    return value


def plain(value: Any) -> Any:
    """A parameter for JSON: messages as their codes, other values as they are (or str)."""
    if isinstance(value, Msg):
        return {"code": value.key, "params": {k: plain(v) for k, v in value.params.items()}}
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


# Reason parameters that hold a code of their own, rendered through the catalogue.
_CODED_PARAMS = {"outcome": "outcome.", "mode": "mode.", "colour": "colour.", "kind": "kind."}


def reason_text(code: str, params: dict[str, Any], lang: str | None = None) -> str:
    shown = dict(params)
    for name, value in params.items():
        prefix = _CODED_PARAMS.get(name)
        if isinstance(value, str) and prefix and has_key(prefix + value):
            shown[name] = t(prefix + value, lang)
        elif looks_like_key(value) and has_key(value):  # e.g. why = "why.pass_revoked"
            shown[name] = t(value, lang)
    return t(f"reason.{code}", lang, **shown)


def word(what: str) -> Msg | str:
    """A noun the core names in a message (``"test date"``) as a catalogue word, if it has one."""
    key = "word." + what.strip().replace(" ", "_").replace("-", "_")
    return Msg(key) if has_key(key) else what


def id_problem(ident: Any) -> Msg:
    """What is wrong with a parsed identity number (``scanners.idnumber``), as a message."""
    code = getattr(ident, "problem_code", None) or "invalid"
    params = dict(getattr(ident, "problem_params", ()) or ())
    if "kind" in params:
        params["kind"] = Msg("gate.id_kind." + params["kind"])
    return Msg("id.problem." + code, **params)


def outcome_text(outcome: str, lang: str | None = None) -> str:
    return t(f"outcome.{outcome}", lang)


_POSITION = re.compile(r"line (\d+),? column (\d+)")


def syntax_position(err: BaseException) -> Msg:
    """Where a TOML/JSON parser stopped, as a message (the parsers' own words are English)."""
    line, col = getattr(err, "lineno", None), getattr(err, "colno", None)
    if line is None:
        m = _POSITION.search(str(err))
        line, col = (int(m.group(1)), int(m.group(2))) if m else (None, None)
    if line is None:
        return Msg("core.syntax_somewhere")
    return Msg("core.syntax_at", line=line, column=col)
