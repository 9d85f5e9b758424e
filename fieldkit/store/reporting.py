"""What reports read from the gate tables, as typed values: the store's side of
:mod:`fieldkit.reports` (reports hold no SQL; they count and lay out what this returns).

A report covers a :class:`Scope` (one shift, one day, or everything); corrected passages
(``superseded``) are left out unless asked for. Aggregates come back grouped, so a day of
100,000 passages is a few hundred values, not 100,000 rows.

One piece (~410 lines): every read reports make on the gate tables, so the SQL they depend on
is in one place, which is why this module exists.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .passages import _SEALED_BLANK, SEALED

if TYPE_CHECKING:
    from . import Store


@dataclass(frozen=True)
class Scope:
    """Which gate records a report covers: a shift (wins), a day, or every record."""

    day: str | None = None
    shift_id: str | None = None

    def where(self) -> tuple[str, list[Any]]:
        if self.shift_id:
            return "p.shift_id = ?", [self.shift_id]
        if self.day:
            return "p.day = ?", [self.day]
        return "1 = 1", []


@dataclass(frozen=True)
class GateGroup:
    """``n`` current passages alike in everything reports count them by."""

    direction: str
    decision: str
    code_colour: str | None
    not_measured: bool
    fever: bool  # temperature at or above the threshold asked for
    positive: bool  # test result positive
    reasons: str  # the reasons as stored (JSON text)
    hour: int  # wall-clock hour of the passage
    n: int


@dataclass(frozen=True)
class VehicleGroup:
    direction: str
    decision: str
    n: int


@dataclass(frozen=True)
class AlertCandidate:
    """A current passage nobody acknowledged yet (its reasons say whether it had alerts)."""

    id: str
    ts: str
    name_masked: str | None
    id_masked: str | None
    decision: str
    reasons: str


@dataclass(frozen=True)
class CategoryCount:
    category: str
    passages: int
    persons: int  # distinct blind indexes, plus one per passage without an ID number


@dataclass(frozen=True)
class PassageRead:
    """One read of a scope's passages (:meth:`Reporting.passage_export`): the rows of the
    export's table and, from the current passages among them, the groups, temperature bins
    and unacknowledged passages that the separate reads give."""

    rows: list[Any]  # dicts, or what ``row`` made of them
    groups: list[GateGroup]
    tenths: list[tuple[int, int]]
    unacknowledged: list[AlertCandidate] | None  # None: not asked for


class Reporting:
    def __init__(self, store: Store) -> None:
        self._s = store

    # -- counts -----------------------------------------------------------------------------
    def _current(self, columns: str, where: str, params: list[Any]) -> list[dict[str, Any]]:
        """Current passages (``p``) matching ``where``, unsealed: ``columns`` plus the sealed
        values (rows not yet sealed give theirs from their own columns)."""
        unseal = self._s.passages.unseal
        return [
            unseal(r)
            for r in self._s.g.query(
                f"SELECT p.id, {columns}, p.sealed_enc, {_SEALED_COLUMNS} FROM passages p "
                f"WHERE p.superseded = 0 AND ({where})",
                params,
            )
        ]

    def gate_groups(self, scope: Scope, fever_threshold: float) -> list[GateGroup]:
        """The scope's current passages grouped by everything reports count them by. The
        health values are sealed: each record is opened here (once per session, see
        :meth:`Passages.unseal`) and grouped in Python."""
        where, params = scope.where()
        rows = self._current("p.ts, p.direction, p.decision", where, params)
        return _groups(Counter(_group_key(r, fever_threshold) for r in rows))

    def vehicle_groups(self, scope: Scope) -> list[VehicleGroup]:
        where, params = scope.where()
        rows = self._s.g.query(
            f"SELECT direction, decision, count(*) AS n FROM vehicle_passages p "
            f"WHERE ({where}) GROUP BY direction, decision",
            params,
        )
        return [VehicleGroup(r["direction"], r["decision"], r["n"]) for r in rows]

    def inside_at(self, when: str | None, *, opening: str | None = None) -> int:
        """People admitted in and not (yet) matched by an exit at time ``when`` (None: now).

        ``opening``: ``when`` is the opening of that shift, so none of its own passages came
        before it, even one stamped in the same millisecond as the opening."""
        if when is None:
            return self._s.passages.inside_now()
        return (
            self._s.g.scalar(
                "SELECT count(*) FROM passages p WHERE p.direction='in' AND p.decision='admit' "
                "AND p.superseded=0 AND julianday(p.ts) <= julianday(:when) AND (:opening IS "
                "NULL OR p.shift_id IS NOT :opening) AND NOT EXISTS (SELECT 1 FROM passages x "
                "WHERE x.entry_id = p.id AND x.superseded = 0 AND julianday(x.ts) <= "
                "julianday(:when) AND (:opening IS NULL OR x.shift_id IS NOT :opening))",
                {"when": when, "opening": opening},
            )
            or 0
        )

    def double_entries(self, shift_id: str) -> int:
        """Admitted entries in the shift of someone whose earlier admitted entry had no exit."""
        return (
            self._s.g.scalar(
                "SELECT count(*) FROM passages p WHERE p.shift_id = ? AND p.direction = 'in' AND "
                "p.decision = 'admit' AND p.superseded = 0 AND p.id_hash IS NOT NULL AND EXISTS ("
                "SELECT 1 FROM passages q WHERE q.id_hash = p.id_hash AND q.id != p.id AND "
                "q.direction = 'in' AND q.decision = 'admit' AND q.superseded = 0 AND "
                # Two entries in the same millisecond: insertion order breaks the tie.
                "(q.ts < p.ts OR (q.ts = p.ts AND q.rowid < p.rowid)) AND NOT EXISTS (SELECT 1 "
                "FROM passages x WHERE x.entry_id = q.id "
                "AND x.superseded = 0 AND x.ts <= p.ts))",
                [shift_id],
            )
            or 0
        )

    def unmatched_exits(self, shift_id: str) -> int:
        """Admitted exits of the shift that match no recorded entry."""
        return (
            self._s.g.scalar(
                "SELECT count(*) FROM passages p WHERE p.shift_id = ? AND p.direction = 'out' "
                "AND p.decision = 'admit' AND p.superseded = 0 AND p.entry_id IS NULL",
                [shift_id],
            )
            or 0
        )

    def unacknowledged(self, scope: Scope) -> list[AlertCandidate]:
        """Current passages of the scope whose alerts (if any) nobody acknowledged, by time."""
        where, params = scope.where()
        rows = self._current(
            "p.ts, p.decision, p.rowid AS n", f"p.alerts_ack IS NULL AND ({where})", params
        )
        rows.sort(key=lambda r: (r["ts"], r["n"]))
        return [_candidate(r) for r in rows]

    def categories_up_to(self, day: str) -> list[CategoryCount]:
        """Current passages up to and including ``day``, per category (sorted by category)."""
        passages: Counter[str] = Counter()
        persons: dict[str, set[str]] = {}
        anonymous: Counter[str] = Counter()
        for r in self._current("p.id_hash", "p.day <= ?", [day]):
            category = r["category"]
            passages[category] += 1
            if r["id_hash"] is None:
                # People without an ID number cannot be told apart: each passage counts as one.
                anonymous[category] += 1
            else:
                persons.setdefault(category, set()).add(r["id_hash"])
        return [
            CategoryCount(c, passages[c], len(persons.get(c, ())) + anonymous[c])
            for c in sorted(passages)
        ]

    def keyperson_reasons_up_to(self, day: str) -> list[str]:
        """The stored reasons (JSON text) of current passages up to ``day`` with a key-person
        hit among them."""
        return [
            r["reasons"]
            for r in self._current("p.day", "p.day <= ?", [day])
            if "keyperson_hit" in r["reasons"]
        ]

    def temperature_tenths(self, scope: Scope) -> list[tuple[int, int]]:
        """(temperature in tenths of a degree, passages) for the current measured passages."""
        where, params = scope.where()
        return _tenths(self._current("p.day", where, params))

    # -- rows for exports -------------------------------------------------------------------
    def passage_rows(
        self, scope: Scope, *, include_corrected: bool, full: bool
    ) -> list[dict[str, Any]]:
        """The rows of :meth:`passage_export` alone."""
        threshold = self._s.settings.rules.fever_threshold
        return self.passage_export(
            scope, include_corrected=include_corrected, full=full, fever_threshold=threshold
        ).rows

    def passage_export(
        self,
        scope: Scope,
        *,
        include_corrected: bool,
        full: bool,
        fever_threshold: float,
        alerts: bool = False,
        row: Callable[[dict[str, Any]], Any] | None = None,
    ) -> PassageRead:
        """Passages of the scope in time order, each with the plate of its vehicle (or None),
        and what :meth:`gate_groups`, :meth:`temperature_tenths` and :meth:`unacknowledged`
        (if ``alerts``) give for the same scope, counted from the current ones among them: one
        read, each record opened once (a 100,000-passage day is more than the session's cache
        holds, so reading it three times meant opening every record three times).

        Masked (``full`` False): only what a masked export shows, the personal fields as their
        masked copies, the trip reason decrypted. Full: every field decrypted
        (:meth:`Passages.decrypt_row`); the caller has checked the supervisor. ``row``: what
        each passage (a dict) becomes in ``rows``, made as it is read, so 100,000 dicts are
        never held at once (default: the dict)."""
        where, params = scope.where()
        corrected = "" if include_corrected else "AND p.superseded = 0"
        # A masked export reads only what it shows: no sealed name, ID, phone or scan; nor the
        # columns a sealed row has emptied (read for the rows not sealed yet, if any).
        fields = "p.*" if full else _MASKED_SELECT
        g = self._s.g
        with g.lock:
            cur = g.db.execute(
                f"SELECT {fields}, p.rowid, p.alerts_ack IS NULL, v.id, v.sealed_enc, v.plate "
                f"FROM passages p LEFT JOIN vehicle_passages v ON v.id = p.vehicle_id "
                f"WHERE ({where}) {corrected} ORDER BY p.ts, p.id",
                params,
            )
            names = [c[0] for c in cur.description][:-5]
            rows = cur.fetchall()
        unsealed = {} if full else self._unsealed(rows, names)
        cipher = self._s.cipher
        plates: dict[str, str] = {}  # a vehicle's occupants share its plate: opened once
        unseal = self._s.passages.unseal
        decrypt_row = self._s.passages.decrypt_row
        keys: list[tuple[Any, ...]] = []
        tenths: Counter[int] = Counter()
        open_alerts: list[tuple[str, int, AlertCandidate]] = []
        out = []
        rows.reverse()  # taken from the end, so each row read is freed once it is made
        while rows:
            t = rows.pop()
            r = dict(zip(names, t, strict=False))  # the passage's columns: all but the last 5
            n, unacknowledged, vid, blob, plate = t[-5:]
            if blob is not None:
                if vid not in plates:
                    plates[vid] = json.loads(cipher.decrypt(vid, "sealed", blob) or "{}")["plate"]
                plate = plates[vid]
            r["plate"] = plate
            if unsealed and r["sealed_enc"] is None:
                r.update(unsealed.get(r["id"]) or _SEALED_BLANK)
            unseal(r)
            if not r["superseded"]:
                keys.append(_group_key(r, fever_threshold))
                temperature = r["temperature"]
                if temperature is not None:
                    tenths[_round_half_away(temperature * 10)] += 1
                if alerts and unacknowledged:
                    open_alerts.append((r["ts"], n, _candidate(r)))
            if full:
                r = decrypt_row(r)
            else:
                blob = r.pop("trip_reason_enc")
                if blob is not None:  # encrypted since schema m003; older rows until first login
                    r["trip_reason"] = cipher.decrypt(r["id"], "trip_reason", blob)
            out.append(r if row is None else row(r))
        open_alerts.sort(key=lambda item: (item[0], item[1]))
        return PassageRead(
            out,
            _groups(Counter(keys)),
            sorted(tenths.items()),
            [candidate for _, _, candidate in open_alerts] if alerts else None,
        )

    def _unsealed(self, rows: list[Any], names: list[str]) -> dict[str, dict[str, Any]]:
        """Rows not sealed yet (written before schema m005, until the first login seals them)
        keep their values in the columns a masked read leaves out: those, by id (a row sealed
        since gives its ``sealed_enc`` instead; one deleted since is missing)."""
        at, sealed_at = names.index("id"), names.index("sealed_enc")
        ids = [t[at] for t in rows if t[sealed_at] is None]
        found: dict[str, dict[str, Any]] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            for x in self._s.g.query(
                f"SELECT p.id, {_SEALED_COLUMNS}, p.sealed_enc FROM passages p "
                f"WHERE p.id IN ({', '.join('?' * len(chunk))})",
                chunk,
            ):
                found[x["id"]] = x
        return found

    def vehicle_rows(self, scope: Scope) -> list[dict[str, Any]]:
        """Vehicle passages of the scope in time order (every column, unsealed)."""
        where, params = scope.where()
        unseal = self._s.vehicles.unseal
        return [
            unseal(r)
            for r in self._s.g.query(
                f"SELECT * FROM vehicle_passages p WHERE ({where}) ORDER BY p.ts", params
            )
        ]


def _round_half_away(x: float) -> int:
    """SQLite's ``round(x)`` (half away from zero), which the bins were counted with."""
    return int(x + 0.5) if x >= 0 else -int(-x + 0.5)


