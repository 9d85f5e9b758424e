"""Navigation for the FieldKit app: the screens of the registry, login and lock, the palette.

The registry (:mod:`.registry`) lists the screens; here the app opens one (imported the first
time), keeps the operator to the screens their role may open, covers the screen with the login
when it locks, and fills the command palette.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial

from textual.app import SystemCommand
from textual.screen import ModalScreen, Screen

from .app_base import FieldkitBase
from .keyhelp import with_keys
from .registry import ScreenEntry, ScreenModuleError
from .textual_text import LocalCommandPalette, help_quit


class Navigation(FieldkitBase):
    """Which screen is on show: opened from the registry, the login over it, the palette."""

    locked_operator: str | None = None  # who was working when the screen last locked

    def show_login(self, reason: str | None = None) -> None:
        from .login import LoginScreen, SetupScreen

        if self.store is None:  # still opening: a store file means someone set it up
            new = not self.settings.store_path.exists()
        else:
            new = not self.store.initialised
        self.push_screen(SetupScreen() if new else LoginScreen(reason=reason))

    def allowed(self, entry: ScreenEntry) -> bool:
        op = self.store.operator if self.store is not None else None
        return op is not None and op.role in entry.roles

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

    def own_keys_only(self) -> bool:
        """The screen on show may be left only by its own keys (the recovery key, shown once:
        F10): the app's keys to other screens, the lock, the mode and the palette do nothing."""
        return bool(getattr(self.screen, "own_keys_only", False))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Keys that cannot work now stay out of the footer: no screens before a login, none
        over a dialog or a screen that takes only its own keys; locking only when unlocked."""
        if action in ("open_screen", "lock", "change_mode", "command_palette"):
            if self.own_keys_only():
                return False
        if action in ("open_screen", "lock", "change_mode"):
            return self.unlocked and not isinstance(self.screen, ModalScreen)
        return True

    async def action_open_screen(self, screen_id: str) -> None:
        if isinstance(self.screen, ModalScreen) or not self.unlocked or self.own_keys_only():
            return
        await self.open_screen(screen_id)

    def action_lock(self) -> None:
        self.lock_now("manual")

    def lock_now(self, reason: str) -> None:
        """Lock the store and cover the screen; work in progress stays behind the lock.

        Who was working is remembered (:attr:`locked_operator`): when the same operator
        unlocks, the screen that was locked comes back, however the session began (a login or
        the first-run set-up). The header names nobody while locked. (Ctrl+L does nothing on a
        screen that takes only its own keys, but the idle lock covers it too: the recovery key
        is not left on show on an unattended device, and comes back after the PIN.)"""
        from .login import LoginScreen

        store = self.store
        if store is None or not store.is_unlocked or isinstance(self.screen, LoginScreen):
            return
        self.locked_operator = store.operator.name if store.operator else None
        store.lock(reason)
        from ..gate import HASHES  # here, not at start-up: the registry loads no core

        HASHES.forget()  # the ID numbers of the last people hashed leave memory with the keys
        self.status = {**self.status, "operator": None, "role": None}
        self.show_login(reason)
        self.refresh_status()

    def check_idle_lock(self) -> None:
        idle = self.clock() - self.last_input
        if self.unlocked and idle >= self.settings.ui.idle_lock_minutes * 60:
            self.lock_now("idle")

    # -- command palette ---------------------------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The palette; each command a key also does names the key (:mod:`.keyhelp`)."""
        if not self.unlocked:
            return self._commands(screen)
        return with_keys(self, screen, self._commands(screen))

    def _commands(self, screen: Screen) -> Iterable[SystemCommand]:
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

        if not self.unlocked or self.own_keys_only():
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
        if self.own_keys_only():
            return
        if self.use_command_palette and not LocalCommandPalette.is_open(self):  # type: ignore[arg-type]  # stub wants App[object]
            self.push_screen(LocalCommandPalette(self.t, id="--command-palette"))

    def action_help_quit(self) -> None:
        help_quit(self, self.t)
