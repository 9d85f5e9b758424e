"""Crypto-erase a store: keys first, then files. The mechanism under ``fieldkit wipe``
(:mod:`fieldkit.wipe`, a retired device) and under the wipe a revoked device does at its next
sync (:func:`sync.anchor_client.wipe_revoked`); it lives in the store layer so both can use it.

Every wrapped key (operators, recovery, data-key epochs, device secrets) is overwritten with
random bytes and deleted, with ``secure_delete`` on, and the WAL is truncated into the database;
only then are the files overwritten and removed. Flash storage may keep old blocks whatever is
overwritten, which is why the keys go first: without them every personal field left anywhere is
AES-256-GCM ciphertext under a key that no longer exists.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

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
