"""Report builders: shift summary, daily report (and zero report), category totals as of a date.

Every number here is counted from what the store's reporting facade returns
(:mod:`fieldkit.store.reporting`; reports hold no SQL), once, so the CLI, the screens and the
exported workbooks show the same figures. Personal data never appears: only masked names on
the list of open alerts.

One piece (~530 lines): the report types share the counting functions; each is a few dozen lines.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from ..store.reporting import AlertCandidate, GateGroup, PassageRead, Scope
from . import ledger_data

if TYPE_CHECKING:
    from ..store import Store

# Reasons whose presence makes a day "not zero" (零报告 means: nothing of these to report).
ABNORMAL_KEYS = (
    "referred",
    "fever",
    "red",
    "yellow",
    "keyperson_hits",
    "isolation_leaving",
    "positive_tests",
    "readings_missed",
    "home_referrals",
)


def now_iso() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


@dataclass
class HourlySeries:
    """Admitted entries and exits per wall-clock hour: the same rule as GateCounts."""

    hours: list[int]
    entries: list[int]
    exits: list[int]


@dataclass
class GateCounts:
    """Counts over a set of gate passages (current versions only, corrections not doubled)."""

    total: int = 0
    entries: int = 0  # admitted in
    exits: int = 0  # admitted out
    turned_back: int = 0
    denied: int = 0
    referred: int = 0
    fever: int = 0
    green: int = 0
    yellow: int = 0
    red: int = 0
    no_code: int = 0
    keyperson_hits: int = 0
    isolation_leaving: int = 0
    positive_tests: int = 0
    not_measured: int = 0
    vehicles: int = 0
    vehicles_in: int = 0
    vehicles_out: int = 0
    vehicles_refused: int = 0


@dataclass
class Reconciliation:
    """Entries − exits against the count of people inside (卡口进出核对)."""

    inside_at_open: int
    entries: int
    exits: int
    expected_inside: int  # inside_at_open + entries − exits
    inside_now: int
    unmatched_exits: int  # exits that match no recorded entry (e.g. residents who never left)
    difference: int  # inside_now − expected_inside
    double_entries: int = 0  # entries of someone already inside (no exit in between)
    purged: int = 0  # passages deleted by a retention purge during the shift

    @property
    def balanced(self) -> bool:
        return self.difference == 0


@dataclass
class OpenAlert:
    record_id: str
    ts: str
    name_masked: str | None
    id_masked: str | None
    decision: str
    codes: list[str]


@dataclass
class ShiftSummary:
    shift_id: str
    opened_at: str
    opened_by: str
    closed_at: str | None
    closed_by: str | None
    handover_note: str | None
    open_note: str | None
    counts: GateCounts
    reconciliation: Reconciliation
    open_alerts: list[OpenAlert]
    unsynced: dict[str, int]  # pending, quarantined
    previous: dict[str, Any] | None  # the handover this shift started from
    generated_at: str = field(default_factory=now_iso)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["reconciliation"]["balanced"] = self.reconciliation.balanced
        return d


@dataclass
class DailyReport:
    day: str
    checkpoint_name: str
    checkpoint_code: str
    counts: GateCounts
    households_visited: int
    readings_missed: int
    ledger_available: bool
    inside_at_end: int
    unsynced: dict[str, int]
    generated_at: str = field(default_factory=now_iso)
    home_referrals: int = 0  # home-monitoring referrals raised that day
    set_up_on: str | None = None  # the day this device was first set up

    @property
    def abnormal(self) -> dict[str, int]:
        values = {
            **asdict(self.counts),
            "readings_missed": self.readings_missed,
            "home_referrals": self.home_referrals,
        }
        return {k: values[k] for k in ABNORMAL_KEYS if values[k]}

    @property
    def before_setup(self) -> bool:
        """The day ended before this device was set up and nothing is recorded for it (records
        restored from another device still make a report): there is no report for it."""
        return self.set_up_on is not None and self.day < self.set_up_on and self.nothing_recorded

    @property
    def zero_report(self) -> bool:
        """零报告: nothing abnormal happened (the report is still sent, with its zeros); never
        for a day before the device existed."""
        return not self.abnormal and not self.before_setup

    @property
    def nothing_recorded(self) -> bool:
        return self.counts.total == 0 and self.counts.vehicles == 0 and not self.households_visited

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(
            zero_report=self.zero_report,
            nothing_recorded=self.nothing_recorded,
            abnormal=self.abnormal,
            before_setup=self.before_setup,
        )
        return d


@dataclass
class CategoryTotals:
    """截止到X日: people through the gate by category, key-person hits, under observation."""

    as_of: str
    persons_by_category: dict[str, int]  # distinct people (by blind index) who passed up to as_of
    passages_by_category: dict[str, int]
    keyperson_hits: dict[str, int]  # by key-person category
    under_observation: dict[str, int]  # home isolation / monitoring still running on as_of
    ledger: dict[str, int]  # household-ledger categories (empty without the ledger)
    generated_at: str = field(default_factory=now_iso)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- counting ---------------------------------------------------------------------------------


def _reasons(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return []
    return value or []


def count_gate(
    store: Store,
    scope: Scope,
    hours: HourlySeries | None = None,
    groups: list[GateGroup] | None = None,
) -> GateCounts:
    """Counts over the gate passages and vehicle passages of ``scope``.

    ``hours``: filled in the same pass with the entries and exits of each hour, by the very
    rule that counts ``entries``/``exits`` (admitted in/out), so a chart drawn from it always
    adds up to the summary beside it. ``groups``: the scope's gate groups when already read
    (:meth:`Reporting.passage_export`), so the records are not opened again."""
    c = GateCounts()
    if groups is None:
        groups = store.reporting.gate_groups(scope, store.settings.rules.fever_threshold)
    for r in groups:
        n = r.n
        c.total += n
        decision = r.decision
        if decision == "admit":
            if r.direction == "in":
                c.entries += n
                if hours is not None:
                    hours.entries[r.hour] += n
            else:
                c.exits += n
                if hours is not None:
                    hours.exits[r.hour] += n
        elif decision == "turn_back":
            c.turned_back += n
        elif decision == "deny":
            c.denied += n
        else:
            c.referred += n
        if r.fever:
            c.fever += n
        if r.not_measured:
            c.not_measured += n
        colour = r.code_colour
        if colour in ("green", "yellow", "red"):
            setattr(c, colour, getattr(c, colour) + n)
        else:
            c.no_code += n
        if r.positive:
            c.positive_tests += n
        codes = {x.get("code") for x in _reasons(r.reasons)}
        c.keyperson_hits += n * ("keyperson_hit" in codes)
        c.isolation_leaving += n * ("home_isolation_leaving" in codes)
    for v in store.reporting.vehicle_groups(scope):
        c.vehicles += v.n
        if v.direction == "in":
            c.vehicles_in += v.n
        else:
            c.vehicles_out += v.n
        c.vehicles_refused += v.n * (v.decision != "admit")
    return c


def inside_at(store: Store, when: str | None, *, opening: str | None = None) -> int:
    """People admitted in and not (yet) matched by an exit at time ``when`` (None: now;
    ``opening``: the shift that opened at ``when``)."""
    return store.reporting.inside_at(when, opening=opening)


def double_entries(store: Store, shift_id: str) -> int:
    """Admitted entries in the shift of someone whose earlier admitted entry had no exit yet."""
    return store.reporting.double_entries(shift_id)


def purged_during(store: Store, opened_at: str, closed_at: str | None) -> int:
    """Passages deleted by retention purges between the shift's opening and closing."""
    from datetime import datetime as _dt

    start = _dt.fromisoformat(opened_at)
    end = _dt.fromisoformat(closed_at) if closed_at else None
    total = 0
    for entry in store.audit.entries(10_000, "purge"):
        try:
            ts = _dt.fromisoformat(entry.get("ts") or "")
        except ValueError:
            continue
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=start.tzinfo)
        if ts >= start and (end is None or ts <= end):
            deleted = (entry.get("detail") or {}).get("deleted") or {}
            total += int(deleted.get("passages", 0))
    return total


