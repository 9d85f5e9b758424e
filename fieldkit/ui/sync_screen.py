"""The sync screen: upload the outbox to the town server and fetch its updates, on demand.

Shows the last successful sync, how old the key-person list is (and the warnings the sync
client raises: stale list, clock skew, not enrolled), the queue (pending / synced / rejected),
a progress bar while a sync runs, and every record the server rejected with its reason (the
server's code in the screen's words, :func:`sync.client.rejection_text`; the selected record's
reason in full, wrapped, below the table); ``q`` puts the selected rejected record back in the
queue once its cause is fixed, ``a`` every record rejected for the same reason.

The sync itself is ``sync.client.run_sync`` in a worker (``group="sync"``, exclusive). Progress
is counted by a thin view of the store whose outbox reports each record marked synced or
quarantined, so the bar moves with the batches without touching the client.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, cast

from textual import work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Label, ProgressBar, Static

from .messages import SyncFinished, SyncProgress
from .supervisor_common import run_in_thread
from .typed import fieldkit_app, store_of
from .widgets import StatusBar, translate_bindings

if TYPE_CHECKING:
    from ..store import Store


class _CountingOutbox:
    """The store's outbox, reporting how many records have been settled so far."""

    def __init__(self, outbox: Any, progress: Callable[[int], None]) -> None:
        self._outbox = outbox
        self._progress = progress
        self.settled = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._outbox, name)

    def mark_synced(
        self,
        record_ids: list[str],
        batch_id: str,
        kind: str | None = None,
        rowids: list[int] | None = None,
    ) -> None:
        self._outbox.mark_synced(record_ids, batch_id, kind=kind, rowids=rowids)
        self.settled += len(record_ids)
        self._progress(self.settled)

    def mark_quarantined(self, record_id: str, reason: str, kind: str | None = None) -> None:
        self._outbox.mark_quarantined(record_id, reason, kind=kind)
        self.settled += 1
        self._progress(self.settled)


class ProgressStore:
    """The store as the sync client sees it, with a counting outbox."""

    def __init__(self, store: Any, progress: Callable[[int], None]) -> None:
        self._store = store
        self.outbox = _CountingOutbox(store.outbox, progress)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def when_text(epoch: float | None, t, now: float | None = None) -> str:
    if not epoch:
        return t("status.never")
    now = time.time() if now is None else now
    stamp = datetime.fromtimestamp(float(epoch)).strftime("%m-%d %H:%M")
    return t("syncscreen.when", at=stamp, age=age_words(now - float(epoch), t))


