"""Login and PIN errors in the screen language: one text for the login screen and every PIN
dialog (its own module so the dialogs do not import the login screen)."""

from __future__ import annotations

import time

from ...errors import AuthError, LockedError


def auth_error_text(app, exc: Exception, name: str) -> str:
    """Login errors in the screen language."""
    if isinstance(exc, LockedError):
        wait = max(1, int(exc.until - time.time()) + 1)
        if _only_supervisor(app, name):  # nobody to ask for a reset: the recovery key
            return app.t("login_trial.locked_out_only_supervisor", name=name, seconds=wait)
        return app.t("login.locked_out", name=name, seconds=wait)
    if isinstance(exc, AuthError) and not (exc.code or "").startswith("tpm."):
        op = app.store.keyring.get(name)
        if op is None:
            return app.t("login.unknown_operator", name=name)
        left = max(0, app.settings.security.max_pin_failures - op.failures)
        return app.t("login.wrong_pin", name=name, left=left)
    return app.error_text(exc)


def _only_supervisor(app, name: str) -> bool:
    """``name`` is the store's only supervisor (no one else could reset their PIN)."""
    store = app.store
    if store is None:
        return False
    supervisors = [op.name for op in store.keyring.list() if op.is_supervisor]
    return supervisors == [name]
