"""First-run set-up, login and the lock screen.

PIN work (scrypt) runs in a thread worker so the screen stays responsive on a Pi. Wrong PINs
are counted by the store; after too many the operator is locked out and the screen says until
when and what to do.
"""

from __future__ import annotations

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input, Label, Static

from scanners.wedge import KeyboardWedge

from ..errors import AuthError, FieldkitError, InputError
from .keyinput import WEDGE_MIN_LENGTH
from .messages import LoggedIn
from .typed import fieldkit_app, store_of
from .widgets import translate_bindings
from .widgets.authtext import auth_error_text
from .widgets.statusbar import StatusBar


class LoginField(Input):
    """A field of the login screen: each key goes by the screen first (scanner bursts, digits
    typed into an empty operator field). Ctrl+A selects the whole text, so Ctrl+A, Backspace
    clears a filled-in name (Textual's Input moves to the start on Ctrl+A)."""

    BINDINGS = [Binding("ctrl+a", "select_all", "select all", show=False)]

    # A key was handed to this field from the other one: when focus arrives the cursor stays
    # after it (not the whole text selected, which the next key would replace).
    handed_over = False

    def _on_focus(self, event: events.Focus) -> None:
        # Runs before Input's own handler (which selects on focus): that one is told not to.
        if self.handed_over and self.select_on_focus:
            self.select_on_focus = False
            self.call_next(setattr, self, "select_on_focus", True)
        self.handed_over = False

    async def _on_key(self, event: events.Key) -> None:
        screen = self.screen
        if isinstance(screen, LoginScreen) and screen.guard_key(self, event):
            event.stop()
            event.prevent_default()  # Input's own handler (and the Enter binding) never see it


def only_operator(store) -> str:
    """The name of the store's only operator (as ``fieldkit init`` leaves it), else ""."""
    if store is None or not store.initialised:
        return ""
    operators = store.keyring.list()
    return operators[0].name if len(operators) == 1 else ""