def _hour(ts: str) -> int:
    """The wall-clock hour of a stored time, as SQLite's ``CAST(substr(ts, 12, 2) AS INTEGER)``
    (which the hours were counted with): its leading integer, 0 when there is none."""
    text = ts[11:13]
    if text.isdigit() and text.isascii():
        return int(text)
    match = _LEADING_INTEGER.match(text)
    return int(match.group()) if match else 0


_LEADING_INTEGER = re.compile(r"[ \t\n\r]*[+-]?[0-9]+", re.ASCII)


def _group_key(r: dict[str, Any], fever_threshold: float) -> tuple[Any, ...]:
    """What :class:`GateGroup` groups an opened passage by (its fields in that order)."""
    temperature = r["temperature"]
    return (
        r["direction"],
        r["decision"],
        r["code_colour"],
        temperature is None,
        temperature is not None and temperature >= fever_threshold,
        r["test_result"] == "positive",
        r["reasons"],
        _hour(r["ts"]),
    )


def _groups(counted: Counter[tuple[Any, ...]]) -> list[GateGroup]:
    return [
        GateGroup(direction, decision, colour, unmeasured, fever, positive, reasons, hour, n)
        for (
            direction,
            decision,
            colour,
            unmeasured,
            fever,
            positive,
            reasons,
            hour,
        ), n in counted.items()
    ]


def _tenths(rows: list[dict[str, Any]]) -> list[tuple[int, int]]:
    tenths: Counter[int] = Counter(
        _round_half_away(r["temperature"] * 10) for r in rows if r["temperature"] is not None
    )
    return sorted(tenths.items())


def _candidate(r: dict[str, Any]) -> AlertCandidate:
    return AlertCandidate(
        r["id"], r["ts"], r["name_masked"], r["id_masked"], r["decision"], r["reasons"]
    )


_SEALED_COLUMNS = ", ".join(f"p.{c}" for c in SEALED)

# What a masked export reads of a passage (the sealed values come out of sealed_enc).
MASKED_FIELDS = (
    "id",
    "ts",
    "direction",
    "trip_reason",
    "trip_reason_enc",
    "sealed_enc",
    "decision",
    "operator",
    "confirmed_by",
    "superseded",
    "sync_state",
)
_MASKED_SELECT = ", ".join(f"p.{c}" for c in MASKED_FIELDS)
