"""Editing a household member from the household card: health management status, start date
(the planned end follows from ``[rules]``), categories, how the person was found, and the
personal fields; removing a member (with a reason, confirmed).

Keyboard first. The form opens on the status line: a digit picks the status (0 none ... 5
released). Enter goes to the next field; on the categories line digits toggle categories (7
steps through the occupational groups); on the "found via" line a digit picks the source. The
start date takes the gate's shorthands (``3`` = three days ago, ``0401`` = 1 April,
``2022-04-01``). Personal fields stay masked: typing one replaces it, leaving it empty keeps it.
Ctrl+S saves from anywhere; bad input keeps the form open with the reason.

Every change goes through ``store.ledger.save_member`` (version, last writer, ``ledger_edit``
event, the gate's isolation index). Leaving home isolation or monitoring is a release (解除):
the form saves the other changes and hands over to the supervisor-confirmed release dialog.

Over 400 lines as one piece: almost all of it is the one form (its lines, keys and the checks
of a save), which reads best in one place; the removal dialog is small and belongs with it.
"""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Label, Static

from scanners.idnumber import mask_id, parse_identity

from ..errors import FieldkitError, InputError
from ..ledger import households as _households
from ..ledger.households import end_date_for, normalise_id
from ..ledger.model import (
    FOUND_VIA,
    HEALTH_STATUSES,
    HOME_STATUSES,
    OCCUPATION_CATEGORIES,
    phone_problem,
)
from ..ledger.monitoring import RELEASABLE
from .errortext import translate_id_problem
from .gate_form import parse_test_date
from .typed import fieldkit_app, store_of
from .widgets import translate_bindings

STATUS_KEYS = {str(i): s for i, s in enumerate(HEALTH_STATUSES)}  # 0 none … 5 released
CATEGORY_KEYS = {
    "1": "close_contact",
    "2": "secondary_contact",
    "3": "overseas_return",
    "4": "mid_high_risk_return",
    "5": "vulnerable",
    "6": "tenant",
}
OCCUPATION_KEY = "7"  # steps through OCCUPATION_CATEGORIES, then none
FOUND_KEYS = {str(i): f for i, f in enumerate(FOUND_VIA, 1)}
REMOVE_REASONS = {"1": "moved_away", "2": "deceased", "3": "mistake"}
# A person under these may be moved between them (or into central isolation) on the form;
# anything else ends the measure and needs the supervisor's release.
KEEP_WATCHED = (*HOME_STATUSES, "central_isolation")


def today() -> date:
    """The ledger's clock (tests freeze it there)."""
    return _households.now_local().date()


class ChoiceLine(Static, can_focus=True):
    """A line of numbered choices; the form reads the digits typed while it has focus."""