class LoginScreen(Screen):
    """Operator + PIN. Also the lock screen (``reason`` says why it is locked).

    The store is locked here, so the app does not hold keys back for scanner bursts: the
    screen watches its two fields itself. A burst that ends in Enter (a scanner: an ID at a
    locked gate) is never a PIN try: the fields get back what they held before it and the
    screen says to log in first. Digits typed into an empty operator field are a PIN: they
    go to the masked PIN field, never shown in clear. The other way round, a PIN is digits:
    a letter or Chinese character typed into an empty PIN field starts a name, so it goes to
    the operator field in place of the name offered there (the next operator at a shift
    change types their own name where focus is), and a PIN without a digit is never tried
    (it would count as a wrong PIN against the operator named above)."""

    BINDINGS = [Binding("escape", "clear", "clear", show=False)]

    def __init__(self, reason: str | None = None) -> None:
        super().__init__()
        self.reason = reason
        self.busy = False
        self._wedge = KeyboardWedge(min_length=WEDGE_MIN_LENGTH)
        # Per key of the burst so far: the field it went to, what that field held before (text,
        # cursor), when, and the field it was typed into.
        self._burst: list[tuple[Input, str, int, float, Input]] = []
        self._taking_name = False  # keys of a name are being moved from PIN 码 to 操作员

    def compose(self) -> ComposeResult:
        t = fieldkit_app(self).t
        yield StatusBar()
        with Vertical(id="login-box", classes="dialog"):
            yield Label(t("login.title"), classes="dialog-title")
            if self.reason:
                yield Static(t(f"login.reason_{self.reason}"), id="login-reason")
            yield Label(t("login.operator"))
            yield LoginField(value=self.known_operator(), id="login-operator", compact=True)
            yield Label(t("login.pin"))
            # Not selected on focus: a digit routed here from the operator field is the PIN's
            # first, and the next key must not replace it.
            yield LoginField(password=True, select_on_focus=False, id="login-pin", compact=True)
            yield Label(t("login_switch.hint"), id="login-switch-hint")
            yield Static("", id="login-message")
        yield Footer()

    def known_operator(self) -> str:
        """Who logs in, most likely: the last operator, or the only one there is."""
        store = fieldkit_app(self).store  # None while the app still opens it
        if store is None:
            return ""
        return store.kv.get("ui.last_operator", "") or only_operator(store)

    def on_mount(self) -> None:
        name = self.query_one("#login-operator", Input)
        self.query_one("#login-pin" if name.value else "#login-operator", Input).focus()

    def store_opened(self) -> None:
        """The store finished opening after this screen was shown: offer the last operator
        unless someone already typed a name."""
        name = self.query_one("#login-operator", Input)
        known = self.known_operator()
        if known and not name.value:
            name.value = known
            if fieldkit_app(self).focused is name:
                self.query_one("#login-pin", Input).focus()

    # -- keys: scanner bursts and digits -----------------------------------------------------
    def guard_key(self, field: Input, event: events.Key) -> bool:
        """Look at a key before ``field`` does; True when the screen took it."""
        if event.key == "enter":
            return self._burst_ended(event.time)
        if not (event.is_printable and event.character):
            return False
        target = field
        pin = self.query_one("#login-pin", Input)
        operator = self.query_one("#login-operator", Input)
        character = event.character
        if field is operator and not field.value and character.isdigit():
            if not any(op[:1].isdigit() for op in self._operator_names()):
                target = pin
        elif field is pin and self._taking_name:
            target = operator  # the rest of a name whose keys came before the focus moved
        elif field is pin and not pin.value and not (character.isdigit() or character.isspace()):
            target = operator  # a name, where the PIN goes: the start of a new one
        if self._burst and event.time - self._burst[-1][3] > self._wedge.max_gap_ms / 1000:
            self._burst.clear()  # a pause: what came before is a person's typing
        self._burst.append((target, target.value, target.cursor_position, event.time, field))
        self._wedge.feed(character, event.time)
        if target is field:
            return False
        if isinstance(target, LoginField) and self.focused is not target:
            target.handed_over = True
        self.set_focus(target)
        if target is operator and not self._taking_name:
            operator.value = ""  # the name offered there was someone else's
            # An input method commits a name in one write (王芳: two keys at once): its later
            # keys reach the PIN field before the focus has moved, and go on into the name.
            self._taking_name = True
            self.call_after_refresh(self._name_taken)
        target.insert_text_at_cursor(character)
        return True

    def _name_taken(self) -> None:
        self._taking_name = False

    def _operator_names(self) -> list[str]:
        store = fieldkit_app(self).store
        return [op.name for op in store.keyring.list()] if store is not None else []

    def _burst_ended(self, when: float) -> bool:
        """Enter: True (and the burst undone) when it ended a scanner's burst."""
        keys, self._burst = self._burst, []
        scan = self._wedge.feed("enter", when)
        if scan is None or not keys:
            return False
        restored: set[int] = set()
        scanned = keys[-scan.keys :]
        for field, value, cursor, _, _ in scanned:
            if id(field) not in restored:  # what the field held before the burst's first key
                restored.add(id(field))
                field.value = value
                field.cursor_position = cursor
        self.set_focus(scanned[0][4])  # where it was before a key moved it
        self._say(fieldkit_app(self).t("login_trial.scan_ignored"), error=True)
        return True

    def _say(self, text: str, error: bool = False) -> None:
        message = self.query_one("#login-message", Static)
        message.update(text)
        message.set_class(error, "error")

    @on(Input.Submitted, "#login-operator")
    def _next(self) -> None:
        self.query_one("#login-pin", Input).focus()

    @on(Input.Submitted, "#login-pin")
    def _submit(self) -> None:
        name = self.query_one("#login-operator", Input).value.strip()
        pin = self.query_one("#login-pin", Input).value
        if not name:
            self.query_one("#login-operator", Input).focus()
            return
        if self.busy or not pin:
            return
        if not any(c.isdigit() for c in pin):  # never a try: it would count against `name`
            self.query_one("#login-pin", Input).value = ""
            self._say(fieldkit_app(self).t("login_switch.pin_digits"), error=True)
            return
        self.busy = True
        self.query_one("#login-message", Static).update(fieldkit_app(self).t("login.checking"))
        self.unlock(name, pin)

    @work(thread=True, exit_on_error=False, group="login", exclusive=True)
    def unlock(self, name: str, pin: str) -> None:
        try:
            op = fieldkit_app(self).wait_for_store().unlock(name, pin)
        except FieldkitError as exc:
            fieldkit_app(self).call_from_thread(self._failed, name, exc)
            return
        store_of(self).kv.set("ui.last_operator", op.name)
        fieldkit_app(self).call_from_thread(self._succeeded, op)

    def _failed(self, name: str, exc: Exception) -> None:
        self.busy = False
        message = self.query_one("#login-message", Static)
        message.update(auth_error_text(fieldkit_app(self), exc, name))
        message.set_class(True, "error")
        pin = self.query_one("#login-pin", Input)
        pin.value = ""
        pin.focus()

    def _succeeded(self, op) -> None:
        self.busy = False
        fieldkit_app(self).post_message(LoggedIn(op.name, op.role))

    def action_clear(self) -> None:
        self.query_one("#login-pin", Input).value = ""


