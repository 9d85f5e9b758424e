"""Core errors in the screen language, from their codes (never from their English text).

The gate screen says some of them in its own words (with its keys: Ctrl+Y, Ctrl+T …); every
other coded error is rendered from the catalogue as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Translate = Callable[..., str]

# Core error codes the gate screen says in its own words (with its keys: Ctrl+Y, Ctrl+T …);
# every other coded error is rendered from the catalogue as it is.
UI_KEYS = {
    "err.temp_missing": "gate.err.temp_missing",
    "err.temp_is_id": "gate.err.temp_is_id",
    "err.temp_nan": "gate.err.temp_nan",
    "err.temp_range": "gate.err.temp_range",
    "err.id_check_digit": "gate.err.check_digit",
    "err.id_invalid": "gate.err.id_invalid",
    "err.test_future": "gate.err.test_future",
    "err.date": "gate.err.date",
    "err.plate_missing": "vehicle.err.plate",
}


def translate_id_problem(ident: Any, t: Translate) -> str:
    """What ``parse_identity`` found wrong with a number, in the UI language."""
    from ..i18n import id_problem

    msg = id_problem(ident)
    return t(msg.key, **msg.params)


def translate_error(exc: BaseException, t: Translate) -> str:
    """The core's one-line errors in the UI language, from their codes."""
    code = getattr(exc, "code", None)
    if code is None:
        return str(exc)
    return t(UI_KEYS.get(code, code), **getattr(exc, "params", {}))


def scrubbed_error_text(exc: BaseException, t: Translate) -> str:
    """:func:`translate_error` with every ID number in it masked (as the app shows errors)."""
    from ..gate import scrub_ids

    return scrub_ids(translate_error(exc, t))
