"""The FieldKit app: login, navigation from the screen registry, status bar, camera, wedge.

One factory, :func:`make_app`, builds the app for ``fieldkit`` (via :func:`run_app`), the tests
and the benchmark. Screens reach ``app.store``, ``app.settings``, ``app.t(key, **params)`` and
``app.lang``; they never open the database themselves.

Input from a USB scanner or ID reader that types like a keyboard is caught here, before any
widget sees the keys: every key goes to a burst detector (``scanners.wedge``), and a burst that
ends in Enter and reads as a known code is taken back out of whatever field had focus and
delivered to the screen as a :class:`~fieldkit.ui.messages.ScanRead`. While the store is
unlocked, printable keys are *held back* at the app for a few milliseconds: a scanner's keys
follow each other within that time, so a whole burst is recognised at its Enter without the
focused field ever seeing it; a person's key is released to the field as soon as no other key
follows quickly (in order, nothing lost), and anything else (Tab, F-keys, the mouse, a slow
Enter) releases what is held first.

Start-up paints the first screen before the heavy parts load: screen modules are imported when
first opened (see :mod:`.registry`), and ``run_app`` lets the app open the store in a worker
after the login screen is shown. When the device is enrolled with a town server, a background
sync runs on a timer (``sync.interval_s``, backing off while the server cannot be reached).
"""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from collections.abc import Iterable
from datetime import datetime
from functools import cache, partial
from pathlib import Path
from typing import Any

from textual import events, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.screen import ModalScreen, Screen
from textual.widgets import Input, Static
from textual.worker import Worker, WorkerState

from scanners.wedge import KeyboardWedge

from ..config import Settings
from ..errors import FieldkitError
from ..i18n import set_language
from ..i18n import t as translate
from .messages import CameraStatus, LoggedIn, ScanRead, StatusRefreshed, SyncFinished
from .registry import PROBLEMS, ScreenEntry, home_entry, screen_entries
from .textual_text import LocalCommandPalette, help_quit, translate_palette_binding
from .widgets.statusbar import StatusBar

WEDGE_MIN_LENGTH = 6  # shorter bursts are a person typing (a temperature is 3-4 keys)
# A held key is released to the focused field when no key followed within this time: scanners
# type a key every 1-10 ms; a person rarely two within 40 ms. Slower scanners still work (their
# keys reach the field and are taken back out at Enter), they are just not as fast.
HOLD_S = 0.040
# Where a scan starts in a run of fast keys: a scanner's own keys come a few ms apart and evenly,
# so a key that came well after the one before it (over twice the slowest gap after it, and a
# few ms more for the terminal's jitter) ends a person's typing in front of the burst. A fixed
# presentation scanner reads a phone whenever it is held under it: within ms of a typed key.
CADENCE_FACTOR = 2.0
CADENCE_SLACK_S = 0.008
# Keys that move the focus: later keys wait (polled every BARRIER_POLL_S) until the screen has
# handled them, at most BARRIER_MAX_S.
FOCUS_KEYS = ("tab", "shift+tab", "enter")
BARRIER_POLL_S = 0.001
BARRIER_QUIET_ROUNDS = 3
BARRIER_MAX_S = 1.0
SYNC_TICK_S = 5.0  # how often the background-sync timer asks whether a run is due
# How often the app asks the store whether another process committed (``fieldkit mode``, a
# ledger import, an operator added): ``PRAGMA data_version`` is one cheap read.
STORE_WATCH_S = 0.5


class StoreChanged(Message):
    """The store changed under the app (another process, or a sync): settings re-read."""


class HoldTimeout(Message):
    """The hold-back time passed since a held key (decided in order with the queued keys)."""


class StoreProblemScreen(Screen):
    """The store cannot be opened (damaged or foreign file, no permission …): say so and stay.

    The file is never touched; the only way on is to quit and fix the cause."""

    BINDINGS = [Binding("q", "app.quit", "keys.quit"), Binding("ctrl+q", "app.quit", show=False)]

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message

    def compose(self):
        from textual.containers import Vertical
        from textual.widgets import Footer, Label

        t = self.app.t
        with Vertical(classes="dialog", id="store-problem"):
            yield Label(t("app.store_problem_title"), classes="dialog-title")
            yield Static(self.message, id="store-problem-message")
            yield Static(t("app.store_problem_hint"))
        yield Footer()

    def on_mount(self) -> None:
        from .widgets import translate_bindings

        translate_bindings(self, self.app.t)


