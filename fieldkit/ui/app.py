"""The FieldKit app: login, navigation from the screen registry, status bar, camera, wedge.

One factory, :func:`make_app`, builds the app for ``fieldkit`` (via :func:`run_app`), the tests
and the benchmark. Screens reach ``app.store``, ``app.settings``, ``app.t(key, **params)`` and
``app.lang`` (typed through :mod:`.typed`); they never open the database themselves.

The app is put together from parts, one module each (all subclasses of
:class:`~.app_base.FieldkitBase`, which holds the state they share and the status bar):

- :mod:`.keyinput`: keyboard-wedge scanners, keys held back while a burst may be a scan, the
  keys after Tab/Enter, scans handed to the screen that takes them;
- :mod:`.camera`: the camera, a video or a folder of images, in a worker;
- :mod:`.background`: the background sync and the store watcher (``PRAGMA data_version``);
- :mod:`.navigation`: screens from the registry (:mod:`.registry`), login and lock, the palette.

This module keeps start-up, the session and leaving. Start-up paints the first screen before the
heavy parts load: screen modules are imported when first opened (see :mod:`.registry`), and
``run_app`` lets the app open the store in a worker after the login screen is shown.
"""

from __future__ import annotations

import threading
import time

from textual import work
from textual.binding import Binding
from textual.screen import ModalScreen, Screen
from textual.worker import Worker, WorkerState

from scanners.wedge import KeyboardWedge

from ..config import Settings
from ..errors import FieldkitError
from ..i18n import set_language
from ..i18n import t as translate
from .background import STORE_WATCH_S, SYNC_TICK_S, BackgroundWork, StoreChanged, sync_error_text
from .camera import CameraFeed, source_from_args
from .keyinput import HOLD_S, WEDGE_MIN_LENGTH, HoldTimeout, KeyInput
from .messages import CameraStatus, LoggedIn, StatusRefreshed
from .navigation import Navigation
from .registry import PROBLEMS, ScreenEntry, home_entry, screen_entries
from .shell_screens import BlankScreen, StoreProblemScreen
from .textual_text import translate_palette_binding
from .widgets.statusbar import StatusBar

__all__ = [
    "BlankScreen",
    "FieldkitApp",
    "HoldTimeout",
    "StoreChanged",
    "StoreProblemScreen",
    "make_app",
    "run_app",
    "source_from_args",
    "sync_error_text",
]


