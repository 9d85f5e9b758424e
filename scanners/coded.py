"""A problem sentence that also carries a catalogue code and its parameters.

:class:`Problem` is a ``str`` (the English sentence, unchanged for logs, ``--json`` machine
fields and existing callers) with ``.code`` and ``.params`` so a screen or a command line can
say it in the reader's language (``fieldkit.i18n.t(prefix + code, **params)``). The scanner
modules stay free of the catalogues; rendering is the caller's job.
"""

from __future__ import annotations


class Problem(str):
    """Why something was refused: English text plus a catalogue code and its parameters."""

    code: str
    params: dict

    def __new__(cls, text: str, code: str, **params: object) -> Problem:
        self = super().__new__(cls, text)
        self.code, self.params = code, params
        return self


def code_of(problem: object, default: str) -> tuple[str, dict]:
    """(code, params) of a problem; ``default`` and no parameters for a plain string."""
    return getattr(problem, "code", default), dict(getattr(problem, "params", {}) or {})
