"""An export reads its passages once: the table, the counts, the hourly chart, the temperature
bins and the open alerts all come from one read in which each record is opened once.

A day larger than the session's cache of opened records (50,000) used to be opened three to
five times per export (rows, counts, hours, temperatures, open alerts each read it again). Here
the cache is made two records small, which is what such a day looks like to the cache."""

from __future__ import annotations

import sqlite3
from collections import Counter
from datetime import date, datetime

import pytest

import fieldkit.store.passages as passages_module
from fieldkit.gate import GateService
from fieldkit.reports import daily_report, export
from fieldkit.reports.document import build_document, local_datetime
from fieldkit.store.reporting import Scope, _hour
from tests.conftest import SUPERVISOR
from tests.reports_support import ID_ZHANG, busy_day, person

TODAY = date.today().isoformat()


@pytest.fixture
def day(store):
    """A busy day in an open shift, with a corrected passage and an acknowledged alert."""
    store.shifts.open(SUPERVISOR)
    busy_day(store)
    gate = GateService(store)
    _, wrong = gate.commit(person("in", ID_ZHANG, "张三", 38.5))
    gate.correct(wrong.id, person("in", ID_ZHANG, "张三", 36.5), supervisor=store.operator)
    fever = next(r for r in store.passages.rows() if r["temperature"] == 38.2)
    store.passages.acknowledge(fever["id"], ["fever"])
    return store


def _opened(store, monkeypatch) -> Counter[str]:
    """Which records' sealed values are decrypted from now on (the real cipher, counted)."""
    opened: Counter[str] = Counter()
    decrypt = store.cipher.decrypt

    def counting(record_id, field, blob):
        if field == "sealed":
            opened[record_id] += 1
        return decrypt(record_id, field, blob)

    monkeypatch.setattr(store.cipher, "decrypt", counting)
    return opened


CASES = [
    ("passages", {"day": TODAY}, False),
    ("passages", {"shift": True}, False),
    ("passages", {}, True),
    ("daily", {"day": TODAY}, False),
    ("shift-log", {}, False),
    ("shift-log", {"day": TODAY}, True),
]


@pytest.mark.parametrize(("kind", "scope", "full"), CASES)
def test_an_export_opens_each_record_once(day, monkeypatch, kind, scope, full):
    store = day
    sid = store.shifts.current_id()
    rows = store.passages.rows()
    corrected_too = kind == "shift-log"
    expected = {r["id"] for r in rows if corrected_too or not r["superseded"]}
    assert len(expected) == (10 if corrected_too else 9)
    kwargs = {"shift_id": sid} if scope.pop("shift", False) else scope
    monkeypatch.setattr(passages_module, "_CACHE_MAX", 2)
    store.passages.forget()
    opened = _opened(store, monkeypatch)

    doc = build_document(store, kind, full=full, **kwargs)

    passage_ids = {r["id"] for r in rows}
    assert {k: n for k, n in opened.items() if k in passage_ids} == dict.fromkeys(expected, 1)
    # The charts still count every current passage: 8 of the busy day and the correction.
    assert sum(doc.charts.temperatures.counts) == 9
    report = daily_report(store, TODAY)
    assert sum(doc.charts.hourly.entries) == report.counts.entries
    assert sum(doc.charts.hourly.exits) == report.counts.exits


