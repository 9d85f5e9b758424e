"""Crypto-erase a device: ``fieldkit wipe`` for a retired one, and the wipe a revoked device
does at its next contact with the town.

The erase itself (keys first, then files) is :func:`fieldkit.store.erase.crypto_erase`, in the
store layer, so that the sync client (imported by the screens) can erase a revoked device
without importing this entry point; it is re-exported here.

A retired device tells the town before it erases (pending records uploaded, then the audit head
with ``event=wipe``, which the town keeps as a flag on the device). A revoked device cannot: the
town refuses it; it erases itself (:func:`sync.anchor_client.wipe_revoked`) and the sync
report says so.
"""

from __future__ import annotations

import argparse
from typing import Any

from .i18n import t
from .store.erase import crypto_erase

__all__ = ["cmd_wipe", "crypto_erase", "register", "tell_town", "wipe_device"]


def tell_town(store: Any, transport: Any = None) -> bool:
    """Upload what is pending, then send the audit head with ``event=wipe``. False when the
    device is not enrolled or the town cannot be reached (the wipe goes ahead)."""
    if not store.kv.get("sync.device_id"):
        return False
    from sync.anchor_client import exchange_anchor
    from sync.client import TownClient, _identity, run_sync

    from .errors import FieldkitError

    report = run_sync(
        store,
        store.settings,
        operator=store.require_operator().name,
        download=False,
        transport=transport,
    )
    if not report.ok:
        return False
    try:
        ident = _identity(store, store.settings)
        with TownClient(
            ident.url,
            timeout=float(store.settings.sync.timeout_s),
            ca_pem=store.kv.get("sync.tls_ca_pem"),
            transport=transport,
        ) as town:
            return exchange_anchor(store, town, ident, None, event="wipe") is not None
    except FieldkitError:
        return False


def wipe_device(store: Any, transport: Any = None) -> tuple[int, bool]:
    """A retired device, its supervisor logged in: audit, tell the town, crypto-erase.
    Returns (files removed, whether the town was told)."""
    store.audit.append("wipe", store.require_operator().name, {"reason": "retired"})
    told = tell_town(store, transport)
    return crypto_erase(store), told


def cmd_wipe(args: argparse.Namespace) -> int:
    from .cliparts import emit, login, open_cli_store
    from .errors import InputError
    from .store.keyring import Keyring

    store = open_cli_store(args)
    login(store, args)
    Keyring._need_supervisor(store.require_operator())
    code = store.settings.checkpoint.code
    if args.confirm != code:
        store.close()
        raise InputError("security.err.wipe_confirm", code=code)
    files, told = wipe_device(store)
    lang = store.settings.ui.language
    told_text = t("security.wipe.told_yes" if told else "security.wipe.told_no", lang)
    emit(
        args,
        {"wiped": True, "files": files, "town_told": told},
        t("security.wipe.done", lang, files=files, told=told_text),
    )
    return 0


def register(sub: Any) -> None:
    from .cliparts import common_options as _common

    p = sub.add_parser(
        "wipe", help="crypto-erase this device: keys first, then files (supervisor PIN)"
    )
    p.add_argument("--confirm", required=True, metavar="CODE", help="the checkpoint code")
    _common(p, pin=True)
    p.set_defaults(func=cmd_wipe)
