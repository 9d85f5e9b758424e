"""Test helpers that change stored records the way an attacker or an old backup would."""

from __future__ import annotations

from typing import Any

from fieldkit.store.passages import SEALED, seal_json


def resealed(store: Any, passage_id: str, **changes: Any) -> bytes:
    """The passage's sealed values (masked copies, health, category, reasons) with
    ``changes``, sealed again under the record's key: what a restored old copy would hold."""
    row = store.passages.unseal(
        store.g.query("SELECT * FROM passages WHERE id = ?", [passage_id])[0]
    )
    values = {k: row[k] for k in SEALED} | changes
    return store.cipher.encrypt(passage_id, "sealed", seal_json(values))
