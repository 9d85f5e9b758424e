"""Login and PIN errors in the screen language: one text for the login screen and every PIN
dialog (its own module so the dialogs do not import the login screen)."""

from __future__ import annotations

import time

from ...errors import AuthError, LockedError


def auth_error_text(app, exc: Exception, name: str) -> str:
    """Login errors in the screen language."""
    if isinstance(exc, LockedError):
        wait = max(1, int(exc.until - time.time()) + 1)
        return app.t("login.locked_out", name=name, seconds=wait)
    if isinstance(exc, AuthError) and not (exc.code or "").startswith("tpm."):
        op = app.store.keyring.get(name)
        if op is None:
            return app.t("login.unknown_operator", name=name)
        left = max(0, app.settings.security.max_pin_failures - op.failures)
        return app.t("login.wrong_pin", name=name, left=left)
    return app.error_text(exc)