def unsynced(store: Store) -> dict[str, int]:
    counts = store.outbox.counts()
    return {"pending": counts.get("pending", 0), "quarantined": counts.get("quarantined", 0)}


def open_alerts(
    store: Store, scope: Scope, candidates: list[AlertCandidate] | None = None
) -> list[OpenAlert]:
    """Passages whose alerts nobody has acknowledged yet (``candidates``: the scope's
    unacknowledged passages when already read)."""
    out = []
    if candidates is None:
        candidates = store.reporting.unacknowledged(scope)
    alert_codes: dict[str, list[str]] = {}  # a shift's reasons are a few dozen distinct texts
    for r in candidates:
        codes = alert_codes.get(r.reasons)
        if codes is None:
            codes = alert_codes[r.reasons] = [
                x["code"] for x in _reasons(r.reasons) if x.get("alert")
            ]
        if codes:
            out.append(OpenAlert(r.id, r.ts, r.name_masked, r.id_masked, r.decision, list(codes)))
    return out


def monitoring_alerts(store: Store) -> list[OpenAlert]:
    """Open home-monitoring alerts (a referral after a home reading, a missed window), which a
    handover passes on like the gate's own."""
    return [
        OpenAlert(a.id, a.ts, a.name_masked, a.id_masked, a.kind, [f"home_{a.kind}"])
        for a in ledger_data.open_monitoring_alerts(store)
    ]