class FieldkitApp(Navigation, KeyInput, CameraFeed, BackgroundWork):
    """The app: its parts (see the module docstring) and start-up, session and leaving."""

    CSS_PATH = "app.tcss"
    TITLE = "FieldKit"
    BINDINGS = [
        Binding("ctrl+l", "lock", "lock", id="app.lock", show=False),
        Binding("ctrl+q", "quit", "quit", id="app.quit", show=False, priority=True),
        Binding("ctrl+c", "quit", "quit", id="app.quit_c", show=False, priority=True),
    ]

    def __init__(
        self,
        settings: Settings,
        store=None,
        sources=None,
        *,
        entries: list[ScreenEntry] | None = None,
        clock=time.monotonic,
        sync_transport=None,
    ) -> None:
        super().__init__()
        self.settings = settings
        set_language(settings.ui.language)  # core messages (str(err)) in the screen language
        translate_palette_binding(self, lambda key, **p: translate(key, settings.ui.language, **p))
        # None: the app opens the store itself in a worker once the first screen is painted.
        self.store = store
        self.store_ready = threading.Event()
        self.store_error = None
        if store is not None:
            self.store_ready.set()
        self.sources = sources
        self._known_mode = settings.checkpoint.area_mode  # the mode last on show
        self.lang = settings.ui.language
        self.clock = clock
        self.entries = screen_entries() if entries is None else list(entries)
        self.registry_problems = dict(PROBLEMS) if entries is None else {}
        self.wedge = KeyboardWedge(min_length=WEDGE_MIN_LENGTH)
        self._wedge_keys = []
        self._held = []  # keys held back while a burst may be a scan
        self._barrier = False  # Tab/Enter handed on; later keys wait in _after_barrier
        self._after_barrier = []
        self._hold_timer = None
        self.hold_s = HOLD_S
        self.last_input = clock()
        self.camera_state = "off"
        self.camera_detail = ""
        self.camera_source = None  # the FrameSource while the camera worker runs
        self._camera_worker = None
        self._presented = threading.Event()  # --images: the last presentation was recorded
        self._payload_config = None
        self._opened = {}
        self.sync_transport = sync_transport  # tests: an in-process town server
        self.auto_sync = None  # sync.client.AutoSync once enrolled
        self._sync_error_shown = None
        self.warned_no_shift = False  # recording with no shift open: said once per session
        for entry in self.entries:
            if entry.key:
                self.bind(
                    entry.key, f"open_screen('{entry.id}')", description=self.t(entry.title_key)
                )

    # -- start ------------------------------------------------------------------------------
    def on_mount(self) -> None:
        self.title = self.t("app.title")
        self.screen_change_signal.subscribe(self, self._on_screen_change)
        self.push_screen(BlankScreen())
        self.refresh_status()
        self.set_interval(5, self.check_idle_lock)
        self.set_interval(30, self.refresh_status)
        self.set_interval(SYNC_TICK_S, self.sync_tick)
        self.set_interval(STORE_WATCH_S, self.store_watch_tick)
        self.show_login()
        for module, problem in self.registry_problems.items():
            self.notify(
                self.t("app.screen_broken", module=module, problem=problem),
                severity="error",
                timeout=15,
            )

    def _on_screen_change(self, screen: Screen) -> None:
        """Every full screen (other engineers' too) gets the status bar."""
        if not isinstance(screen, ModalScreen) and not screen.query(StatusBar):
            screen.mount(StatusBar())
        if self.store is None and not getattr(self, "_store_opening", False):
            self._store_opening = True
            screen.call_after_refresh(self.open_store)  # after the first screen is on show

    # -- the store, opened off the first paint -------------------------------------------------
    @work(thread=True, exit_on_error=False, group="store", name="open store")
    def open_store(self) -> None:
        from .. import ledger  # noqa: F401  (plugs the household ledger into the store)
        from ..store import open_store

        try:
            store = open_store(self.settings, create=True)
        except BaseException as exc:
            self.store_error = exc
            self.store_ready.set()
            # Not a toast that fades over a login that cannot work: a screen that stays.
            self.call_from_thread(self.switch_screen, StoreProblemScreen(self.error_text(exc)))
            return  # handled: recorded for wait_for_store and shown
        self.call_from_thread(self._store_opened, store)

    def _store_opened(self, store) -> None:
        from .login import LoginScreen, SetupScreen

        self.store = store
        self.store_ready.set()
        self._known_mode = self.settings.checkpoint.area_mode
        self.refresh_status()
        screen = self.screen
        if isinstance(screen, LoginScreen) and not store.initialised:
            self.switch_screen(SetupScreen())
        elif isinstance(screen, (LoginScreen, SetupScreen)):
            screen.store_opened()

    # -- session -----------------------------------------------------------------------------
    def on_logged_in(self, message: LoggedIn) -> None:
        self.call_later(self.start_session, message.operator)

    async def start_session(self, operator: str) -> None:
        """After login: back to where this operator was, or to their home screen."""
        from .login import LoginScreen, SetupScreen

        if isinstance(self.screen, (LoginScreen, SetupScreen)):
            await self.pop_screen()
        previous = getattr(self, "_session_operator", None)
        self._session_operator = operator
        if previous != operator:
            self.warned_no_shift = False
        locked_by, self.locked_operator = self.locked_operator, None
        self.last_input = self.clock()
        self._payload_config = None
        self.refresh_status()
        if locked_by == operator and len(self.screen_stack) > 1:
            return  # unlocked after a lock by the same operator: carry on where we were
        while len(self.screen_stack) > 1:
            await self.pop_screen()
        for name in list(self._opened):
            self.uninstall_screen(name)
        self._opened.clear()
        op = self.opened_store().operator
        role = op.role if op else ""
        home = home_entry(self.entries, role)
        if home is not None:
            await self.open_screen(home.id)
        self.start_camera()

    def on_status_refreshed(self, message: StatusRefreshed) -> None:
        """A refresh that began before a lock must not put the operator's name back."""
        if not self.unlocked:
            message.values = {**message.values, "operator": None, "role": None}
        super().on_status_refreshed(message)
        message.prevent_default()  # Textual would run the base class's handler again

    # -- failures ----------------------------------------------------------------------------
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state != WorkerState.ERROR:
            return
        error = event.worker.error
        if event.worker.group == "camera":
            self._camera_worker = None
            self.on_camera_status(CameraStatus("missing", str(error)))
        if isinstance(error, FieldkitError):
            self.notify(self.error_text(error), severity="error", timeout=8)
        else:
            self.notify(
                self.t("app.internal_error", error=f"{type(error).__name__}: {error}"),
                severity="error",
                timeout=12,
            )

    async def action_quit(self) -> None:
        """Quit; with a shift open, only once the operator confirms (y or F10)."""
        from .supervisor_common import ConfirmDialog

        if isinstance(self.screen, ConfirmDialog) and getattr(self, "_quit_asked", False):
            return  # the question is on screen: answer it
        if self.own_keys_only():  # the recovery key, shown once: not lost to Ctrl+C / Ctrl+Q
            self.notify(self.t("login_trial.recovery_first"), severity="warning")
            return
        shift = None
        if self.store is not None and self.store_error is None:
            try:
                shift = self.store.shifts.current_id()
            except FieldkitError:
                shift = None
        if shift:
            self._quit_asked = True

            def answered(yes: bool | None) -> None:
                self._quit_asked = False
                if yes:
                    self.call_later(self.quit_now)

            lines = [self.t("quit.shift_open")]
            dialog = ConfirmDialog(self.t("quit.title"), lines, hint=self.t("quit.how"))
            self.push_screen(dialog, answered)
            return
        await self.quit_now()

    async def quit_now(self) -> None:
        """Leave: the session is locked (audited as a lock, reason "quit") first."""
        if self._camera_worker is not None:
            self._camera_worker.cancel()
        store = self.store
        if store is not None and store.is_unlocked:
            store.lock("quit")
        self.exit(0)


def make_app(settings: Settings, store=None, sources=None, **kwargs) -> FieldkitApp:
    """Build the app: for ``fieldkit``, tests and the benchmark alike. Without a store the app
    opens ``settings.store_path`` itself, in a worker, after its first screen is painted."""
    return FieldkitApp(settings, store, sources, **kwargs)


def run_app(
    settings: Settings,
    camera: str | None = None,
    images: str | None = None,
    video: str | None = None,
) -> int:
    app = make_app(settings, None, source_from_args(settings, camera, images, video))
    try:
        result = app.run()
    finally:
        if app.store is not None:
            app.store.close()
    return int(result or 0)
