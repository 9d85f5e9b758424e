"""What protects this device's data at rest, for ``fieldkit status`` (text and JSON)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..i18n import t


def _tpm_text(state: str, lang: str | None) -> str:
    if state.startswith("unavailable"):
        return t("security.status.tpm_unavailable", lang, why=state.partition(": ")[2])
    return t(f"security.status.tpm_{state}", lang)


def describe(store: Any, lang: str | None = None) -> tuple[dict[str, Any], str]:
    """({kdf, epoch, tpm, min_pin_length, anchor, days_unsynced}, two lines of text)."""
    data = store.keyring.protection()
    data["anchor"] = store.audit.anchor()
    data["days_unsynced"] = store.days_unsynced()
    kdf = ", ".join(f"{k} ×{n}" for k, n in data["kdf"].items()) or "-"
    lines = [
        t(
            "security.status.protection",
            lang,
            kdf=kdf,
            tpm=_tpm_text(data["tpm"], lang),
            epoch=data["epoch"],
            min=data["min_pin_length"],
        )
    ]
    anchor = data["anchor"]
    if anchor:
        at = datetime.fromtimestamp(float(anchor["at"])).astimezone().isoformat(timespec="seconds")
        lines.append(t("security.status.anchor", lang, count=anchor["count"], at=at))
    else:
        lines.append(t("security.status.anchor_none", lang))
    return data, "\n".join(lines)