# -- reports ----------------------------------------------------------------------------------


def _shift_row(store: Store, shift_id: str | None) -> dict[str, Any]:
    from ..errors import InputError

    if shift_id:
        rows = store.shifts.find(shift_id)
        if not rows:
            raise InputError("err.no_shift_id", id=shift_id)
        if len(rows) > 1:
            raise InputError("err.shift_ambiguous", id=shift_id)
        return rows[0]
    row = store.shifts.current() or store.shifts.last_closed()
    if row is None:
        raise InputError("err.no_shift_yet")
    return row


def shift_meta(row: dict[str, Any]) -> dict[str, Any]:
    try:
        meta = json.loads(row.get("summary") or "{}")
    except ValueError:
        meta = {}
    return meta if isinstance(meta, dict) else {}


def shift_id_of(store: Store, shift_id: str | None = None) -> str:
    """The full id of the shift a summary of ``shift_id`` covers (a prefix; default: the open
    shift, else the last closed one)."""
    return str(_shift_row(store, shift_id)["id"])


def shift_summary(
    store: Store,
    shift_id: str | None = None,
    *,
    read: PassageRead | None = None,
    hours: HourlySeries | None = None,
) -> ShiftSummary:
    """Summary of a shift (default: the open one, else the last closed one). ``read``: the
    shift's passages when already read (:meth:`Reporting.passage_export` of this shift);
    ``hours``: as for :func:`count_gate`."""
    row = _shift_row(store, shift_id)
    sid = row["id"]
    scope = Scope(shift_id=sid)
    counts = count_gate(store, scope, hours, read.groups if read else None)
    closed_at = row["closed_at"]
    at_open = inside_at(store, row["opened_at"], opening=sid)
    now_inside = inside_at(store, closed_at)
    unmatched = store.reporting.unmatched_exits(sid)
    expected = at_open + counts.entries - counts.exits
    rec = Reconciliation(
        at_open,
        counts.entries,
        counts.exits,
        expected,
        now_inside,
        unmatched,
        now_inside - expected,
        double_entries(store, sid),
        purged_during(store, row["opened_at"], closed_at),
    )
    meta = shift_meta(row)
    previous = None
    if meta.get("handover_from"):
        prev = store.shifts.get(meta["handover_from"])
        if prev is not None:
            previous = {k: prev[k] for k in ("id", "closed_at", "closed_by", "handover_note")}
    return ShiftSummary(
        shift_id=sid,
        opened_at=row["opened_at"],
        opened_by=row["opened_by"],
        closed_at=closed_at,
        closed_by=row["closed_by"],
        handover_note=row["handover_note"],
        open_note=meta.get("open_note"),
        counts=counts,
        reconciliation=rec,
        open_alerts=open_alerts(store, scope, read.unacknowledged if read else None)
        + monitoring_alerts(store),
        unsynced=unsynced(store),
        previous=previous,
    )


def _day(value: date | str) -> str:
    return value.isoformat() if isinstance(value, date) else date.fromisoformat(value).isoformat()


