"""Gate service: turns what the operator captured into a decision and a durable record.

Used by the gate screen and by ``fieldkit record``; it validates input (identity check digit,
plausible temperature, dates), looks up the key-person list, home isolation and pass
revocations, asks the rules engine, and records the passage.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, fields, replace
from datetime import date, datetime
from enum import Enum
from typing import Any

from scanners.idnumber import IdentityNumber, mask_id, parse_identity

from .crypto import blind_index, keyperson_hash
from .domain import (
    CodeColour,
    Decision,
    Direction,
    GateSituation,
    Outcome,
    PersonCategory,
    TestResult,
    VehicleSituation,
)
from .errors import InputError
from .i18n import id_problem, word
from .rules import (
    check_temperature,
    decide,
    decide_vehicle,
    hold_fever_companions,
    with_vehicle_reasons,
)
from .store import PassageInput, PassageRow, Store
from .store.passages import Capture


@dataclass(kw_only=True)
class GateEntry(Capture):
    """What the operator typed or scanned, before validation."""

    id_kind: str | None = None  # a hint; parsed from the number when None
    check_digit_confirmed: bool = False  # the operator looked again and confirmed
    certificate_problem: str | None = None  # a health certificate shown that did not verify
    # The worker's own 劝返 / 禁止通行 ("turn_back" / "deny") and why (a catalogue key, or words)
    worker_outcome: str | None = None
    worker_reason: str | None = None


@dataclass(frozen=True)
class Evaluation:
    identity: IdentityNumber | None
    decision: Decision
    keyperson: str | None
    isolation: str | None


ID_LENGTHS = (15, 18)


def looks_like_id(text: str, min_digits: int = 5) -> bool:
    """Typing that can only be (the start of) an ID number, never a reading, a date or a name:
    at least ``min_digits`` digits and nothing else, or digits with an X (the last character
    of an 18-character ID). A reading is at most 4 digits (``365``, ``36.5``)."""
    t = text.strip()
    if not t:
        return False
    body = t[:-1] if t[-1] in "xX" else t
    if not body.isdigit() or not body.isascii():
        return False
    return len(body) >= min_digits or (t[-1] in "xX" and len(body) >= 4)


def is_id_shaped(text: str) -> bool:
    """A whole ID number as typed: 15 or 18 characters, digits (and a final X)."""
    t = text.strip()
    return len(t) in ID_LENGTHS and looks_like_id(t)


def scrub_ids(text: str) -> str:
    """Any run of 15-18 ID characters in a line for the screen, masked (110105********1234)."""
    from scanners.idnumber import mask_id

    return _ID_RUN.sub(lambda m: mask_id(m.group(0)), text)


_ID_RUN = re.compile(r"(?<![0-9A-Za-z])[0-9]{14,17}[0-9Xx](?![0-9A-Za-z])")


def mask_typing(text: str) -> str:
    """An ID number while it is typed, as the field shows it: the first 6 characters, the
    7th to 14th (the birth date) as ``*``, and of what comes after at most the last 4; once
    all 18 are in it reads as :func:`mask_id` does. One character for one, so the cursor
    stays where it is in the text."""
    tail = max(0, min(4, len(text) - 14))
    return text[:6] + "*" * (len(text) - 6 - tail) + text[len(text) - tail :]


def parse_temperature(text: str) -> float:
    """'36.5', '365' (typed without the dot, as gloved fingers do), '36,5' → 36.5."""
    t = text.strip().replace(",", ".").replace("。", ".").replace("．", ".")
    if not t:
        raise InputError("err.temp_missing")
    if looks_like_id(t):  # never read as a reading, never echoed
        raise InputError("err.temp_is_id")
    try:
        if "." not in t and t.isdigit() and len(t) == 3:
            return int(t) / 10
        return float(t)
    except ValueError:
        raise InputError("err.temp_nan", value=text.strip()[:12]) from None


def parse_day(text: str, what: str = "date") -> date:
    t = text.strip().replace("/", "-").replace(".", "-")
    try:
        if len(t) == 8 and t.isdigit():
            return date(int(t[:4]), int(t[4:6]), int(t[6:]))
        return date.fromisoformat(t)
    except ValueError:
        raise InputError("err.date", what=word(what), value=text.strip()[:20]) from None


def _choice(value: str | None, enum: type[Enum], what: str) -> Any:
    if value is None or value == "":
        return None
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(e.value for e in enum)
        raise InputError("err.choice", what=word(what), allowed=allowed, value=value) from None


class KeypersonHashes:
    """The slow key-person hash (Argon2id, tens of ms) of the last few people, each computed
    once: :meth:`GateService.prepare` starts it as soon as the ID is read (a scan, or Enter in
    the ID field), while the thermometer is read, and the record's lookup takes the result, or
    waits for the one under way, instead of hashing again on the operator's Enter.

    Held in this process's memory only (as the form holds the number), for ``size`` people,
    keyed by the town key too: a new town key never meets an old hash."""

    def __init__(self, size: int = 8, hasher: Callable[[bytes, str], str] = keyperson_hash) -> None:
        self.size, self.hasher = size, hasher
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[bytes, str], Future[str]] = OrderedDict()

    def __call__(self, key: bytes, id_number: str) -> str:
        item = (key, id_number)
        with self._lock:
            future = self._items.get(item)
            mine = future is None
            if future is None:
                future = self._items[item] = Future()
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
            else:
                self._items.move_to_end(item)
        if mine:
            try:
                future.set_result(self.hasher(key, id_number))
            except BaseException as exc:
                with self._lock:
                    self._items.pop(item, None)
                future.set_exception(exc)
        return future.result()

    def forget(self) -> None:
        with self._lock:
            self._items.clear()


HASHES = KeypersonHashes()


class GateService:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._town_key: bytes | None = None
        self._town_key_read = False

    @property
    def rules(self):
        return self.store.settings.rules

    @property
    def mode(self) -> str:
        return self.store.settings.checkpoint.area_mode

    def town_hash(self, id_number: str) -> str | None:
        if not self._town_key_read:
            self._town_key = self.store.secrets.get("town_index_key")
            self._town_key_read = True
        return blind_index(self._town_key, id_number) if self._town_key else None

    def prepare(self, id_number: str | None) -> None:
        """Ahead of the record (in a worker, once the ID is read): the key-person hash, so
        that the lookup at Enter finds it done. Nothing for a number that is not an ID."""
        if not id_number:
            return
        ident = parse_identity(id_number)
        if not ident.number or ident.problem:
            return
        try:
            key = self.store.secrets.get("town_index_key")
            if key is not None:
                HASHES(key, ident.number)
        except Exception:  # noqa: BLE001 — met again, and reported, by the record's lookup
            return

    def identify(self, entry: GateEntry) -> IdentityNumber | None:
        if not entry.id_number:
            return None
        ident = parse_identity(entry.id_number, entry.id_kind)
        confirmable = (
            ident.kind == "resident_id"
            and not ident.check_ok
            and ident.birth_date is not None
            and ident.number[-1] in "0123456789X"
        )
        if ident.problem and confirmable and entry.check_digit_confirmed:
            return ident  # wrong check digit, but the operator confirmed the card says so
        if ident.problem:
            shown = mask_id(ident.number or entry.id_number or "")
            if confirmable and ident.problem_code == "check_digit":
                raise InputError("err.id_check_digit", id=shown, **dict(ident.problem_params))
            raise InputError("err.id_invalid", id=shown, problem=id_problem(ident))
        return ident

    def evaluate(self, entry: GateEntry, now: datetime | None = None) -> Evaluation:
        ident = self.identify(entry)
        direction = _choice(entry.direction, Direction, "direction")
        if direction is None:
            raise InputError("err.direction")
        check_temperature(entry.temperature, self.rules)
        keyperson = isolation = None
        if ident:
            keyperson = self.store.keypersons.lookup_id(ident.number, hasher=HASHES)
            isolation = self.store.isolation.status(self.store.index(ident.number))
        pass_problem = entry.pass_problem
        if entry.pass_id and not pass_problem and self.store.revocations.is_revoked(entry.pass_id):
            pass_problem = "why.pass.revoked"
        skipped = entry.temperature_skipped
        if entry.worker_outcome and entry.temperature is None and not skipped:
            skipped = "fixturnback.no_reading"  # turned away before a reading was taken
        situation = GateSituation(
            direction=direction,
            mode=self.mode,
            temperature=entry.temperature,
            temperature_skipped_reason=skipped,
            code_colour=_choice(entry.code_colour, CodeColour, "code colour"),
            test_date=entry.test_date,
            test_result=_choice(entry.test_result, TestResult, "test result"),
            category=_choice(entry.category, PersonCategory, "category") or PersonCategory.RESIDENT,
            keyperson_category=keyperson,
            under_home_isolation=isolation
            in ("home_isolation", "home_monitoring", "居家隔离医学观察", "居家健康监测"),
            pass_problem=pass_problem,
            certificate_problem=entry.certificate_problem,
            has_escort=bool(entry.escort),
            approval_ref=entry.approval_ref,
            trip_reason=entry.trip_reason,
            identified=bool(ident or (entry.name and entry.name.strip())),
            now=now,
            worker_outcome=_choice(entry.worker_outcome, Outcome, "decision"),
            worker_reason=entry.worker_reason,
        )
        return Evaluation(ident, decide(situation, self.rules), keyperson, isolation)

    def _input(
        self, entry: GateEntry, ev: Evaluation, supersedes: str | None = None
    ) -> PassageInput:
        ident = ev.identity
        captured = {f.name: getattr(entry, f.name) for f in fields(Capture)}
        captured["id_number"] = ident.number if ident else None  # normalised (15 → 18 digits)
        return PassageInput(
            **captured,
            id_kind=ident.kind if ident else "none",
            id_check_ok=ident.check_ok if ident else True,
            confirmed_by=self.store.operator.name if self.store.operator else None,
            supersedes=supersedes,
        )

    def commit(
        self, entry: GateEntry, ev: Evaluation | None = None
    ) -> tuple[Evaluation, PassageRow]:
        ev = ev or self.evaluate(entry)
        return ev, self.store.passages.record(self._input(entry, ev), ev.decision)

    def needs_supervisor(self, passage_id: str, ev: Evaluation) -> bool:
        """A correction that lets in someone the gate turned back, denied or referred."""
        old = self.store.passages.get(passage_id)
        return old is not None and old.decision != "admit" and ev.decision.outcome.value == "admit"

    def correct(
        self, passage_id: str, entry: GateEntry, supervisor: Any = None
    ) -> tuple[Evaluation, PassageRow]:
        """Record a corrected version of a passage; the old one is marked superseded (audited).

        Turning a turn-back, denial or referral into an admit takes a supervisor (verified by
        the caller): ``PermissionDenied`` without one; the supervisor is recorded and audited."""
        from .errors import PermissionDenied

        ev = self.evaluate(entry)
        override = self.needs_supervisor(passage_id, ev)
        op = self.store.operator
        if override and supervisor is None and op is not None and op.is_supervisor:
            supervisor = op  # a supervisor at the gate has given their PIN at login
        if override and (supervisor is None or not supervisor.is_supervisor):
            raise PermissionDenied("gate.err.correction_needs_supervisor")
        data = self._input(entry, ev, supersedes=passage_id)
        old = self.store.passages.get(passage_id)
        if old is not None:  # a correction is of that passage: it keeps the passage's time
            data = replace(data, ts=datetime.fromisoformat(old.ts))
        if override:
            data = replace(data, confirmed_by=supervisor.name)
            with self.store.g.tx():  # the supervisor's word first, then the correction itself
                self.store.audit.append(
                    "correction_override",
                    op.name if op else None,
                    {
                        "record": passage_id,
                        "from": old.decision if old else None,
                        "to": "admit",
                        "confirmed_by": supervisor.name,
                    },
                )
        row = self.store.passages.record(data, ev.decision)
        return ev, row

    def evaluate_vehicle(
        self,
        *,
        direction: str,
        plate: str,
        kind: str,
        occupants: list[GateEntry],
        pass_problem: str | None = None,
    ) -> tuple[Decision, list[Evaluation]]:
        if not plate.strip():
            raise InputError("err.plate_missing")
        if kind not in ("resident", "outside", "supply"):
            raise InputError("err.vehicle_kind", value=kind)
        evs = [self.evaluate(replace(o, direction=direction)) for o in occupants]
        held = hold_fever_companions([e.decision for e in evs], self.rules)
        evs = [replace(e, decision=d) for e, d in zip(evs, held, strict=True)]
        decision = decide_vehicle(
            VehicleSituation(
                direction=_choice(direction, Direction, "direction"),
                mode=self.mode,
                plate=plate,
                kind=kind,
                pass_problem=pass_problem,
                occupants=tuple(e.decision for e in evs),
            ),
            self.rules,
        )
        evs = [replace(e, decision=with_vehicle_reasons(e.decision, decision)) for e in evs]
        return decision, evs

    def commit_vehicle(
        self,
        *,
        direction: str,
        plate: str,
        kind: str,
        occupants: list[GateEntry],
        pass_no: str | None = None,
        disinfected: bool = False,
        pass_problem: str | None = None,
    ):
        decision, evs = self.evaluate_vehicle(
            direction=direction,
            plate=plate,
            kind=kind,
            occupants=occupants,
            pass_problem=pass_problem,
        )
        inputs = [
            (self._input(replace(o, direction=direction), ev), ev.decision)
            for o, ev in zip(occupants, evs, strict=False)
        ]
        vid, rows = self.store.vehicles.record(
            direction=direction,
            plate=plate,
            pass_no=pass_no,
            kind=kind,
            disinfected=disinfected,
            occupants=inputs,
            decision=decision,
        )
        return decision, vid, rows
