"""Typed errors. Every one a user can meet says what happened and what to do next."""

from __future__ import annotations


class FieldkitError(Exception):
    """Base: ``str(err)`` is one line fit to show a user."""

    exit_code = 1


class ConfigError(FieldkitError):
    exit_code = 2


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

    def __init__(self, message: str, until: float) -> None:
        super().__init__(message)
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
