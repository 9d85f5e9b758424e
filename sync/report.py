"""What one sync run did: :class:`SyncReport`, filled by upload, download and the audit anchor."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class SyncReport:
    ok: bool = True
    sent: int = 0
    stored: int = 0
    duplicate: int = 0
    quarantined: int = 0
    batches: int = 0
    bytes_sent: int = 0
    pending: int = 0
    keypersons_added: int = 0
    keypersons_removed: int = 0
    revocations: int = 0
    mode: str | None = None
    rules_changed: bool = False  # the town sent its rules (again)
    rules_changed_keys: list[str] = field(default_factory=list)  # rules whose value changed
    cursor: int = 0
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    error_kind: str | None = None  # network | auth | server | clock | protocol | wiped
    wipe_ordered: bool = False  # the town ordered a wipe (sync.anchor_client): done at the end

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        if self.error:
            return f"sync failed: {self.error}"
        parts = [f"sent {self.sent} ({self.stored} new, {self.duplicate} already there)"]
        if self.quarantined:
            parts.append(f"{self.quarantined} quarantined")
        parts.append(f"{self.pending} pending")
        parts.append(f"key persons +{self.keypersons_added}/-{self.keypersons_removed}")
        if self.revocations:
            parts.append(f"{self.revocations} passes revoked")
        if self.mode:
            parts.append(f"mode {self.mode}")
        if self.rules_changed:
            parts.append(
                "town rules "
                + (
                    ", ".join(self.rules_changed_keys) + " changed"
                    if self.rules_changed_keys
                    else "unchanged"
                )
            )
        return "synced: " + ", ".join(parts)
