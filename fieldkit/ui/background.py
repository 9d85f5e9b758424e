"""Background work of the FieldKit app: sync with the town server, changes made elsewhere.

When the device is enrolled with a town server, a background sync runs on a timer
(``sync.interval_s``, backing off while the server cannot be reached). Another timer asks the
store whether another connection committed (``PRAGMA data_version``, one cheap read): another
process (``fieldkit mode``, a ledger import, an operator added) or a sync; either way the open
screens and the status bar follow through one message, :class:`StoreChanged`.
"""

from __future__ import annotations

from typing import Any

from textual import work
from textual.message import Message

from .app_base import FieldkitBase
from .messages import SyncFinished

SYNC_TICK_S = 5.0  # how often the background-sync timer asks whether a run is due
# How often the app asks the store whether another process committed (``fieldkit mode``, a
# ledger import, an operator added): ``PRAGMA data_version`` is one cheap read.
STORE_WATCH_S = 0.5


class StoreChanged(Message):
    """The store changed under the app (another process, or a sync): settings re-read."""


class BackgroundWork(FieldkitBase):
    """The background-sync timer and the store watcher."""

    sync_transport: Any  # tests: an in-process town server
    auto_sync: Any  # sync.client.AutoSync once enrolled
    _sync_error_shown: str | None

    # -- background sync ---------------------------------------------------------------------
    def enrolled(self) -> bool:
        return self.store is not None and bool(self.store.kv.get("sync.device_id"))

    def sync_tick(self) -> None:
        """Timer: start a background sync when one is due (enrolled, unlocked, none running)."""
        if not self.unlocked or not self.enrolled():
            return
        if any(w.group == "sync" and not w.is_finished for w in self.workers):
            return  # the sync screen's own run, or ours, is still going
        if self.auto_sync is None:
            from sync.client import AutoSync

            self.auto_sync = AutoSync(float(self.settings.sync.interval_s))
        if self.auto_sync.due():
            self.background_sync()

    @work(thread=True, exclusive=True, group="sync", exit_on_error=False, name="auto sync")
    def background_sync(self) -> None:
        from sync.client import run_sync

        store = self.opened_store()
        op = store.operator
        report = run_sync(
            store, self.settings, transport=self.sync_transport, operator=op.name if op else None
        )
        self.post_message(SyncFinished(report, auto=True))

    # -- changes made elsewhere -------------------------------------------------------------
    def store_watch_tick(self) -> None:
        """Timer: look (in a worker) whether another connection committed since last time."""
        if self.store is None or any(
            w.group == "store-watch" and not w.is_finished for w in self.workers
        ):
            return
        self.watch_store()

    @work(thread=True, exclusive=True, group="store-watch", exit_on_error=False)
    def watch_store(self) -> None:
        store = self.opened_store()
        version = store.data_version()
        before, self._data_version = getattr(self, "_data_version", None), version
        if before is None or version == before:
            return
        store.apply_kv_overrides()
        self.post_message(StoreChanged())

    def on_store_changed(self, message: StoreChanged) -> None:
        """One path for every change made outside this screen: another process, or a sync that
        brought a mode, rules or lists. The status bar, the open screens and, when the area
        mode moved, a notice and the decision on show."""
        self._payload_config = None  # revocations, town keys
        self.refresh_status()
        mode = self.settings.checkpoint.area_mode
        known, self._known_mode = getattr(self, "_known_mode", None), mode
        for screen in self.screen_stack:
            refresh = getattr(screen, "on_store_changed", None)
            if refresh is not None:
                refresh()
        if known is not None and mode != known:
            if self.unlocked:
                self.notify(self.t("app.mode_changed_elsewhere", mode=self.t("mode." + mode)))
            for screen in self.screen_stack:
                refresh = getattr(screen, "on_mode_changed", None)
                if refresh is not None:
                    refresh()

    def on_sync_finished(self, message: SyncFinished) -> None:
        """After any sync run (ours or the sync screen's): fresh counts; one notice per failure."""
        report = message.report
        if self.auto_sync is not None:
            self.auto_sync.done(report)
        self.post_message(StoreChanged())
        if report.ok:
            if self._sync_error_shown is not None and message.auto:
                self.notify(self.t("app.sync_back"), timeout=5)
            self._sync_error_shown = None
        elif message.auto and self._sync_error_shown != report.error_kind:
            self._sync_error_shown = report.error_kind
            self.notify(
                self.t("app.sync_failed", error=sync_error_text(report, self.t)),
                severity="warning",
                timeout=10,
            )


def sync_error_text(report, t) -> str:
    """A failed run in one short line, in the screen language."""
    kind = report.error_kind or "server"
    return t(f"app.sync_error.{kind}")