def test_one_read_gives_what_the_separate_reads_give(day):
    store = day
    reporting = store.reporting
    threshold = store.settings.rules.fever_threshold
    for scope in (Scope(day=TODAY), Scope(shift_id=store.shifts.current_id()), Scope()):
        for include_corrected in (False, True):
            for full in (False, True):
                read = reporting.passage_export(
                    scope,
                    include_corrected=include_corrected,
                    full=full,
                    fever_threshold=threshold,
                    alerts=True,
                )
                assert Counter(read.groups) == Counter(reporting.gate_groups(scope, threshold))
                assert read.tenths == reporting.temperature_tenths(scope)
                assert read.unacknowledged == reporting.unacknowledged(scope)
                assert len(read.rows) == 10 if include_corrected else 9
                assert [r["ts"] for r in read.rows] == sorted(r["ts"] for r in read.rows)
    # The unacknowledged alerts are there (the acknowledged fever is not), and the groups count
    # every current passage.
    read = reporting.passage_export(
        Scope(day=TODAY), include_corrected=False, full=False, fever_threshold=threshold
    )
    assert sum(g.n for g in read.groups) == 9 and read.unacknowledged is None
    read = reporting.passage_export(
        Scope(day=TODAY),
        include_corrected=False,
        full=False,
        fever_threshold=threshold,
        alerts=True,
    )
    assert read.unacknowledged is not None
    assert [c.decision for c in read.unacknowledged].count("refer") == 1


def test_the_export_file_is_the_same_with_a_small_cache(day, tmp_path, monkeypatch):
    store = day
    export(store, "passages", tmp_path / "a.csv", day=TODAY)
    monkeypatch.setattr(passages_module, "_CACHE_MAX", 2)
    store.passages.forget()
    export(store, "passages", tmp_path / "b.csv", day=TODAY)
    a = (tmp_path / "a.csv").read_text(encoding="utf-8-sig").splitlines()
    b = (tmp_path / "b.csv").read_text(encoding="utf-8-sig").splitlines()
    # Everything but the generation time in the summary lines.
    assert len(a) == len(b) and a[-9:] == b[-9:]


def test_hour_as_sqlite_reads_it():
    """The hours chart was counted with SQLite's CAST(substr(ts, 12, 2) AS INTEGER)."""
    samples = [
        "2026-05-04T08:15:00.123+08:00",
        "2026-05-04T23:59:59.999-05:00",
        "2026-05-04T00:00:00+00:00",
        "2026-05-04 7:15:00",
        "2026-05-04T 7:15",
        "2026-05-04T+7",
        "2026-05-04T-7",
        "2026-05-04Tx7",
        "2026-05-04T١٢:00",
        "2026-05-04",
        "",
    ]
    db = sqlite3.connect(":memory:")
    for ts in samples:
        (expected,) = db.execute("SELECT CAST(substr(?, 12, 2) AS INTEGER)", [ts]).fetchone()
        assert _hour(ts) == expected, ts


def test_local_datetime_of_the_store_stamp_and_of_others():
    for ts in (
        "2026-05-04T08:15:00.123+08:00",
        "2026-05-04T08:15:00.123-05:30",
        "2026-05-04T08:15:00+08:00",
        "2026-05-04T08:15:00.123456+08:00",
        "2026-05-04T08:15:00.123Z",
        "2026-05-04T08:15:00",
    ):
        assert local_datetime(ts) == datetime.fromisoformat(ts).replace(tzinfo=None), ts
    assert local_datetime(None) is None and local_datetime("") is None


def test_a_row_not_sealed_yet_exports_its_own_columns(day):
    """A masked read leaves out the columns sealing empties; a row from before the sealing (a
    store upgraded while this session was open) still shows its values, from those columns."""
    store = day
    before = build_document(store, "passages", day=TODAY).table.rows
    full_before = build_document(store, "passages", day=TODAY, full=True).table.rows
    row = next(r for r in store.passages.rows() if r["temperature"] == 38.2)
    columns = ("name_masked", "id_masked", "temperature", "code_colour", "category", "reasons")
    store.g.db.execute(
        "UPDATE passages SET sealed_enc = NULL, "
        + ", ".join(f"{c} = ?" for c in columns)
        + " WHERE id = ?",
        [row[c] for c in columns] + [row["id"]],
    )
    assert store.g.scalar("SELECT count(*) FROM passages WHERE sealed_enc IS NULL") == 1
    assert build_document(store, "passages", day=TODAY).table.rows == before
    assert build_document(store, "passages", day=TODAY, full=True).table.rows == full_before