class BlankScreen(Screen):
    """Bottom of the stack: nothing personal is ever shown here."""

    def compose(self):
        yield StatusBar()
        yield Static(self.app.t("app.title"), id="blank-title")


class FieldkitApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "FieldKit"
    BINDINGS = [
        Binding("ctrl+l", "lock", "lock", id="app.lock", show=False),
        Binding("ctrl+q", "quit", "quit", id="app.quit", show=False, priority=True),
        Binding("ctrl+c", "quit", "quit", id="app.quit_c", show=False, priority=True),
    ]

    # Values for the status bar; screens never poke it, they ask for a refresh.
    status: reactive[dict[str, Any]] = reactive(dict, always_update=True)

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
        self.store_error: BaseException | None = None
        if store is not None:
            self.store_ready.set()
        self.sources = sources
        self._known_mode = settings.checkpoint.area_mode  # the mode last on show
        self.lang = settings.ui.language
        self.clock = clock
        self.entries = screen_entries() if entries is None else list(entries)
        self.registry_problems = dict(PROBLEMS) if entries is None else {}
        self.wedge = KeyboardWedge(min_length=WEDGE_MIN_LENGTH)
        self._wedge_keys: list[tuple[str, float, tuple[Any, str, int] | None, Any]] = []
        self._held: list[events.Key] = []  # keys held back while a burst may be a scan
        self._barrier = False  # Tab/Enter handed on; later keys wait in _after_barrier
        self._after_barrier: list[events.Key] = []
        self._hold_timer = None
        self.hold_s = HOLD_S
        self.last_input = clock()
        self.camera_state = "off"
        self.camera_detail = ""
        self.camera_source = None  # the FrameSource while the camera worker runs
        self._camera_worker: Worker | None = None
        self._presented = threading.Event()  # --images: the last presentation was recorded
        self._payload_config = None
        self._opened: dict[str, Screen] = {}
        self.sync_transport = sync_transport  # tests: an in-process town server
        self.auto_sync = None  # sync.client.AutoSync once enrolled
        self._sync_error_shown: str | None = None
        self.warned_no_shift = False  # recording with no shift open: said once per session
        for entry in self.entries:
            if entry.key:
                self.bind(
                    entry.key, f"open_screen('{entry.id}')", description=self.t(entry.title_key)
                )

    # -- language ----------------------------------------------------------------------------
    def t(self, key: str, **params: Any) -> str:
        return translate(key, self.lang, **params)

    def error_text(self, exc: BaseException) -> str:
        """A user error in the screen language where we know it, else the core's own line."""
        from ..gate import scrub_ids
        from .gate import translate_error

        return scrub_ids(translate_error(exc, self.t))

    def notify(self, message: str, *, title: str = "", **kwargs: Any) -> None:
        """Every notice, whoever raises it: no ID number shown unmasked."""
        from ..gate import scrub_ids

        super().notify(scrub_ids(str(message)), title=scrub_ids(title), **kwargs)

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

    def show_login(self, reason: str | None = None) -> None:
        from .login import LoginScreen, SetupScreen

        if self.store is None:  # still opening: a store file means someone set it up
            new = not self.settings.store_path.exists()
        else:
            new = not self.store.initialised
        self.push_screen(SetupScreen() if new else LoginScreen(reason=reason))

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

    def wait_for_store(self, timeout: float = 120.0):
        """In a worker thread: the store, once open (raises what opening it raised)."""
        self.store_ready.wait(timeout)
        if self.store_error is not None:
            raise self.store_error
        if self.store is None:
            raise TimeoutError("the store did not open")
        return self.store

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
        self.last_input = self.clock()
        self._payload_config = None
        self.refresh_status()
        if previous == operator and len(self.screen_stack) > 1:
            return  # unlocked after an idle lock: carry on where we were
        while len(self.screen_stack) > 1:
            await self.pop_screen()
        for name in list(self._opened):
            self.uninstall_screen(name)
        self._opened.clear()
        role = self.store.operator.role if self.store.operator else ""
        home = home_entry(self.entries, role)
        if home is not None:
            await self.open_screen(home.id)
        self.start_camera()

    def allowed(self, entry: ScreenEntry) -> bool:
        op = self.store.operator if self.store is not None else None
        return op is not None and op.role in entry.roles

    @property
    def unlocked(self) -> bool:
        return self.store is not None and self.store.is_unlocked

    async def open_screen(self, screen_id: str) -> None:
        entry = next((e for e in self.entries if e.id == screen_id), None)
        if entry is None:
            return
        if not self.allowed(entry):
            self.notify(
                self.t("app.not_allowed", screen=self.t(entry.title_key)), severity="warning"
            )
            return
        if self.screen is self._opened.get(screen_id):
            return
        if screen_id not in self._opened:
            from .registry import ScreenModuleError

            try:
                screen = entry.factory()  # imports the screen's module the first time
            except ScreenModuleError as exc:
                self.notify(
                    self.t("app.screen_broken", module=exc.module, problem=exc.problem),
                    severity="error",
                    timeout=15,
                )
                return
            self._opened[screen_id] = screen
            self.install_screen(screen, screen_id)
        if len(self.screen_stack) > 1 and not isinstance(self.screen, ModalScreen):
            await self.switch_screen(screen_id)
        else:
            await self.push_screen(screen_id)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Keys that cannot work now stay out of the footer: no screens before a login, none
        over a dialog; locking only when unlocked."""
        if action in ("open_screen", "lock", "change_mode"):
            return self.unlocked and not isinstance(self.screen, ModalScreen)
        return True

    async def action_open_screen(self, screen_id: str) -> None:
        if isinstance(self.screen, ModalScreen) or not self.unlocked:
            return
        await self.open_screen(screen_id)

    def action_lock(self) -> None:
        self.lock_now("manual")

    def lock_now(self, reason: str) -> None:
        """Lock the store and cover the screen; work in progress stays behind the lock."""
        from .login import LoginScreen

        if not self.unlocked or isinstance(self.screen, LoginScreen):
            return
        self.store.lock(reason)
        self.show_login(reason)

    def check_idle_lock(self) -> None:
        idle = self.clock() - self.last_input
        if self.unlocked and idle >= self.settings.ui.idle_lock_minutes * 60:
            self.lock_now("idle")

    # -- keys: idle timer and keyboard-wedge scanners ---------------------------------------
    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and not event.is_forwarded and self._barrier:
            self._after_barrier.append(event)  # after the focus has moved
            return
        if isinstance(event, events.InputEvent) and not event.is_forwarded:
            self.last_input = self.clock()
            if isinstance(event, events.Key):
                if event.is_printable and event.character and self.unlocked:
                    if self._held and event.time - self._held[-1].time > self.hold_s:
                        await self._release_held()  # a slow key: what is held goes first
                    self._hold(event)
                    return
                if self._wedge_key(event):  # an Enter that ends a scan
                    return
                if self._held:
                    await self._release_held()
                if event.key in ("tab", "shift+tab") and self._move_focus_now(event.key):
                    return
                if event.key in FOCUS_KEYS:
                    await super().on_event(event)
                    self._raise_barrier()
                    return
            elif self._held and not isinstance(
                event, (events.MouseMove, events.MouseScrollDown, events.MouseScrollUp)
            ):
                await self._release_held()  # a click may move the focus: keys go first
        await super().on_event(event)

    # -- keys after Tab or Enter go where the focus went ------------------------------------
    # The app hands a key to the field focused *when it handles the key*, but Tab or Enter
    # moves the focus only once the field and the screen have handled them, in their own
    # queues: keys that came right behind (a scanner, a fast typist) would land in the field
    # being left (a PIN in a note, shown). So after Tab/Enter later keys wait until the
    # screen has settled, then go on in order.
    def _move_focus_now(self, key: str) -> bool:
        """Tab / Shift+Tab between fields, done here and now (not in the field's queue), so
        the very next key already goes to the new field. False where Tab means something else
        (a text area) or a dialog binds it itself."""
        from textual.widgets import TextArea

        screen = self.screen
        default = ("app.focus_next", "app.focus_previous")
        own = [
            b
            for node in (self.focused, screen)
            if node is not None
            for b in node._bindings.key_to_bindings.get(key, [])
            if b.action not in default
        ]
        if isinstance(self.focused, TextArea) or own:
            return False
        if key == "tab":
            screen.focus_next()
        else:
            screen.focus_previous()
        return True

    def _raise_barrier(self) -> None:
        self._barrier = True
        self._barrier_since = time.monotonic()
        self._barrier_quiet = 0
        self.call_later(self._check_barrier)

    def _settled(self) -> bool:
        screen = self.screen
        return all(n._message_queue.empty() for n in (screen, *screen.walk_children()))

    async def _check_barrier(self) -> None:
        # Through the app's own queue (no timer): the app is never idle while keys wait here,
        # and each round lets the screen's tasks run first.
        await asyncio.sleep(0)
        quiet = self._settled()
        self._barrier_quiet = self._barrier_quiet + 1 if quiet else 0
        waited = time.monotonic() - self._barrier_since
        if self._barrier_quiet < BARRIER_QUIET_ROUNDS and waited < BARRIER_MAX_S:
            if not quiet:
                await asyncio.sleep(BARRIER_POLL_S)
            self.call_later(self._check_barrier)
            return
        self._barrier = False
        waiting, self._after_barrier = self._after_barrier, []
        while waiting and not self._barrier:
            await self.on_event(waiting.pop(0))
        self._after_barrier = waiting + self._after_barrier

    def _hold(self, event: events.Key) -> None:
        """Hold a printable key back while it may belong to a scanner burst."""
        self._held.append(event)
        self._note_wedge_key(event.character, event)
        if self._hold_timer is None:
            self._hold_timer = self.set_timer(self.hold_s, self._hold_expired, name="wedge-hold")

    def _hold_expired(self) -> None:
        # Through the app's queue, so keys that already arrived are handled first.
        self.post_message(HoldTimeout())

    async def on_hold_timeout(self, message: HoldTimeout) -> None:
        self._hold_timer = None
        if not self._held:
            return
        wait = self._held[-1].time + self.hold_s - time.monotonic()
        if wait > 0.001:  # another key came meanwhile: wait for the burst to go quiet
            self._hold_timer = self.set_timer(wait, self._hold_expired, name="wedge-hold")
            return
        await self._release_held()

    def _take_held(self) -> list[events.Key]:
        held, self._held = self._held, []
        if self._hold_timer is not None:
            self._hold_timer.stop()
            self._hold_timer = None
        return held

    async def _release_held(self, held: list[events.Key] | None = None) -> None:
        """Give held keys to the focused field, in the order they came."""
        for event in self._take_held() if held is None else held:
            await super().on_event(event)

    def _note_wedge_key(self, key: str, event: events.Key) -> None:
        """Feed a character to the burst detector, remembering what the field held before it."""
        now = event.time
        if self._wedge_keys and (now - self._wedge_keys[-1][1]) * 1000 > self.wedge.max_gap_ms:
            self._wedge_keys.clear()
        focused = self.focused
        snapshot = (
            (focused, focused.value, focused.cursor_position)
            if isinstance(focused, Input)
            else None
        )
        self._wedge_keys.append((key, now, snapshot, event))
        self.wedge.feed(key, now)

    def _wedge_key(self, event: events.Key) -> bool:
        """Feed the burst detector; True when the key ended a scan (and is swallowed).

        Keys of the scan still held back are dropped; a person's keys in front of the burst go
        to the field (:meth:`_scan_in_tail` finds where the burst starts). When part of a (slow)
        scanner's burst already reached the field, each key's snapshot gives the field back
        exactly what the person had typed.
        """
        if event.key == "enter":
            key = "enter"
        elif event.is_printable and event.character:
            key = event.character
        else:
            return False
        if key != "enter":
            self._note_wedge_key(key, event)
            return False
        keys, self._wedge_keys = self._wedge_keys, []
        scan = self.wedge.feed(key, event.time)
        if scan is None or not keys or not self.unlocked:
            return False
        # Only the fast tail is the scanner: drop a person's slower keys in front of it.
        start = len(keys) - 1
        limit = self.wedge.max_median_gap_ms * 1.5 / 1000
        while start > 0 and keys[start][1] - keys[start - 1][1] <= limit:
            start -= 1
        if len(keys) - start < WEDGE_MIN_LENGTH:
            return False
        found = self._scan_in_tail(keys, start, event.time)
        if found is None:
            return False  # fast typing that is not a code: let the field have it
        start, text, result = found
        # "Scan done" is when the scanner's Enter arrived (same clock as perf_counter on Linux).
        t0 = time.perf_counter() - max(0.0, time.monotonic() - event.time)
        read = ScanRead(text, result, "wedge", t0)
        held = self._take_held()
        scan_events = {id(k[3]) for k in keys[start:]}
        whole_scan_held = any(e is keys[start][3] for e in held)
        prefix = [e for e in held if id(e) not in scan_events]  # a person's keys before it
        if whole_scan_held:  # nothing of the burst reached a field: nothing to undo
            self.call_later(self._release_then_scan, prefix, read)
            return True
        snapshot = keys[start][2]
        if snapshot is None:
            self.post_message(read)
            return True
        widget, value, cursor = snapshot

        def restore() -> None:
            widget.value = value
            widget.cursor_position = cursor
            self.post_message(read)

        # The burst's keys may still wait in the field's own queue: restore after them.
        widget.call_later(restore)
        return True

    async def _release_then_scan(self, prefix: list[events.Key], read: ScanRead) -> None:
        """Give a person's keys in front of a scan to the field, then deliver the scan."""
        await self._release_held(prefix)
        # Through the focused widget's queue, after the keys it was given (now or before the
        # burst): the screen reads, say, the temperature typed just before the scan.
        target = self.focused or self.screen
        if not target.call_later(self.post_message, read):
            self.post_message(read)

    def _scan_in_tail(
        self, keys: list, start: int, enter_time: float
    ) -> tuple[int, str, Any] | None:
        """Where in the fast tail ``keys[start:]`` the scanner's keys begin, with their text and
        what they read as; None when no part of the tail is a code.

        A person's reading typed just before a scan is part of the fast tail (gaps up to 1.5 ×
        the detector's median, for slow scanners): "368" + an ID reads as no code at all (or,
        with a 15-digit ID, as a wrong one), and the merged text would go to the field. So the
        scan is first looked for where the tail's own cadence breaks, then in the whole tail
        (slow or uneven scanners), then, when typing came as fast as a scanner, in shorter
        tails that read as a code by themselves.
        """
        from scanners.payloads import parse_payload

        config = self.payload_config()
        times = [k[1] for k in keys] + [enter_time]
        last = len(keys) - WEDGE_MIN_LENGTH  # a shorter burst is not a scan

        @cache
        def read(s: int) -> tuple | None:
            text = "".join(k[0] for k in keys[s:])
            result = parse_payload(text, config)
            return None if result.kind == "unknown" else (s, text, result)

        def clean(found: tuple | None) -> bool:  # not merely an ID found inside the text
            return found is not None and not (found[2].parsed or {}).get("embedded_in_text")

        # The burst starts at the latest key that came much slower than every key after it (or
        # at the tail's start), or one key later: a scanner that began right after a person's
        # key brings that key along, and it reads as no code or as an ID inside text.
        slowest, brk = 0.0, start
        for s in range(len(keys) - 1, start, -1):
            slowest = max(slowest, times[s + 1] - times[s])
            if s <= last and times[s] - times[s - 1] > CADENCE_FACTOR * slowest + CADENCE_SLACK_S:
                brk = s
                break
        at_break = [read(s) for s in (brk, brk + 1) if s <= last]
        whole = read(start)
        for found in (*at_break, whole):
            if clean(found):
                return found
        # Keys as fast as a scanner's: a shorter tail that is a code by itself is the scan, and
        # what is in front of it a person's (a reading: a few keys, so a long burst that is no
        # code costs a few parses, not one per key). An ID counts only when the whole tail is no
        # code: a link that ends in an ID is one payload, not typing in front of an ID.
        for s in range(start + 1, min(last, start + 16) + 1):
            found = read(s)
            if clean(found) and (whole is None or found[2].kind != "resident_id"):
                return found
        return next((found for found in (*at_break, whole) if found), None)

    def payload_config(self):
        """What the payload parsers need: town keys for passes, revocations, code patterns."""
        if self._payload_config is None:
            from scanners.payloads import HealthCodePattern, PayloadConfig

            keys = []
            encoded = self.store.kv.get("sync.town_ed25519")
            if encoded:
                try:
                    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
                        Ed25519PublicKey,
                    )

                    raw = base64.b64decode(encoded)  # as sync stores it (standard base64)
                    keys.append(Ed25519PublicKey.from_public_bytes(raw))
                except (ValueError, TypeError):
                    pass
            patterns = tuple(
                HealthCodePattern(f"health-code {i + 1}", p)
                for i, p in enumerate(self.settings.camera.health_code_patterns)
            )
            from scanners.payloads.healthcode import DEFAULT_PATTERNS

            self._payload_config = PayloadConfig(
                health_code_patterns=patterns + DEFAULT_PATTERNS,
                pass_public_keys=tuple(keys),
                revoked_passes=frozenset(self.store.revocations.all()),
            )
        return self._payload_config

    HELD_SCAN_S = 120.0  # a read kept for the gate while another screen is open

    def on_scan_read(self, message: ScanRead) -> None:
        """Hand a read to the screen that takes scans (under any alert dialog on top).

        When no open screen takes scans (the supervisor console, say), the read is kept and
        the operator told where to use it; the gate screen picks it up when it is opened."""
        for screen in reversed(self.screen_stack):
            handler = getattr(screen, "handle_scan", None)
            if handler is not None:
                if self.unlocked:
                    handler(message)
                return
        if self.unlocked:
            self._held_scan = (message, time.monotonic())
            self.notify(self.t("app.scan_held"), timeout=6)

    def take_held_scan(self) -> ScanRead | None:
        """The read kept while no screen took scans, if it is recent; taken only once."""
        held, self._held_scan = getattr(self, "_held_scan", None), None
        if held is None or time.monotonic() - held[1] > self.HELD_SCAN_S:
            return None
        return held[0]

    # -- camera -------------------------------------------------------------------------------
    def start_camera(self) -> None:
        if self.sources is None or self._camera_worker is not None:
            return
        if getattr(self.sources, "kind", None) == "images":
            self._camera_worker = self.image_queue_loop(self.sources.target)
            return
        self._camera_worker = self.camera_loop()

    IMAGE_POLL_S = 1.0  # how often an empty (or emptied) folder is looked at again

    @work(thread=True, exit_on_error=False, group="camera", name="image queue")
    def image_queue_loop(self, folder: str) -> None:
        """``--images DIR``: one image = one person; the next once the last one is recorded."""
        from textual.worker import get_current_worker

        from scanners.pipeline import Pipeline
        from scanners.sources import load_image

        from .image_queue import PresentationQueue

        worker = get_current_worker()
        queue = PresentationQueue(folder)
        cam = self.settings.camera
        said = None

        def say(state: str, key: str, **params) -> None:
            nonlocal said
            if said != key:
                said = key
                text = self.t(key, folder=folder, **params)
                self.post_message(CameraStatus(state, text))
                self.notify(text, timeout=8)  # thread-safe

        while not worker.is_cancelled:
            if queue.missing:
                say("missing", "images.missing")
                time.sleep(self.IMAGE_POLL_S)
                continue
            path = queue.next()
            if path is None:
                say("connected", "images.empty" if not queue.seen else "images.done")
                time.sleep(self.IMAGE_POLL_S)
                continue
            frame, problem = load_image(path)
            if frame is None:
                self.notify(self.t("images.unreadable", name=path.name, problem=problem))
                continue
            pipeline = Pipeline(
                budget_ms=cam.frame_budget_ms,
                dedupe_seconds=0,
                payload_config=self.payload_config(),
            )
            reads = list(pipeline.process(frame))
            if not reads:
                self.notify(self.t("images.no_code", name=path.name))
                continue
            said = None
            self._presented.clear()
            self.post_message(CameraStatus("connected", path.name))
            read = reads[0]
            text = read.text if read.text is not None else ""
            self.post_message(ScanRead(text, read.result, "scan", time.perf_counter()))
            while not worker.is_cancelled and not self._presented.wait(0.2):
                pass  # the operator records this person before the next one comes

    def on_record_committed(self, message) -> None:
        """A record was saved: the image queue may present the next person."""
        self._presented.set()

    @work(thread=True, exit_on_error=False, group="camera", name="camera")
    def camera_loop(self) -> None:
        from textual.worker import get_current_worker

        from scanners.pipeline import Pipeline
        from scanners.sources import FrameSource, SourceSpec, open_source
        from scanners.words import status_text

        worker = get_current_worker()
        cam = self.settings.camera
        source = self.sources
        if not isinstance(source, FrameSource):
            if isinstance(source, str):
                source = SourceSpec.parse(source, width=cam.width, height=cam.height, fps=cam.fps)
            source = open_source(source)
        self.camera_source = source
        pipeline = Pipeline(
            budget_ms=cam.frame_budget_ms,
            dedupe_seconds=cam.dedupe_seconds,
            payload_config=self.payload_config(),
        )
        is_camera = type(source).__name__ == "CameraSource"
        frame_gap = 1.0 / max(1, cam.fps)
        last_state = None
        try:
            while not worker.is_cancelled:
                started = time.monotonic()
                frame = source.read()
                status = source.status
                if status.state != last_state:
                    last_state = status.state
                    self.post_message(CameraStatus(status.state, status_text(status, self.lang)))
                if frame is None:
                    if status.state == "ended":
                        return
                    time.sleep(0.1)
                    continue
                for read in pipeline.process(frame):
                    text = read.text if read.text is not None else ""
                    self.post_message(ScanRead(text, read.result, "scan", time.perf_counter()))
                if not is_camera:  # files play at the camera's pace, not as fast as possible
                    time.sleep(max(0.0, frame_gap - (time.monotonic() - started)))
        finally:
            source.close()

    def on_camera_status(self, message: CameraStatus) -> None:
        self.camera_state = message.state
        self.camera_detail = message.detail
        self.status = {**self.status, "camera": message.state, "camera_detail": message.detail}

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

    # -- command palette ---------------------------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        if self.unlocked:
            for entry in self.entries:
                if self.allowed(entry):
                    yield SystemCommand(
                        self.t(entry.title_key),
                        self.t("palette.open_screen"),
                        partial(self.run_action, f"open_screen('{entry.id}')"),
                    )
            yield SystemCommand(
                self.t("palette.mode"), self.t("palette.mode_help"), self.action_change_mode
            )
            yield SystemCommand(
                self.t("palette.lock"), self.t("palette.lock_help"), self.action_lock
            )
        own = getattr(screen, "palette_commands", None)
        if own is not None:
            yield from own()
        yield SystemCommand(self.t("palette.quit"), self.t("palette.quit_help"), self.action_quit)

    def action_change_mode(self) -> None:
        from .widgets.dialogs import ModeChangeScreen

        if not self.unlocked:
            return

        def changed(mode: str | None) -> None:
            if mode:
                self._known_mode = mode
                self.notify(self.t("mode_dialog.changed", mode=self.t("mode." + mode)))
                self.refresh_status()
                refresh = getattr(self.screen, "on_mode_changed", None)
                if refresh:
                    refresh()

        self.push_screen(ModeChangeScreen(), changed)

    def action_command_palette(self) -> None:
        """Textual's command palette, its prompt and "no matches" in the screen language."""
        if self.use_command_palette and not LocalCommandPalette.is_open(self):
            self.push_screen(LocalCommandPalette(self.t, id="--command-palette"))

    def action_help_quit(self) -> None:
        help_quit(self, self.t)

    async def action_quit(self) -> None:
        """Quit; with a shift open, only once the operator confirms (y or F10)."""
        from .supervisor_common import ConfirmDialog

        if isinstance(self.screen, ConfirmDialog) and getattr(self, "_quit_asked", False):
            return  # the question is on screen: answer it
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

            lines = [self.t("quit.shift_open"), self.t("quit.how")]
            self.push_screen(ConfirmDialog(self.t("quit.title"), lines), answered)
            return
        await self.quit_now()

    async def quit_now(self) -> None:
        """Leave: the session is locked (audited as a lock, reason "quit") first."""
        if self._camera_worker is not None:
            self._camera_worker.cancel()
        if self.unlocked:
            self.store.lock("quit")
        self.exit(0)

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

        store = self.store
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
        store = self.store
        version = store.g.scalar("PRAGMA data_version")
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


def make_app(settings: Settings, store=None, sources=None, **kwargs) -> FieldkitApp:
    """Build the app: for ``fieldkit``, tests and the benchmark alike. Without a store the app
    opens ``settings.store_path`` itself, in a worker, after its first screen is painted."""
    return FieldkitApp(settings, store, sources, **kwargs)


def source_from_args(
    settings: Settings,
    camera: str | None = None,
    images: str | None = None,
    video: str | None = None,
):
    """--images / --video / --camera, else the configured camera, as a source spec."""
    from scanners.sources import SourceSpec

    cam = settings.camera
    size = {"width": cam.width, "height": cam.height, "fps": cam.fps}
    if images:
        return SourceSpec("images", images)
    if video:
        return SourceSpec("video", video)
    target = camera if camera is not None else cam.source
    if target.startswith(("camera:", "video:", "images:")):
        return SourceSpec.parse(target, **size)
    path = Path(target)
    if path.is_dir():
        return SourceSpec("images", target)
    if path.is_file() and not target.startswith("/dev/"):
        return SourceSpec("video", target)
    return SourceSpec("camera", target, **size)


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
