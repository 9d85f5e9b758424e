"""Area mode and rule overrides the town sets for some checkpoints only.

Kept as ``changes`` of kind ``scoped``: ``{"checkpoints": [codes], "rules": {…}}`` (the
checkpoint's complete set of overrides, ``{}`` = none of its own) or ``{"checkpoints": [codes],
"mode": "high"}`` (``""`` = back to the town-wide mode). A device applies one only when its own
checkpoint code is named; there a checkpoint's value wins over the town-wide one."""

from __future__ import annotations

from typing import Any

KIND = "scoped"


def current(repo: Any, code: str, what: str) -> Any:
    """The newest ``what`` ("rules" or "mode") set for checkpoint ``code``, or None."""
    for ch in repo.changes_of(KIND):
        data = ch.data if isinstance(ch.data, dict) else {}
        if code in (data.get("checkpoints") or []) and what in data:
            return data[what]
    return None


def push(repo: Any, code: str, what: str, value: Any, now: float) -> int:
    return repo.add_changes(KIND, [{"checkpoints": [code], what: value}], now)


def known_checkpoints(repo: Any) -> list[str]:
    """Checkpoint codes named by earlier scoped changes (the console adds devices' ones)."""
    codes: set[str] = set()
    for ch in repo.changes_of(KIND):
        if isinstance(ch.data, dict):
            codes.update(str(c) for c in ch.data.get("checkpoints") or [])
    return sorted(codes)
