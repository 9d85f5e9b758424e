"""Typed errors. Every one a user can meet says what happened and what to do next.

An error carries a catalogue code and parameters: ``InputError("gate.err.temp_nan",
value="3x")``. ``str(err)`` renders it in the run's language, ``err.render(lang)`` in another;
screens and command lines branch on ``err.code``, never on the text. An error raised the old way,
with an English sentence, still works (``err.code`` is then ``None``) while code is converted.
"""

from __future__ import annotations

from typing import Any

from .i18n import looks_like_key, plain, t


class FieldkitError(Exception):
    """Base: ``str(err)`` is one line fit to show a user, in the run's language."""

    exit_code = 1

    def __init__(self, code: str = "", /, **params: Any) -> None:
        super().__init__(code, *params.values())
        self.code: str | None = code if looks_like_key(code) else None
        self.params: dict[str, Any] = params
        self._text = code

    def render(self, lang: str | None = None) -> str:
        if self.code is None:
            return self._text
        return t(self.code, lang, **self.params)

    def __str__(self) -> str:
        return self.render()

    def as_json(self, lang: str | None = None) -> dict[str, Any]:
        """Stable code and parameters for ``--json``, plus the message in the chosen language."""
        return {
            "error": self.code or type(self).__name__,
            "params": {k: plain(v) for k, v in self.params.items()},
            "message": self.render(lang),
        }


class ConfigError(FieldkitError):
    exit_code = 2
    language: str | None = None  # the language the config file asks for, when it names one


class StoreError(FieldkitError):
    """The database file cannot be used (corrupt, foreign, newer schema)."""

    exit_code = 3


class NotInitialisedError(StoreError):
    pass


class AuthError(FieldkitError):
    """Wrong PIN, unknown operator."""

    exit_code = 4


class LockedError(AuthError):
    """Too many wrong PINs: locked out until a time."""

    def __init__(self, code: str, until: float, /, **params: Any) -> None:
        super().__init__(code, **params)
        self.until = until


class PermissionDenied(AuthError):
    pass


class TamperedError(FieldkitError):
    """A ciphertext failed authentication: the record was altered or moved."""

    exit_code = 5


class InputError(FieldkitError):
    """Bad input from a user (temperature out of range, bad date ...)."""

    exit_code = 2


class SyncError(FieldkitError):
    exit_code = 6