def daily_report(
    store: Store,
    day: date | str,
    *,
    groups: list[GateGroup] | None = None,
    hours: HourlySeries | None = None,
) -> DailyReport:
    """The daily report for one date; a zero report when nothing abnormal happened.
    ``groups`` and ``hours``: as for :func:`count_gate`."""
    d = _day(day)
    counts = count_gate(store, Scope(day=d), hours, groups)
    ledger = ledger_data.for_day(store, d)
    end_of_day = datetime.fromisoformat(f"{d}T23:59:59.999").astimezone().isoformat()
    cp = store.settings.checkpoint
    return DailyReport(
        day=d,
        checkpoint_name=cp.name,
        checkpoint_code=cp.code,
        counts=counts,
        households_visited=ledger.households_visited,
        readings_missed=ledger.readings_missed,
        ledger_available=ledger.available,
        inside_at_end=inside_at(store, end_of_day),
        unsynced=unsynced(store),
        home_referrals=ledger.home_referrals,
        set_up_on=set_up_on(store),
    )


def set_up_on(store: Store) -> str | None:
    """The local day this device was first set up (its first operator), if it has been."""
    created = [op.created_at for op in store.keyring.list() if op.created_at]
    if not created:
        return None
    return datetime.fromisoformat(min(created)).astimezone().date().isoformat()


def category_totals(store: Store, as_of: date | str) -> CategoryTotals:
    """Totals up to and including ``as_of`` (截止到X日)."""
    d = _day(as_of)
    persons: dict[str, int] = {}
    passages: dict[str, int] = {}
    for cat in store.reporting.categories_up_to(d):
        passages[cat.category] = cat.passages
        persons[cat.category] = cat.persons
    hits: dict[str, int] = {}
    for reasons in store.reporting.keyperson_reasons_up_to(d):
        for x in _reasons(reasons):
            if x.get("code") == "keyperson_hit":
                category = (x.get("params") or {}).get("category") or "?"
                hits[category] = hits.get(category, 0) + 1
    observation = store.isolation.counts_on(d)
    return CategoryTotals(
        as_of=d,
        persons_by_category=persons,
        passages_by_category=passages,
        keyperson_hits=hits,
        under_observation=observation,
        ledger=ledger_data.category_totals(store, d),
    )


# -- chart data -------------------------------------------------------------------------------


@dataclass
class TemperatureHistogram:
    labels: list[str]
    counts: list[int]
    fever: list[bool]  # bin at or above the threshold
    threshold: float

    @property
    def below(self) -> list[int]:
        return [n if not f else 0 for n, f in zip(self.counts, self.fever, strict=False)]

    @property
    def above(self) -> list[int]:
        return [n if f else 0 for n, f in zip(self.counts, self.fever, strict=False)]


def hourly(store: Store, *, day: str | None = None, shift_id: str | None = None) -> HourlySeries:
    """Counted by :func:`count_gate` itself (one rule for the table, the chart, the report)."""
    series = HourlySeries(list(range(24)), [0] * 24, [0] * 24)
    count_gate(store, Scope(day=day, shift_id=shift_id), hours=series)
    return series


def temperature_histogram(
    store: Store,
    *,
    day: str | None = None,
    shift_id: str | None = None,
    tenths: list[tuple[int, int]] | None = None,
) -> TemperatureHistogram:
    """0.1 °C bins from 35.5 °C to a little above the threshold; the ends collect the rest.

    Bins are counted in tenths of a degree (integers), so the threshold falls exactly on a bin
    edge and every bin is either all normal or all fever. ``tenths``: the scope's readings
    when already read (:meth:`Reporting.passage_export`).
    """
    threshold = store.settings.rules.fever_threshold
    lo = min(355, round(threshold * 10) - 10)
    hi = max(385, round(threshold * 10) + 10)  # first tenth of the top (≥) bin
    edges = list(range(lo, hi))
    counts = [0] * (len(edges) + 2)
    if tenths is None:
        tenths = store.reporting.temperature_tenths(Scope(day=day, shift_id=shift_id))
    for t, n in tenths:
        idx = 0 if t < lo else len(counts) - 1 if t >= hi else t - lo + 1
        counts[idx] += n
    labels = [f"<{lo / 10:.1f}"] + [f"{x / 10:.1f}" for x in edges] + [f"≥{hi / 10:.1f}"]
    thr = round(threshold * 10)
    fever = [False] + [x >= thr for x in edges] + [True]
    return TemperatureHistogram(labels, counts, fever, threshold)