def age_words(seconds: float | None, t) -> str:
    if seconds is None:
        return t("status.never")
    minutes = max(0, int(seconds // 60))
    if minutes < 60:
        return t("status.age_min", n=minutes)
    if minutes < 48 * 60:
        return t("status.age_hours", n=minutes // 60)
    return t("status.age_days", n=minutes // 1440)


def kind_word(kind: str, t) -> str:
    """A record kind in the screen's words (通行记录, 台账修改 …); an unknown one as it is."""
    from ..i18n import has_key

    key = f"fixscope.kind.{kind}"
    return t(key) if has_key(key) else kind


def sync_state(store: Any, settings: Any) -> dict[str, Any]:
    """Everything the screen shows, read in one go (in a worker)."""
    from sync.client import freshness

    return {
        "server": store.kv.get("sync.server_url") or settings.sync.server_url or "",
        "device": store.kv.get("sync.device_id"),
        "last_sync": store.kv.get("sync.last_sync"),
        "last_attempt": store.kv.get("sync.last_attempt"),
        "last_error": store.kv.get("sync.last_error"),
        "keypersons": store.keypersons.count(),
        "freshness": freshness(store, settings),
        "counts": store.outbox.counts(),
        "quarantined": store.outbox.quarantined(200),
    }


def warning_lines(state: dict[str, Any], settings: Any, t) -> list[str]:
    """The sync client's freshness checks, in the screen language."""
    fresh = state["freshness"]
    out = []
    if not state["device"]:
        out.append(t("syncscreen.warn_not_enrolled"))
    elif fresh["age_s"] is None:
        out.append(t("syncscreen.warn_no_update"))
    elif fresh["age_s"] > settings.sync.stale_after_hours * 3600:
        out.append(
            t(
                "syncscreen.warn_stale",
                hours=int(fresh["age_s"] // 3600),
                limit=f"{settings.sync.stale_after_hours:g}",
            )
        )
    skew = fresh.get("skew_s")
    if skew is not None and abs(float(skew)) > settings.sync.max_clock_skew_s:
        out.append(t("syncscreen.warn_clock", minutes=int(abs(float(skew)) // 60)))
    return out


class SyncScreen(Screen):
    CSS_PATH = "supervisor.tcss"
    DEFAULT_CSS = "#sync-reason { padding: 0 1; height: auto; max-height: 6; }"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "sync_now", "keys.sync_now", id="sync.now"),
        Binding("q", "requeue", "keys.sync_requeue", id="sync.requeue"),
        Binding(
            "a",
            "requeue_same",
            "fixscope.sync.key_requeue_same",
            id="sync.requeue_same",
            show=False,  # said under the table with the selected record's reason
        ),
        Binding("f5", "reload", "keys.sup_refresh", id="sync.reload", show=False),
        Binding("escape", "back", "keys.sup_back", id="sync.back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.running = False
        self.last_report = None
        self.reasons: dict[str, str] = {}  # rejected record id -> its reason in words

    def compose(self) -> ComposeResult:
        t = fieldkit_app(self).t
        yield StatusBar()
        yield Label(t("syncscreen.title"), classes="screen-title")
        yield Static("", id="sync-info", markup=False)
        yield Static("", id="sync-warnings", markup=False)
        yield ProgressBar(total=None, show_eta=False, id="sync-progress")
        yield Static(t("syncscreen.idle"), id="sync-result", markup=False)
        yield Label(t("syncscreen.rejected"), classes="panel-title")
        yield DataTable(id="sync-rejected", cursor_type="row", zebra_stripes=True)
        reason = Static("", id="sync-reason", markup=False)
        reason.display = False
        yield reason
        yield Footer()

    def on_mount(self) -> None:
        translate_bindings(self, fieldkit_app(self).t)
        t = fieldkit_app(self).t
        table = self.query_one("#sync-rejected", DataTable)
        table.add_columns(
            t("syncscreen.col_time"), t("syncscreen.col_kind"), t("syncscreen.col_reason")
        )
        self.action_reload()

    def on_screen_resume(self) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        run_in_thread(
            self, lambda: sync_state(store_of(self), fieldkit_app(self).settings), self._show
        )

    def _show(self, state: dict[str, Any]) -> None:
        t = fieldkit_app(self).t
        counts = state["counts"]
        fresh = state["freshness"]
        lines = [
            t(
                "syncscreen.server",
                url=state["server"] or t("syncscreen.no_server"),
                device=state["device"] or t("syncscreen.not_enrolled"),
            ),
            t("syncscreen.last_sync", when=when_text(state["last_sync"], t)),
            t("syncscreen.keylist", n=state["keypersons"], age=age_words(fresh["age_s"], t))
            if fresh["age_s"] is not None
            else t("syncscreen.keylist_never", n=state["keypersons"]),
            t(
                "syncscreen.queue",
                pending=counts.get("pending", 0),
                synced=counts.get("synced", 0),
                quarantined=counts.get("quarantined", 0),
            ),
        ]
        if state["last_error"]:
            lines.append(
                t(
                    "syncscreen.last_error",
                    when=when_text(state["last_attempt"], t),
                    error=state["last_error"],
                )
            )
        self.query_one("#sync-info", Static).update("\n".join(lines))
        notes = warning_lines(state, fieldkit_app(self).settings, t)
        warnings = self.query_one("#sync-warnings", Static)
        warnings.update("\n".join(f"! {w}" for w in notes))
        warnings.set_class(bool(notes), "-warning")
        from sync.client import rejection_text

        table = self.query_one("#sync-rejected", DataTable)
        table.clear()
        self.reasons = {q["id"]: rejection_text(q["sync_reason"], t) for q in state["quarantined"]}
        for q in state["quarantined"]:
            table.add_row(
                q["ts"][5:16].replace("T", " "),
                kind_word(q["kind"], t),
                self.reasons[q["id"]],
                key=q["id"],
            )
        self._show_reason()
        if not self.running and self.last_report is None:
            bar = self.query_one("#sync-progress", ProgressBar)
            bar.update(total=max(1, counts.get("pending", 0)), progress=0)

    # -- syncing ----------------------------------------------------------------------------
    def action_sync_now(self) -> None:
        if self.running:
            return
        self.running = True
        self.query_one("#sync-result", Static).update(fieldkit_app(self).t("syncscreen.running"))
        self.query_one("#sync-result", Static).remove_class("error")
        self.run_sync()

    @work(thread=True, exclusive=True, group="sync", exit_on_error=False)
    def run_sync(self) -> None:
        from sync.client import run_sync

        store = store_of(self)
        total = store.outbox.counts().get("pending", 0)
        self.post_message(SyncProgress(0, total))

        def progress(done: int) -> None:
            self.post_message(SyncProgress(done, total))

        view = ProgressStore(store, progress)
        operator = store.operator.name if store.operator else None
        try:
            report = run_sync(
                cast("Store", view),  # the store with a counting outbox (see ProgressStore)
                fieldkit_app(self).settings,
                operator=operator,
                transport=getattr(fieldkit_app(self), "sync_transport", None),
            )
        finally:
            fieldkit_app(self).call_from_thread(setattr, self, "running", False)
        self.post_message(SyncFinished(report))

    def on_sync_progress(self, message: SyncProgress) -> None:
        bar = self.query_one("#sync-progress", ProgressBar)
        bar.update(total=max(1, message.total), progress=min(message.done, max(1, message.total)))

    def on_sync_finished(self, message: SyncFinished) -> None:
        t = fieldkit_app(self).t
        report = message.report
        self.last_report = report
        self.running = False
        result = self.query_one("#sync-result", Static)
        bar = self.query_one("#sync-progress", ProgressBar)
        if report.ok:
            bar.update(total=max(1, bar.total or 1), progress=max(1, bar.total or 1))
            result.update(
                t(
                    "syncscreen.done",
                    sent=report.sent,
                    stored=report.stored,
                    duplicate=report.duplicate,
                    quarantined=report.quarantined,
                    pending=report.pending,
                    added=report.keypersons_added,
                    removed=report.keypersons_removed,
                )
            )
        else:
            result.update(
                t(
                    "syncscreen.failed",
                    error=report.error,
                    kind=t(f"syncscreen.kind.{report.error_kind or 'server'}"),
                )
            )
        result.set_class(not report.ok, "error")
        fieldkit_app(self).refresh_status()
        self.action_reload()

    def _selected(self) -> str | None:
        table = self.query_one("#sync-rejected", DataTable)
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_reason()

    def _show_reason(self) -> None:
        """The selected record's reason in full (the table's cell is cut at the screen's edge)."""
        t = fieldkit_app(self).t
        key = self._selected()
        reason = self.reasons.get(key or "")
        box = self.query_one("#sync-reason", Static)
        box.display = reason is not None
        if reason is None:
            box.update("")
            return
        same = sum(1 for r in self.reasons.values() if r == reason)
        box.update(
            t("fixscope.sync.detail", same=same, reason=reason)
            + "\n"
            + t("fixscope.sync.hint", same=same)
        )

    def action_requeue_same(self) -> None:
        """Every record rejected for the selected record's reason back in the queue."""
        from sync.client import rejection_text

        key = self._selected()
        if key is None or key not in self.reasons:
            return
        reason, t, store = self.reasons[key], fieldkit_app(self).t, store_of(self)

        def requeue() -> int:
            ids = [
                q["id"]
                for q in store.outbox.quarantined(1_000_000)
                if rejection_text(q["sync_reason"], t) == reason
            ]
            for rid in ids:
                store.outbox.requeue(rid)
            return len(ids)

        def done(n: int) -> None:
            fieldkit_app(self).notify(t("fixscope.sync.requeued_same", n=n))
            self.action_reload()

        run_in_thread(self, requeue, done)

    def action_requeue(self) -> None:
        key = self._selected()
        if key is None:
            return
        store = store_of(self)

        def done(_: Any) -> None:
            fieldkit_app(self).notify(fieldkit_app(self).t("syncscreen.requeued"))
            self.action_reload()

        run_in_thread(self, lambda: store.outbox.requeue(key), done)

    async def action_back(self) -> None:
        await fieldkit_app(self).open_screen("supervisor")

    def palette_commands(self) -> Iterable[SystemCommand]:
        t = fieldkit_app(self).t
        yield SystemCommand(
            t("keys.sync_now"), t("syncscreen.palette_help"), lambda: self.run_action("sync_now")
        )
        yield SystemCommand(
            t("keys.sync_requeue"), t("syncscreen.palette_help"), lambda: self.run_action("requeue")
        )
        yield SystemCommand(
            t("fixscope.sync.key_requeue_same"),
            t("syncscreen.palette_help"),
            lambda: self.run_action("requeue_same"),
        )