class MemberForm(ModalScreen[dict | None]):
    """Edit one member. Dismisses with ``{"saved": bool, "release": bool}`` or None."""

    CSS_PATH = "patrol.tcss"
    # Ctrl+S is not a priority binding: a priority key would be handled before the digit typed
    # just before it reached the focused field (and that digit would be lost).
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "keys.cancel", id="mform.cancel"),
        Binding("ctrl+s", "save", "keys.patrol_save", id="mform.save"),
    ]
    ORDER = (
        "mf-status",
        "mf-start",
        "mf-cats",
        "mf-found",
        "mf-id",
        "mf-name",
        "mf-phone",
        "mf-relation",
    )

    def __init__(self, household, member) -> None:
        super().__init__()
        self.household, self.member = household, member
        self.status = member.health_status or "none"
        self.categories = list(member.categories)
        self.found_via = member.found_via
        self.start_touched = False

    # -- layout -----------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        t = fieldkit_app(self).t
        h, m = self.household, self.member
        with Vertical(classes="dialog", id="mform-box"):
            yield Label(
                t(
                    "patrol.mform.title",
                    place=f"{h.building}-{h.unit}-{h.room}",
                    name=m.name_masked or m.id_masked or "?",
                ),
                classes="dialog-title",
            )
            yield ChoiceLine("", id="mf-status", classes="choice")
            yield Input(
                id="mf-start",
                compact=True,
                value=m.status_start or "",
                placeholder=t("patrol.mform.start_hint"),
                restrict=r"[0-9\-/.]*",
                max_length=10,
            )
            yield Static("", id="mf-end", classes="hint")
            yield ChoiceLine("", id="mf-cats", classes="choice")
            yield ChoiceLine("", id="mf-found", classes="choice")
            yield Input(
                id="mf-id",
                compact=True,
                password=True,
                placeholder=t(
                    "patrol.mform.keep", field=t("ledger.field.id_number"), value=m.id_masked or "-"
                ),
            )
            yield Input(
                id="mf-name",
                compact=True,
                placeholder=t(
                    "patrol.mform.keep", field=t("ledger.field.name"), value=m.name_masked or "-"
                ),
            )
            yield Input(
                id="mf-phone",
                compact=True,
                restrict=r"[0-9+\- ]*",
                placeholder=t(
                    "patrol.mform.keep", field=t("ledger.field.phone"), value=m.phone_masked or "-"
                ),
            )
            yield Input(
                id="mf-relation",
                compact=True,
                value=m.relation or "",
                placeholder=t("ledger.field.relation"),
            )
            yield Static("", id="mform-message")
        yield Footer()

    def on_mount(self) -> None:
        translate_bindings(self, fieldkit_app(self).t)
        self._render_choices()
        self.query_one("#mf-status", ChoiceLine).focus()

    def _render_choices(self) -> None:
        t = fieldkit_app(self).t

        def mark(key: str, text: str, on: bool) -> str:
            return f"[b reverse]{key} {text}[/]" if on else f"{key} {text}"

        status = "  ".join(
            mark(k, t("ledger.status." + s), s == self.status) for k, s in STATUS_KEYS.items()
        )
        self.query_one("#mf-status", ChoiceLine).update(t("patrol.mform.status") + " " + status)
        cats = [
            mark(k, t("ledger.cat." + c), c in self.categories) for k, c in CATEGORY_KEYS.items()
        ]
        occ = [c for c in self.categories if c in OCCUPATION_CATEGORIES]
        cats.append(
            mark(
                OCCUPATION_KEY,
                t("patrol.mform.occupation")
                + (":" + "、".join(t("ledger.cat." + c) for c in occ) if occ else ""),
                bool(occ),
            )
        )
        other = [
            c
            for c in self.categories
            if c not in CATEGORY_KEYS.values() and c not in OCCUPATION_CATEGORIES
        ]
        text = t("patrol.mform.categories") + " " + "  ".join(cats)
        if other:
            text += "  " + t(
                "patrol.mform.also", names="、".join(t("ledger.cat." + c) for c in other)
            )
        self.query_one("#mf-cats", ChoiceLine).update(text)
        self.query_one("#mf-found", ChoiceLine).update(
            t("patrol.mform.found")
            + " "
            + "  ".join(
                mark(k, t("ledger.found." + f), f == self.found_via) for k, f in FOUND_KEYS.items()
            )
        )
        self._render_end()

    def _render_end(self) -> None:
        t = fieldkit_app(self).t
        end = self.query_one("#mf-end", Static)
        if self.status not in HOME_STATUSES:
            end.update("")
            return
        try:
            start = parse_test_date(self.query_one("#mf-start", Input).value, today()) or today()
        except InputError:
            end.update("")
            return
        rules = fieldkit_app(self).settings.rules
        days = (
            rules.isolation_days
            if self.status == "home_isolation"
            else rules.health_monitoring_days
        )
        end.update(
            t(
                "patrol.mform.end",
                start=start.isoformat(),
                end=end_date_for(self.status, start, rules),
                days=days,
            )
        )

    # -- keys -------------------------------------------------------------------------------
    def on_key(self, event) -> None:
        focused = self.focused
        if not isinstance(focused, ChoiceLine):
            return
        ch = event.character
        handled = True
        if event.key == "enter":
            self._advance(focused.id)
        elif focused.id == "mf-status" and ch in STATUS_KEYS:
            self.set_status(STATUS_KEYS[ch])
        elif focused.id == "mf-cats" and ch in CATEGORY_KEYS:
            self.toggle_category(CATEGORY_KEYS[ch])
        elif focused.id == "mf-cats" and ch == OCCUPATION_KEY:
            self.next_occupation()
        elif focused.id == "mf-found" and ch in FOUND_KEYS:
            code = FOUND_KEYS[ch]
            self.found_via = None if self.found_via == code else code
            self._render_choices()
        else:
            handled = False
        if handled:
            event.stop()
            event.prevent_default()

    def set_status(self, status: str) -> None:
        if status != self.status and not self.start_touched:
            # A new measure starts today unless another day is typed.
            start = self.query_one("#mf-start", Input)
            start.value = (
                "" if status != self.member.health_status else (self.member.status_start or "")
            )
        self.status = status
        self._render_choices()

    def toggle_category(self, code: str) -> None:
        if code in self.categories:
            self.categories.remove(code)
        else:
            self.categories.append(code)
        self._render_choices()

    def next_occupation(self) -> None:
        occ = [c for c in self.categories if c in OCCUPATION_CATEGORIES]
        current = occ[0] if occ else None
        self.categories = [c for c in self.categories if c not in OCCUPATION_CATEGORIES]
        i = OCCUPATION_CATEGORIES.index(current) + 1 if current else 0
        if i < len(OCCUPATION_CATEGORIES):
            self.categories.append(OCCUPATION_CATEGORIES[i])
        self._render_choices()

    @on(Input.Changed, "#mf-start")
    def _start_typed(self, event: Input.Changed) -> None:
        if self.query_one("#mf-start", Input).has_focus:
            self.start_touched = True
        self._render_end()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._advance(event.input.id)

    def _advance(self, wid: str | None) -> None:
        i = self.ORDER.index(wid) if wid in self.ORDER else -1
        if 0 <= i < len(self.ORDER) - 1:
            self.query_one(f"#{self.ORDER[i + 1]}").focus()
        else:
            self.action_save()

    # -- save -------------------------------------------------------------------------------
    def fields(self) -> tuple[dict[str, Any], bool]:
        """(fields for ``ledger.save_member``, release wanted); InputError when bad."""
        m = self.member
        value = {
            w: self.query_one(f"#{w}", Input).value.strip()
            for w in ("mf-start", "mf-id", "mf-name", "mf-phone", "mf-relation")
        }
        out: dict[str, Any] = {}
        if value["mf-id"]:
            ident = parse_identity(value["mf-id"])
            if ident.problem or not ident.number:
                self.query_one("#mf-id", Input).focus()
                raise FormError(
                    "patrol.mform.err.id",
                    id=mask_id(ident.number or value["mf-id"]),
                    problem=translate_id_problem(ident, fieldkit_app(self).t),
                )
            out["id_number"], out["id_kind"] = normalise_id(value["mf-id"])
        if value["mf-name"]:
            out["name"] = value["mf-name"]
        if value["mf-phone"]:
            why = phone_problem(value["mf-phone"])  # the import's rule: 1330000 is no number
            if why:
                self.query_one("#mf-phone", Input).focus()
                raise FormError(
                    "patrol.mform.err.phone_why",
                    value=value["mf-phone"],
                    why=fieldkit_app(self).t(f"ledger.phone_problem.{why}"),
                )
            out["phone"] = value["mf-phone"]
        if value["mf-relation"] != (m.relation or ""):
            out["relation"] = value["mf-relation"]
        if list(self.categories) != list(m.categories):
            out["categories"] = list(self.categories)
        if self.found_via != m.found_via and self.found_via:
            out["found_via"] = self.found_via
        release = False
        old = m.health_status or "none"
        if self.status == "released" and old != "released":
            if old not in RELEASABLE:
                raise FormError("patrol.mform.err.nothing_to_release")
            release = True
        elif old in KEEP_WATCHED and self.status not in KEEP_WATCHED and self.status != old:
            raise FormError(
                "patrol.mform.err.leave_needs_release",
                status=fieldkit_app(self).t("ledger.status." + old),
            )
        elif self.status != old or (value["mf-start"] or "") != (m.status_start or ""):
            try:
                start = parse_test_date(value["mf-start"], today())
            except InputError:
                self.query_one("#mf-start", Input).focus()
                raise FormError("patrol.mform.err.date", value=value["mf-start"]) from None
            if self.status != old:
                out["health_status"] = self.status
            if self.status not in ("none", "released"):
                if start is not None:
                    out["status_start"] = start.isoformat()
                elif self.status not in HOME_STATUSES:
                    out["status_start"] = today().isoformat()
        return out, release

    def action_save(self) -> None:
        message = self.query_one("#mform-message", Static)
        try:
            fields, release = self.fields()
            saved = False
            if fields:
                _, outcome = store_of(self).ledger.save_member(
                    self.member.household_id, fields, member_id=self.member.id
                )
                saved = outcome != "unchanged"
        except FormError as exc:
            message.update(fieldkit_app(self).t(exc.key, **exc.params))
            message.add_class("error")
            return
        except FieldkitError as exc:
            message.update(member_error_text(exc, fieldkit_app(self)))
            message.add_class("error")
            return
        self.dismiss({"saved": saved, "release": release})

    def action_cancel(self) -> None:
        self.dismiss(None)


