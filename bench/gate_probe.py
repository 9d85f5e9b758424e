"""Where the app's time goes in the operator loop (``bench/gate.py --only operator --profile``).

Wraps the app's methods on the gate's path (store writes, the key-person hash, the screen's
handlers, Textual's layout and display) with timers while the loop runs, and attributes the time
to the person being served. Per case it prints, per label, the person's total time in it (p50,
p95 across the case's people) and the moment each step started after the person's last Enter
was sent ("@"). Timing only: the wrapped methods are called as they are and restored after.
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
from collections import defaultdict

from bench.gate_operator import MIX


class Probe:
    def __init__(self) -> None:
        self.case: str | None = None
        self.enter_t: float | None = None
        self.person: dict[str, float] = defaultdict(float)
        self.marks: dict[str, float] = {}
        self.rows: list[tuple[str, dict[str, float], dict[str, float]]] = []
        self._saved: list[tuple[object, str, object]] = []
        self._lock = threading.Lock()

    # -- per person --------------------------------------------------------------------------
    def start(self, case: str) -> None:
        self.case, self.enter_t = case, None
        self.person, self.marks = defaultdict(float), {}

    def last_enter(self) -> None:
        self.enter_t = time.monotonic()

    def end(self) -> None:
        if self.case is not None:
            self.rows.append((self.case, dict(self.person), dict(self.marks)))
        self.case = None

    # -- wrapping ----------------------------------------------------------------------------
    def _note(self, label: str, started: float, took: float) -> None:
        with self._lock:
            self.person[label] += took
            if self.enter_t is not None and started >= self.enter_t:
                self.marks.setdefault("@" + label, started - self.enter_t)

    def wrap(self, owner: object, name: str, label: str | None = None) -> None:
        original = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
        label = label or f"{getattr(owner, '__name__', owner)}.{name}"
        self._saved.append((owner, name, original))
        func = original.__func__ if isinstance(original, (staticmethod, classmethod)) else original
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def timed_async(*a, **k):
                t0 = time.monotonic()
                try:
                    return await func(*a, **k)
                finally:
                    self._note(label, t0, time.monotonic() - t0)

            new = timed_async
        else:

            @functools.wraps(func)
            def timed(*a, **k):
                t0 = time.monotonic()
                try:
                    return func(*a, **k)
                finally:
                    self._note(label, t0, time.monotonic() - t0)

            new = timed
        if isinstance(original, staticmethod):
            new = staticmethod(new)
        setattr(owner, name, new)

    def install(self) -> None:
        from textual.app import App
        from textual.screen import Screen
        from textual.widgets import Footer

        from fieldkit.gate import GateService
        from fieldkit.store.passages import Passages, VehiclePassages
        from fieldkit.store.synctables import KeyPersons
        from fieldkit.ui import app as app_mod
        from fieldkit.ui import gate as gate_ui
        from fieldkit.ui import vehicle as vehicle_ui

        for cls, names in (
            (GateService, ("evaluate", "commit", "commit_vehicle")),
            (KeyPersons, ("lookup_id",)),
            (Passages, ("record", "acknowledge", "recent", "counters")),
            (VehiclePassages, ("record",)),
            (
                gate_ui.GateScreen,
                ("handle_scan", "_saved", "_show_lists", "hold", "_released", "type_into_id"),
            ),
            (vehicle_ui.VehicleScreen, ("handle_scan", "add_occupant", "_saved")),
            (app_mod.FieldkitApp, ("on_status_refreshed", "on_store_changed", "_check_barrier")),
            (Footer, ("recompose",)),
            (Screen, ("_refresh_layout",)),
            (App, ("_display",)),
        ):
            for name in names:
                owner = next((k for k in cls.__mro__ if name in k.__dict__), None)
                if owner is not None:
                    self.wrap(owner, name, f"{cls.__name__}.{name}")

    def restore(self) -> None:
        for owner, name, original in reversed(self._saved):
            setattr(owner, name, original)
        self._saved.clear()

    # -- report ------------------------------------------------------------------------------
    def report(self) -> list[str]:
        def p(values: list[float], q: float) -> float:
            values = sorted(values)
            return values[min(len(values) - 1, round(q * (len(values) - 1)))] * 1000

        out = []
        for case in [c for c, _ in MIX]:
            rows = [r for r in self.rows if r[0] == case]
            if not rows:
                continue
            out.append(f"  {case} ({len(rows)} people): label  p50 / p95 ms per person")
            labels = sorted({k for r in rows for k in (*r[1], *r[2])})
            for label in labels:
                if label.startswith("@"):
                    values = [r[2][label] for r in rows if label in r[2]]
                else:
                    values = [r[1].get(label, 0.0) for r in rows]
                if not values or max(values) < 0.0005:
                    continue
                out.append(
                    f"    {label:<42} {p(values, 0.5):7.1f} / {p(values, 0.95):7.1f}"
                    f"{'' if len(values) == len(rows) else f'  (n={len(values)})'}"
                )
        return out