SETUP_ORDER = ["setup-cp-name", "setup-cp-code", "setup-supervisor", "setup-pin", "setup-pin2"]


def placeholder_checkpoint() -> tuple[str, str]:
    """The example checkpoint every fresh config carries (卡口 / CP-0001): never a real one."""
    from ..config import CheckpointSettings

    default = CheckpointSettings()
    return default.name, default.code


class SetupScreen(Screen):
    """First run: the checkpoint and its supervisor; then the recovery key, shown once.

    Focus starts on the checkpoint name. Enter moves to the next field, and submits once every
    field is filled; the example checkpoint of a fresh config (卡口 / CP-0001) is not taken."""

    def compose(self) -> ComposeResult:
        t = fieldkit_app(self).t
        cp = fieldkit_app(self).settings.checkpoint
        example_name, example_code = placeholder_checkpoint()
        yield StatusBar()
        with Vertical(id="setup-box", classes="dialog"):
            yield Label(t("setup.title"), classes="dialog-title")
            yield Static(t("setup.intro"))
            yield Static(t("setup.enter_hint"), id="setup-hint")
            yield Label(t("setup.checkpoint_name"))
            yield Input(
                value="" if cp.name == example_name else cp.name,
                placeholder=t("setup.name_example"),
                id="setup-cp-name",
                compact=True,
            )
            yield Label(t("setup.checkpoint_code"))
            yield Input(
                value="" if cp.code == example_code else cp.code,
                placeholder=t("setup.code_example"),
                id="setup-cp-code",
                compact=True,
            )
            yield Label(t("setup.supervisor"))
            yield Input(id="setup-supervisor", compact=True)
            yield Label(t("setup.pin", n=fieldkit_app(self).settings.security.min_pin_length))
            yield Input(password=True, id="setup-pin", compact=True)
            yield Label(t("setup.pin_again"))
            yield Input(password=True, id="setup-pin2", compact=True)
            yield Static("", id="setup-message")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#setup-cp-name", Input).focus()

    def store_opened(self) -> None:
        pass

    def problem(self, values: dict[str, str]) -> tuple[str, str, dict] | None:
        """(catalogue key, field, params) of the first thing to fix, or None."""
        example_name, example_code = placeholder_checkpoint()
        name, code = values["setup-cp-name"].strip(), values["setup-cp-code"].strip()
        min_pin = fieldkit_app(self).settings.security.min_pin_length
        if not name:
            return "setup.need_cp_name", "setup-cp-name", {}
        if name == example_name:
            return "setup.example_cp_name", "setup-cp-name", {"value": name}
        if not code:
            return "setup.need_cp_code", "setup-cp-code", {}
        if code.upper() == example_code:
            return "setup.example_cp_code", "setup-cp-code", {"value": code}
        if not values["setup-supervisor"].strip():
            return "setup.need_supervisor", "setup-supervisor", {}
        if len(values["setup-pin"]) < min_pin:
            return "setup.pin_too_short", "setup-pin", {"n": min_pin}
        if not values["setup-pin"].isdigit():  # the login screen takes a PIN of digits
            return "login_switch.setup_pin_digits", "setup-pin", {}
        if values["setup-pin"] != values["setup-pin2"]:
            return "setup.pin_mismatch", "setup-pin2", {}
        return None

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        values = {i: self.query_one(f"#{i}", Input).value for i in SETUP_ORDER}
        current = event.input.id or ""  # every field here has an id
        empty_after = [i for i in SETUP_ORDER[SETUP_ORDER.index(current) + 1 :] if not values[i]]
        if empty_after:  # filling in, top to bottom
            self.query_one(f"#{empty_after[0]}", Input).focus()
            return
        problem = self.problem(values)
        if problem:
            key, focus, params = problem
            self._say(fieldkit_app(self).t(key, **params), error=True)
            self.query_one(f"#{focus}", Input).focus()
            return
        self._say(fieldkit_app(self).t("setup.submitted"))
        self.create(
            values["setup-cp-name"].strip(),
            values["setup-cp-code"].strip(),
            values["setup-supervisor"].strip(),
            values["setup-pin"],
        )

    def _say(self, text: str, error: bool = False) -> None:
        message = self.query_one("#setup-message", Static)
        message.update(text)
        message.set_class(error, "error")

    @work(thread=True, exit_on_error=False, group="setup", exclusive=True)
    def create(self, cp_name: str, cp_code: str, supervisor: str, pin: str) -> None:
        store = fieldkit_app(self).wait_for_store()
        try:
            recovery = store.setup(
                supervisor, pin, checkpoint_name=cp_name or None, checkpoint_code=cp_code or None
            )
        except (InputError, AuthError) as exc:
            fieldkit_app(self).call_from_thread(self._say, fieldkit_app(self).error_text(exc), True)
            return
        store.kv.set("ui.last_operator", supervisor)
        fieldkit_app(self).call_from_thread(self._created, supervisor, recovery)

    def _created(self, supervisor: str, recovery: str) -> None:
        def done(_: object) -> None:
            op = store_of(self).operator
            fieldkit_app(self).post_message(LoggedIn(supervisor, op.role if op else "supervisor"))

        fieldkit_app(self).refresh_status()  # the header names the new checkpoint at once
        fieldkit_app(self).push_screen(RecoveryKeyScreen(recovery), done)


class RecoveryKeyScreen(Screen[bool]):
    """The recovery key, once. Leaving needs F10 so a stray Enter cannot skip it, and F10 is
    the only way out: the app's keys (screens, lock, mode, palette, quit) do nothing here and
    stay out of the footer (``own_keys_only``, see :mod:`.navigation`)."""

    BINDINGS = [Binding("f10", "written", "keys.written_down", id="setup.written")]
    own_keys_only = True

    def __init__(self, recovery: str) -> None:
        super().__init__()
        self.recovery = recovery

    def on_mount(self) -> None:
        translate_bindings(self, fieldkit_app(self).t)

    def compose(self) -> ComposeResult:
        t = fieldkit_app(self).t
        with Vertical(id="recovery-box", classes="dialog"):
            yield Label(t("recovery.title"), classes="dialog-title")
            yield Static(t("recovery.explain"))
            yield Static(self.recovery, id="recovery-key")
            yield Static(t("recovery.confirm"), id="recovery-confirm")
        yield Footer()

    def action_written(self) -> None:
        self.recovery = ""
        self.dismiss(True)
