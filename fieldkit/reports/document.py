"""What an export contains, independent of the file format: a summary, a table, chart data.

``build_document`` reads the store once and returns plain Python values (datetimes, dates,
numbers, text already in the chosen language); the XLSX and CSV writers only lay them out.
Personal fields are masked (张*, ``110105********1234``) unless ``full`` is asked for, which
needs a supervisor and decrypts the record.

One piece (~470 lines): the three export documents share the read-once pass and their column
layouts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from ..errors import InputError, PermissionDenied
from ..i18n import outcome_text, reason_text, t, word
from ..store.reporting import PassageRead, Scope
from . import builders, ledger_data

if TYPE_CHECKING:
    from ..store import Store

KINDS = ("shift-log", "daily", "passages")
FORMATS = ("xlsx", "csv")


@dataclass(frozen=True)
class Column:
    key: str
    kind: str = "text"  # text | datetime | date | number | int
    full_only: bool = False


@dataclass
class Table:
    sheet_key: str
    columns: list[Column]
    rows: list[list[Any]]


@dataclass
class ChartData:
    hourly: builders.HourlySeries
    temperatures: builders.TemperatureHistogram
    coverage: list[ledger_data.BuildingCoverage]


@dataclass
class Document:
    kind: str
    lang: str
    full: bool
    title: str
    scope: str  # what the export covers, in words
    summary: list[tuple[str, Any]]  # (label, value) rows of the summary sheet
    table: Table | None
    charts: ChartData | None
    meta: dict[str, Any] = field(default_factory=dict)

    def header(self, column: Column) -> str:
        return t(f"export.col.{column.key}", self.lang)


LOG_COLUMNS = [
    Column("time", "datetime"),
    Column("event"),
    Column("direction"),
    Column("name"),
    Column("id_number"),
    Column("phone", full_only=True),
    Column("category"),
    Column("temperature", "number"),
    Column("not_measured"),
    Column("code_colour"),
    Column("test_date", "date"),
    Column("test_result"),
    Column("trip_reason"),
    Column("plate"),
    Column("decision"),
    Column("reasons"),
    Column("operator"),
    Column("confirmed_by"),
    Column("corrected"),
    Column("escort", full_only=True),
    Column("notes", full_only=True),
    Column("sync_state"),
    Column("record_id"),
]
PASSAGE_COLUMNS = [c for c in LOG_COLUMNS if c.key not in ("event", "corrected")]


def local_datetime(ts: str | None) -> datetime | None:
    """The wall-clock time the gate recorded (Excel cells carry no time zone)."""
    if not ts:
        return None
    if len(ts) == 29 and ts[23] in "+-" and ts[19] == ".":
        # How the store stamps every passage (2026-05-04T08:15:00.123+08:00): the wall-clock
        # part alone parses to the same naive time, without a tzinfo built and dropped.
        return datetime.fromisoformat(ts[:23])
    return datetime.fromisoformat(ts).replace(tzinfo=None)


@lru_cache(maxsize=2048)
def _word(prefix: str, value: str | None, lang: str) -> str:
    """A code in words (a 100,000-row export has a few dozen distinct ones: looked up once)."""
    return t(f"{prefix}.{value}", lang) if value else ""


def _reasons_text(raw: Any, lang: str) -> str:
    if isinstance(raw, str):
        return _reasons_of_json(raw, lang)
    return _reasons_words(raw or [], lang)


@lru_cache(maxsize=4096)
def _reasons_of_json(raw: str, lang: str) -> str:
    return _reasons_words(json.loads(raw), lang)


def _reasons_words(reasons: list[dict[str, Any]], lang: str) -> str:
    sep = "；" if lang == "zh" else "; "
    return sep.join(reason_text(r["code"], r.get("params") or {}, lang) for r in reasons)


def _passage_values(r: dict[str, Any], lang: str, full: bool) -> dict[str, Any]:
    """``r``: a row of :meth:`Reporting.passage_rows` (decrypted when ``full``)."""
    if full:
        name, id_number = (r.get("name") or r["name_masked"], r.get("id_number") or r["id_masked"])
        extra = {"phone": r.get("phone"), "notes": r.get("notes"), "escort": r.get("escort")}
    else:
        name, id_number, extra = r["name_masked"], r["id_masked"], {}
    return {
        "time": local_datetime(r["ts"]),
        "event": _word("export.event", "person", lang),
        "direction": _word("direction", r["direction"], lang),
        "name": name or "",
        "id_number": id_number or "",
        "category": _word("export.category", r["category"], lang),
        "temperature": r["temperature"],
        "not_measured": r["temperature_skipped"] or "",
        "code_colour": _word("colour", r["code_colour"], lang),
        "test_date": date.fromisoformat(r["test_date"]) if r["test_date"] else None,
        "test_result": _word("export.test", r["test_result"], lang),
        "trip_reason": r.get("trip_reason") or "",
        "plate": r.get("plate") or "",
        "decision": _word("outcome", r["decision"], lang),
        "reasons": _reasons_text(r["reasons"], lang),
        "operator": r["operator"],
        "confirmed_by": r["confirmed_by"] or "",
        "corrected": _word("export", "yes", lang) if r["superseded"] else "",
        "sync_state": _word("export.sync", r["sync_state"], lang),
        "record_id": r["id"],
        **extra,
    }


def _row_values(lang: str, full: bool, keys: list[str]) -> Callable[[dict[str, Any]], list[Any]]:
    """A passage row to its table row, the ``keys`` (columns) in order: every one of them is a
    key of :func:`_passage_values` (a full export's columns only when ``full``)."""
    pick = itemgetter(*keys)
    if len(keys) == 1:
        return lambda r: [pick(_passage_values(r, lang, full))]
    return lambda r: list(pick(_passage_values(r, lang, full)))


def _vehicle_values(r: dict[str, Any], lang: str) -> dict[str, Any]:
    return {
        "time": local_datetime(r["ts"]),
        "event": t("export.event.vehicle", lang),
        "direction": _word("direction", r["direction"], lang),
        "category": _word("export.vehicle_kind", r["kind"], lang),
        "plate": r["plate"],
        "decision": outcome_text(r["decision"], lang),
        "reasons": _reasons_text(r["reasons"], lang),
        "operator": r["operator"],
        "sync_state": _word("export.sync", r["sync_state"], lang),
        "record_id": r["id"],
        "notes": None,
    }


def _read(
    store: Store,
    scope: Scope,
    *,
    include_corrected: bool,
    include_vehicles: bool,
    lang: str,
    full: bool,
    columns: list[Column],
    alerts: bool = False,
) -> PassageRead:
    """The scope's passages, read and opened once for the table, the counts and the charts
    (and the open alerts of a shift's summary). Its rows are the table's rows, made as they are
    read; with vehicles, (time, values) pairs for :func:`_passage_rows` to merge."""
    keys = [c.key for c in columns]
    row: Callable[[dict[str, Any]], Any]
    if include_vehicles:
        row = lambda r: (r["ts"], _passage_values(r, lang, full))  # noqa: E731
    else:
        row = _row_values(lang, full, keys)
    return store.reporting.passage_export(
        scope,
        include_corrected=include_corrected,
        full=full,
        fever_threshold=store.settings.rules.fever_threshold,
        alerts=alerts,
        row=row,
    )


def _log_rows(
    store: Store, scope: Scope, read: PassageRead, *, columns: list[Column], lang: str
) -> list[list[Any]]:
    """The shift log's rows: the passages of ``read`` (see :func:`_read`) and the vehicles."""
    keys = [c.key for c in columns]
    records = list(read.rows)
    blank = dict.fromkeys(keys)  # what a vehicle's row leaves empty
    for v in store.reporting.vehicle_rows(scope):
        records.append((v["ts"], {**blank, **_vehicle_values(v, lang)}))
    # Vehicles are stamped just before their occupants, so time order keeps them together.
    records.sort(key=lambda pair: pair[0])
    pick = itemgetter(*keys)
    if len(keys) == 1:
        return [[pick(values)] for _, values in records]
    return [list(pick(values)) for _, values in records]


def _counts_summary(counts: builders.GateCounts, lang: str) -> list[tuple[str, Any]]:
    keys = (
        "entries",
        "exits",
        "turned_back",
        "denied",
        "referred",
        "fever",
        "green",
        "yellow",
        "red",
        "no_code",
        "keyperson_hits",
        "isolation_leaving",
        "positive_tests",
        "not_measured",
        "vehicles",
        "vehicles_in",
        "vehicles_out",
        "vehicles_refused",
    )
    return [(t(f"report.field.{k}", lang), getattr(counts, k)) for k in keys]


def _head(
    store: Store, lang: str, full: bool, title: str, scope: str, by: Any = None
) -> list[tuple[str, Any]]:
    cp = store.settings.checkpoint
    who = by or store.operator
    operator = who.name if who else ""
    return [
        (t("export.summary.title", lang), title),
        (t("export.summary.checkpoint", lang), f"{cp.name} ({cp.code})"),
        (t("export.summary.scope", lang), scope),
        (t("export.summary.generated_at", lang), datetime.now().replace(microsecond=0)),
        (t("export.summary.generated_by", lang), operator),
        (
            t("export.summary.privacy", lang),
            t("export.privacy.full" if full else "export.privacy.masked", lang),
        ),
    ]


def _charts(store: Store, hours: builders.HourlySeries, read: PassageRead) -> ChartData:
    """``hours``: counted with the summary; ``read``: the same scope's passages."""
    return ChartData(
        hours,
        builders.temperature_histogram(store, tenths=read.tenths),
        ledger_data.coverage_per_building(store),
    )


def _no_hours() -> builders.HourlySeries:
    return builders.HourlySeries(list(range(24)), [0] * 24, [0] * 24)


def _day(value: date | str | None, default_today: bool) -> str | None:
    if value is None:
        return date.today().isoformat() if default_today else None
    if isinstance(value, date):
        return value.isoformat()
    from ..gate import parse_day

    return parse_day(value).isoformat()


def build_document(
    store: Store,
    kind: str,
    *,
    day: date | str | None = None,
    shift_id: str | None = None,
    full: bool = False,
    lang: str | None = None,
    by: Any = None,
) -> Document:
    lang = lang or store.settings.ui.language
    if kind not in KINDS:
        raise InputError("err.choice", what=word("kind"), allowed=", ".join(KINDS), value=kind)
    if full:
        operator = by or store.require_operator()
        if not operator.is_supervisor:
            raise PermissionDenied("err.full_export_needs_supervisor", name=operator.name)
    columns = [
        c
        for c in (LOG_COLUMNS if kind == "shift-log" else PASSAGE_COLUMNS)
        if full or not c.full_only
    ]

    if kind == "daily":
        if shift_id:
            raise InputError("err.daily_needs_date")
        d = _day(day, True)
        assert d is not None  # required=True: a date or InputError
        read = _read(
            store,
            Scope(day=d),
            include_corrected=False,
            include_vehicles=False,
            lang=lang,
            full=full,
            columns=columns,
        )
        hours = _no_hours()
        report = builders.daily_report(store, d, groups=read.groups, hours=hours)
        title = t("export.title.daily", lang)
        summary = _head(store, lang, full, title, d, by)
        summary[2] = (t("export.summary.day", lang), date.fromisoformat(d))
        summary += _counts_summary(report.counts, lang) + [
            (t("report.field.households_visited", lang), report.households_visited),
            (t("report.field.readings_missed", lang), report.readings_missed),
            (t("report.field.inside_at_end", lang), report.inside_at_end),
            (
                t("report.field.zero_report", lang),
                t("export.yes" if report.zero_report else "export.no", lang),
            ),
            (t("report.field.pending", lang), report.unsynced["pending"]),
        ]
        if not report.ledger_available:
            summary.append((t("report.field.ledger", lang), t("report.no_ledger", lang)))
        table = Table(
            "export.sheet.passages",
            columns,
            read.rows,
        )
        return Document(
            kind,
            lang,
            full,
            title,
            d,
            summary,
            table,
            _charts(store, hours, read),
            {"day": d, "report": report.to_dict()},
        )

    if kind == "shift-log":
        d = _day(day, False)
        hours = _no_hours()
        log: dict[str, Any] = {
            "include_corrected": True,
            "include_vehicles": True,
            "lang": lang,
            "full": full,
            "columns": columns,
        }
        if d and not shift_id:
            covered, scope = Scope(day=d), d
            meta: dict[str, Any] = {"day": d}
            read = _read(store, covered, alerts=False, **log)
            extra: list[tuple[str, Any]] = _counts_summary(
                builders.count_gate(store, covered, hours, read.groups), lang
            )
        else:
            covered = Scope(shift_id=builders.shift_id_of(store, shift_id))
            read = _read(store, covered, alerts=True, **log)
            summ = builders.shift_summary(store, covered.shift_id, read=read, hours=hours)
            scope = t(
                "export.scope.shift",
                lang,
                id=summ.shift_id[:8],
                opened=summ.opened_at[:16].replace("T", " "),
                closed=(summ.closed_at or "")[:16].replace("T", " ") or "…",
            )
            meta = {"shift_id": summ.shift_id}
            rec = summ.reconciliation
            extra = (
                [
                    (t("report.field.opened_by", lang), summ.opened_by),
                    (t("report.field.closed_by", lang), summ.closed_by or ""),
                ]
                + _counts_summary(summ.counts, lang)
                + [
                    (t("report.field.inside_at_open", lang), rec.inside_at_open),
                    (t("report.field.expected_inside", lang), rec.expected_inside),
                    (t("report.field.inside_now", lang), rec.inside_now),
                    (t("report.field.unmatched_exits", lang), rec.unmatched_exits),
                    (t("report.field.difference", lang), rec.difference),
                    (t("report.field.open_alerts", lang), len(summ.open_alerts)),
                    (t("report.field.pending", lang), summ.unsynced["pending"]),
                    (t("report.field.quarantined", lang), summ.unsynced["quarantined"]),
                    (t("report.field.handover_note", lang), summ.handover_note or ""),
                ]
            )
        title = t("export.title.shift_log", lang)
        rows = _log_rows(store, covered, read, columns=columns, lang=lang)
        summary = _head(store, lang, full, title, scope, by) + extra
        return Document(
            kind,
            lang,
            full,
            title,
            scope,
            summary,
            Table("export.sheet.log", columns, rows),
            _charts(store, hours, read),
            meta,
        )

    # passages
    d = _day(day, False)
    if d and shift_id:
        raise InputError("cli.date_or_shift")
    if shift_id:
        sid = builders.shift_id_of(store, shift_id)
        covered, scope = Scope(shift_id=sid), t("export.scope.shift_short", lang, id=sid[:8])
        meta = {"shift_id": sid}
    elif d:
        covered, scope, meta = Scope(day=d), d, {"day": d}
    else:
        covered, scope, meta = Scope(), t("export.scope.all", lang), {}
    title = t("export.title.passages", lang)
    read = _read(
        store,
        covered,
        include_corrected=False,
        include_vehicles=False,
        lang=lang,
        full=full,
        columns=columns,
    )
    rows = read.rows
    hours = _no_hours()
    summary = _head(store, lang, full, title, scope, by) + _counts_summary(
        builders.count_gate(store, covered, hours, read.groups), lang
    )
    return Document(
        kind,
        lang,
        full,
        title,
        scope,
        summary,
        Table("export.sheet.passages", columns, rows),
        _charts(store, hours, read),
        meta,
    )
