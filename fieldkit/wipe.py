"""Crypto-erase a device: ``fieldkit wipe`` for a retired one, and the wipe a revoked device
does at its next contact with the town.

Keys go first: every wrapped key (operators, recovery, data-key epochs, device secrets) is
overwritten with random bytes and deleted, with ``secure_delete`` on, and the WAL is truncated
into the database; only then are the files overwritten and removed. Flash storage may keep old
blocks whatever is overwritten, which is why the keys go first: without them every personal
field left anywhere is AES-256-GCM ciphertext under a key that no longer exists.

A retired device tells the town before it erases (pending records uploaded, then the audit head
with ``event=wipe``, which the town keeps as a flag on the device). A revoked device cannot: the
town refuses it; it erases itself and the sync report says so.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from .i18n import t

_KEY_TABLES = (
    ("operators", ("salt", "wrapped", "sealed", "pubkey")),
    ("recovery", ("salt", "wrapped", "sealed", "pubkey")),
    ("key_epochs", ("wrapped",)),
    ("secrets", ("blob",)),
)


def _store_files(path: Path) -> list[Path]:
    return [Path(f"{path}{suffix}") for suffix in ("", "-wal", "-shm", "-journal")]


def crypto_erase(store: Any) -> int:
    """Destroy the store's keys, then its files. Returns the number of files removed."""
    g = store.g
    with g.lock:
        conn = g.db.conn
        conn.execute("PRAGMA secure_delete=ON")
        with g.tx() as db:
            for table, columns in _KEY_TABLES:
                sets = ", ".join(
                    f"{c} = CASE WHEN {c} IS NULL THEN NULL"
                    f" ELSE randomblob(max(length({c}), 1)) END"
                    for c in columns
                )
                db.execute(f"UPDATE {table} SET {sets}")
                db.execute(f"DELETE FROM {table}")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    removed = 0
    for f in _store_files(store.path):
        try:
            size = f.stat().st_size
        except FileNotFoundError:
            continue
        with open(f, "r+b") as fh:
            fh.write(os.urandom(min(size, 64 * 1024 * 1024)))
            fh.flush()
            os.fsync(fh.fileno())
        f.unlink()
        removed += 1
    return removed


def wipe_revoked(store: Any, report: Any) -> None:
    """The town revoked this device (found at a sync): erase it, and say so in the report."""
    try:
        store.audit.append("wipe", "town", {"reason": "device revoked by the town"})
    except Exception:  # noqa: BLE001 - the erase must happen even if the audit cannot be written
        pass
    crypto_erase(store)
    report.ok = False
    report.error = t("security.err.revoked_wiped")
    report.error_kind = "wiped"


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
