"""Keyboard-wedge input: USB QR scanners and ID-card readers that "type" what they read.

A scanner types a burst of characters far faster than a person, then Enter. The detector is pure
logic fed ``(key, timestamp)`` events — the Textual UI feeds it key events, tests feed it lists —
and tells a scan apart from a person typing in the same field.
"""

from __future__ import annotations

import itertools
import statistics
from dataclasses import dataclass, field

ENTER_KEYS = frozenset({"enter", "\r", "\n", "ctrl+m", "ctrl+j"})


@dataclass(frozen=True)
class WedgeScan:
    text: str
    started: float
    ended: float
    keys: int

    @property
    def chars_per_second(self) -> float:
        return (
            (self.keys - 1) / (self.ended - self.started)
            if self.ended > self.started
            else float("inf")
        )


@dataclass
class KeyboardWedge:
    """Burst detector. ``feed`` returns a :class:`WedgeScan` when Enter ends a scanner burst.

    A burst qualifies when it has at least ``min_length`` characters, the median gap between
    keys is at most ``max_median_gap_ms`` and no gap exceeds ``max_gap_ms``. A pause longer
    than ``max_gap_ms`` starts a new burst (what was typed before is a person's typing).
    """

    min_length: int = 4
    max_median_gap_ms: float = 35.0
    max_gap_ms: float = 120.0
    max_length: int = 8192
    _chars: list[str] = field(default_factory=list)
    _times: list[float] = field(default_factory=list)

    def feed(self, key: str, timestamp: float) -> WedgeScan | None:
        """Feed one key (a character, or "enter") with its time in seconds."""
        if key in ENTER_KEYS or key.lower() in ENTER_KEYS:
            scan = self._finish(timestamp)
            self.reset()
            return scan
        if len(key) != 1:  # tab, shift and other named keys are not part of a payload
            return None
        if self._times and (timestamp - self._times[-1]) * 1000 > self.max_gap_ms:
            self.reset()
        if len(self._chars) < self.max_length:
            self._chars.append(key)
            self._times.append(timestamp)
        return None

    def feed_text(self, text: str, start: float, gap_s: float) -> list[WedgeScan]:
        """Convenience for tests and replays: type ``text`` with a fixed gap; Enter on newline."""
        scans, t = [], start
        for ch in text:
            scan = self.feed("enter" if ch in "\r\n" else ch, t)
            if scan:
                scans.append(scan)
            t += gap_s
        return scans

    def _finish(self, timestamp: float) -> WedgeScan | None:
        if len(self._chars) < self.min_length:
            return None
        times = self._times + [timestamp]
        gaps_ms = [(b - a) * 1000 for a, b in itertools.pairwise(times)]
        if max(gaps_ms) > self.max_gap_ms or statistics.median(gaps_ms) > self.max_median_gap_ms:
            return None
        return WedgeScan("".join(self._chars), self._times[0], timestamp, len(self._chars))

    @property
    def pending(self) -> str:
        return "".join(self._chars)

    def reset(self) -> None:
        self._chars.clear()
        self._times.clear()
