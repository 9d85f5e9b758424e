"""What every part of the FieldKit app shares: its state, its language, the status bar.

:class:`FieldkitApp` (:mod:`.app`) is put together from parts, each in its own module and each a
subclass of :class:`FieldkitBase`: keyboard and scanner input (:mod:`.keyinput`), the camera
(:mod:`.camera`), background sync and the store watcher (:mod:`.background`) and navigation from
the screen registry (:mod:`.navigation`). The base declares the state they share (set in
``FieldkitApp.__init__``) and the few services every part uses.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from textual import work
from textual.app import App
from textual.reactive import reactive
from textual.screen import Screen

from ..config import Settings
from ..i18n import t as translate
from .errortext import scrubbed_error_text
from .messages import StatusRefreshed

if TYPE_CHECKING:
    from scanners.payloads import PayloadConfig

    from ..store import Store
    from .messages import ScanRead
    from .screen_entry import ScreenEntry


class FieldkitBase(App[int]):
    """The state and services the app's parts share (see the module docstring)."""

    # Values for the status bar; screens never poke it, they ask for a refresh.
    status: reactive[dict[str, Any]] = reactive(dict, always_update=True)

    settings: Settings
    store: Store | None  # None while the app still opens it (see .app)
    store_ready: threading.Event
    store_error: BaseException | None
    sources: Any  # a scanners.sources.SourceSpec, a FrameSource, a string or None
    lang: str
    clock: Callable[[], float]
    entries: list[ScreenEntry]
    camera_state: str
    camera_detail: str
    warned_no_shift: bool
    last_input: float  # the clock at the last key or click (the idle lock)
    _known_mode: str
    _payload_config: PayloadConfig | None
    _opened: dict[str, Screen]

    if TYPE_CHECKING:  # parts of the app that screens use, defined in their own modules

        async def open_screen(self, screen_id: str) -> None: ...  # .navigation

        def take_held_scan(self) -> ScanRead | None: ...  # .keyinput

    # -- the store ---------------------------------------------------------------------------
    @property
    def unlocked(self) -> bool:
        return self.store is not None and self.store.is_unlocked

    def opened_store(self) -> Store:
        """The store, where the app needs one open (after login); RuntimeError if none is."""
        if self.store is None:
            raise RuntimeError("no store is open yet")
        return self.store

    def wait_for_store(self, timeout: float = 120.0) -> Store:
        """In a worker thread: the store, once open (raises what opening it raised)."""
        self.store_ready.wait(timeout)
        if self.store_error is not None:
            raise self.store_error
        if self.store is None:
            raise TimeoutError("the store did not open")
        return self.store

    # -- language ----------------------------------------------------------------------------
    def t(self, key: str, **params: Any) -> str:
        return translate(key, self.lang, **params)

    def error_text(self, exc: BaseException) -> str:
        """A user error in the screen language where we know it, else the core's own line."""
        return scrubbed_error_text(exc, self.t)

    def notify(self, message: str, *, title: str = "", **kwargs: Any) -> None:
        """Every notice, whoever raises it: no ID number shown unmasked."""
        from ..gate import scrub_ids

        super().notify(scrub_ids(str(message)), title=scrub_ids(title), **kwargs)

    # -- what the payload parsers need --------------------------------------------------------
    def payload_config(self) -> PayloadConfig:
        """What the payload parsers need: town keys for passes, revocations, code patterns."""
        if self._payload_config is None:
            from scanners.payloads import HealthCodePattern, PayloadConfig

            from ..store.synctables import town_pass_keys

            store = self.opened_store()
            keys = town_pass_keys(store)
            patterns = tuple(
                HealthCodePattern(f"health-code {i + 1}", p)
                for i, p in enumerate(self.settings.camera.health_code_patterns)
            )
            from scanners.payloads.healthcode import DEFAULT_PATTERNS

            self._payload_config = PayloadConfig(
                health_code_patterns=patterns + DEFAULT_PATTERNS,
                pass_public_keys=keys,
                revoked_passes=frozenset(store.revocations.all()),
            )
        return self._payload_config

    # -- status bar --------------------------------------------------------------------------
    @work(thread=True, exit_on_error=False, group="status", exclusive=True)
    def refresh_status(self) -> None:
        store = self.store
        if store is None:
            return  # still opening; refreshed once it is open
        cp = self.settings.checkpoint
        updated = store.keypersons.updated_at()
        stale = False
        if updated:
            try:
                then = datetime.fromisoformat(updated)
                age_h = (datetime.now(then.tzinfo) - then).total_seconds() / 3600
                stale = age_h > self.settings.sync.stale_after_hours
            except ValueError:
                pass
        op = store.operator
        self.post_message(
            StatusRefreshed(
                {
                    "checkpoint": f"{cp.name} {cp.code}",
                    "mode": cp.area_mode,
                    "shift": store.shifts.current_id(),
                    "operator": op.name if op else None,
                    "role": op.role if op else None,
                    "pending": store.outbox.counts().get("pending", 0),
                    "keylist_at": updated,
                    "keylist_stale": stale,
                }
            )
        )

    def on_status_refreshed(self, message: StatusRefreshed) -> None:
        self.status = {
            **message.values,
            "camera": self.camera_state,
            "camera_detail": self.camera_detail,
        }
