"""Messages between workers, the app and screens: small dataclasses, all in one place.

High-rate ones (camera status) coalesce with ``can_replace`` so a busy camera never floods the
message queue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from textual.message import Message


@dataclass(eq=False)
class CameraStatus(Message):
    """The frame source changed state (connected / reconnecting / missing / ended)."""

    state: str
    detail: str = ""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, CameraStatus)


@dataclass(eq=False)
class ScanRead(Message):
    """A code was read: from the camera ("scan") or from a keyboard-wedge scanner ("wedge").

    ``result`` is the payload parser's ``ScanResult``; ``t0`` is when the read was known
    (``time.perf_counter``), for the benchmark.
    """

    text: str
    result: Any
    source: str  # scan | wedge
    t0: float = 0.0


@dataclass(eq=False)
class StatusRefreshed(Message):
    """Fresh numbers for the status bar (counted in a worker)."""

    values: dict[str, Any] = field(default_factory=dict)

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, StatusRefreshed)


@dataclass(eq=False)
class LoggedIn(Message):
    """An operator unlocked the store."""

    operator: str
    role: str


@dataclass(eq=False)
class RecordCommitted(Message):
    """A person at the gate was dealt with: a gate or vehicle record committed (screens
    refresh their tables and counters), or, with ``kind="cleared"`` and no ``record_id``, the
    form cleared with Esc and nothing recorded. Either way the image queue (``--images``) reads
    the next person."""

    record_id: str
    kind: str = "passage"


@dataclass(eq=False)
class SyncProgress(Message):
    """Records handled so far in a running sync (coalesces: only the latest matters)."""

    done: int
    total: int

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SyncProgress)


@dataclass(eq=False)
class SyncFinished(Message):
    """A sync run ended; ``report`` is the sync client's ``SyncReport``; ``auto``: the app's
    background sync (not a run the operator started)."""

    report: Any
    auto: bool = False
