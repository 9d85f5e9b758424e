"""Keyboard and scanner input for the FieldKit app: the wedge, the hold-back, Tab/Enter.

Input from a USB scanner or ID reader that types like a keyboard is caught here, before any
widget sees the keys: every key goes to a burst detector (``scanners.wedge``), and a burst that
ends in Enter and reads as a known code is taken back out of whatever field had focus and
delivered to the screen as a :class:`~fieldkit.ui.messages.ScanRead`. While the store is
unlocked, printable keys are *held back* at the app for a few milliseconds: a scanner's keys
follow each other within that time, so a whole burst is recognised at its Enter without the
focused field ever seeing it; a person's key is released to the field as soon as no other key
follows quickly (in order, nothing lost), and anything else (Tab, F-keys, the mouse, a slow
Enter) releases what is held first.

After Tab or Enter, later keys wait until the screen has moved the focus (see
:meth:`KeyInput._move_focus_now` and the barrier below). A read is handed to the screen that
takes scans, or kept for the gate while none is open.
"""

from __future__ import annotations

import asyncio
import time
from functools import cache
from typing import Any, TypeGuard

from textual import events
from textual.message import Message
from textual.widgets import Input

from scanners.wedge import KeyboardWedge

from .app_base import FieldkitBase
from .messages import ScanRead

# A scan found in a burst of keys: where it starts, its text, what it reads as.
Found = tuple[int, str, Any]

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


class HoldTimeout(Message):
    """The hold-back time passed since a held key (decided in order with the queued keys)."""


class KeyInput(FieldkitBase):
    """The app's key handling: idle timer, keyboard-wedge scanners, keys after Tab/Enter."""

    wedge: KeyboardWedge
    hold_s: float
    _wedge_keys: list[tuple[str, float, tuple[Any, str, int] | None, Any]]
    _held: list[events.Key]  # keys held back while a burst may be a scan
    _barrier: bool  # Tab/Enter handed on; later keys wait in _after_barrier
    _after_barrier: list[events.Key]
    _hold_timer: Any
    _held_scan: tuple[ScanRead, float] | None  # a read no open screen took (see on_scan_read)

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
                    self._hold(event, event.character)
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

    def _hold(self, event: events.Key, character: str) -> None:
        """Hold a printable key (``character``) back while it may belong to a scanner burst."""
        self._held.append(event)
        self._note_wedge_key(character, event)
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
        found = self._scan_in_tail(keys, start, event.time) or self._unknown_scan(keys, start)
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

    def _scan_in_tail(self, keys: list, start: int, enter_time: float) -> Found | None:
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
        def read(s: int) -> Found | None:
            text = "".join(k[0] for k in keys[s:])
            result = parse_payload(text, config)
            return None if result.kind == "unknown" else (s, text, result)

        def clean(found: Found | None) -> TypeGuard[Found]:  # not merely an ID found in text
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

    def _unknown_scan(self, keys: list, start: int) -> Found | None:
        """A burst that reads as no known code, where the screen says no typing that long
        belongs (the gate's temperature field: ``takes_unknown_scan``): taken out of the field
        and delivered as a read of kind "unknown", so the screen says a code was read but is
        not one it knows, and the field is left as it was. Elsewhere (a note, a reason) the
        field keeps it: a scanner may type an approval number there."""
        takes = getattr(self.screen, "takes_unknown_scan", None)
        if takes is None or not takes(self.focused):
            return None
        from scanners.payloads import parse_payload

        text = "".join(k[0] for k in keys[start:])
        return start, text, parse_payload(text, self.payload_config())

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