class FormError(InputError):
    """A form problem with its catalogue key (shown in the UI language)."""

    def __init__(self, key: str, **params: Any) -> None:
        super().__init__(key)
        self.key, self.params = key, params


# Ledger error codes said in the form's own words (by code, never by the text).
_FORM_KEYS = {
    "err.member_duplicate": "patrol.mform.err.duplicate",
    "err.member_needs_id_or_name": "patrol.need_id_or_name",
}


def member_error_text(exc: BaseException, app) -> str:
    key = _FORM_KEYS.get(getattr(exc, "code", None) or "")
    return app.t(key) if key else app.error_text(exc)


class RemoveMemberDialog(ModalScreen[str | None]):
    """Remove a member (moved away, deceased, registered by mistake): one digit confirms."""

    CSS_PATH = "patrol.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "keys.cancel", id="mremove.cancel")
    ]

    def __init__(self, household, member) -> None:
        super().__init__()
        self.household, self.member = household, member

    def compose(self) -> ComposeResult:
        t = fieldkit_app(self).t
        h, m = self.household, self.member
        with Vertical(classes="dialog", id="mremove-box"):
            yield Label(
                t(
                    "patrol.mremove.title",
                    name=m.name_masked or m.id_masked or "?",
                    place=f"{h.building}-{h.unit}-{h.room}",
                ),
                classes="dialog-title",
            )
            yield Static(
                t(
                    "patrol.mremove.keys",
                    keys="  ".join(
                        f"{k} {t('patrol.mremove.reason.' + r)}" for k, r in REMOVE_REASONS.items()
                    ),
                ),
                id="mremove-keys",
            )
            yield Static("", id="mremove-message")
        yield Footer()

    def on_mount(self) -> None:
        translate_bindings(self, fieldkit_app(self).t)
        if self.member.health_status in KEEP_WATCHED:
            message = self.query_one("#mremove-message", Static)
            message.update(
                fieldkit_app(self).t(
                    "patrol.mremove.watched",
                    status=fieldkit_app(self).t("ledger.status." + self.member.health_status),
                )
            )
            message.add_class("error")

    def on_key(self, event) -> None:
        if event.character in REMOVE_REASONS:
            event.stop()
            event.prevent_default()
            if self.member.health_status in KEEP_WATCHED:
                return  # release first: removing would lift the gate's alert unconfirmed
            self.dismiss(REMOVE_REASONS[event.character])

    def action_cancel(self) -> None:
        self.dismiss(None)
