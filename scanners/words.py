"""What the scanner's coded problems and source statuses say, in the reader's language.

The scanner modules carry codes and parameters (:mod:`scanners.coded`, ``SourceStatus.code``);
this is the one place that turns them into catalogue text (``fieldkit/locale/leaks3.*.toml``).
A problem without a code is shown as it is (the English sentence), never lost.
"""

from __future__ import annotations

from collections.abc import Iterable

from fieldkit.i18n import t


def _localised(params: dict, lang: str | None) -> dict:
    """DCC certificate types travel as codes (``v,t``): say them as words."""
    out = dict(params)
    for name, value in params.items():
        if name.endswith("_types"):
            codes = [c for c in str(value).split(",") if c]
            words = [t("dcc.type." + c, lang) for c in codes] or [t("dcc.type.unknown", lang)]
            out[name] = t("dcc.type.join", lang).join(words)
    return out


def coded_text(key: str | None, params: Iterable | dict, fallback: str, lang: str | None = None):
    """The catalogue text of ``key`` with ``params``; ``fallback`` when there is no key."""
    if not key:
        return fallback
    return t(key, lang, **_localised(dict(params), lang))


def result_problem(result, lang: str | None = None) -> str:
    """A :class:`ScanResult`'s problem as a person reads it."""
    return coded_text(
        getattr(result, "problem_code", None),
        getattr(result, "problem_params", ()) or (),
        getattr(result, "problem", None) or "",
        lang,
    )


def status_text(status, lang: str | None = None) -> str:
    """A frame source's status line (camera / video / folder)."""
    if not getattr(status, "code", ""):
        return status.message
    return t("source.status." + status.code, lang, **dict(status.params))


def state_text(state: str, lang: str | None = None) -> str:
    return t("camera." + state, lang)


def engine_why(problem, lang: str | None = None) -> str:
    """Why a scan engine cannot be used (install commands kept as they are)."""
    code = getattr(problem, "code", None)
    if not code:
        return str(problem or t("engine.why.unknown", lang))
    return t("engine.why." + code, lang, **dict(getattr(problem, "params", {})))


def health_pattern_error(item: str, lang: str | None = None) -> str:
    return t("scanout.health_pattern", lang, given=item)
