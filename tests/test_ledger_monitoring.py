"""Home monitoring: windows, due and overdue lists, readings, referral and missed-window
alerts, release with a supervisor's PIN."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from fieldkit.errors import AuthError, InputError, PermissionDenied
from tests.conftest import SUPERVISOR, SUPERVISOR_PIN
from tests.ledger_support import known_since, make_id

pytestmark = pytest.mark.usefixtures("english")  # asserts the English messages

A, B = make_id(41), make_id(42)
TZ = datetime.now().astimezone().tzinfo


def at(day: str, hhmm: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=TZ)


@pytest.fixture
def watched(store):
    """张三 under home isolation from 2022-04-01; 李四 (same household) not monitored."""
    store.settings.monitoring.morning_window = "07:00-09:00"
    store.settings.monitoring.evening_window = "18:00-20:00"
    hid, _ = store.ledger.save_household({"building": "3栋", "unit": "1", "room": "101"})
    a, _ = store.ledger.save_member(
        hid,
        {
            "name": "张三",
            "id_number": A,
            "health_status": "home_isolation",
            "status_start": "2022-04-01",
        },
    )
    store.ledger.save_member(hid, {"name": "李四", "id_number": B})
    # The device and the ledger entry existed before the period began (windows before either
    # are never counted as missed: issue 13 item 11).
    known_since(store, "2022-03-01T00:00:00+00:00")
    return a


def test_slot_for_a_time(store, watched):
    mon = store.monitoring
    assert mon.slot_for(at("2022-04-02", "08:00")) == "morning"
    assert mon.slot_for(at("2022-04-02", "12:00")) == "morning"  # nearer the morning window
    assert mon.slot_for(at("2022-04-02", "15:00")) == "evening"
    assert mon.slot_for(at("2022-04-02", "23:30")) == "evening"


def test_due_and_overdue(store, watched):
    mon = store.monitoring
    assert mon.due(at("2022-04-02", "06:00")) == []  # no window open yet
    due = mon.due(at("2022-04-02", "08:00"))
    assert [(d.slot, d.state) for d in due] == [("morning", "due")]
    assert due[0].name_masked == "张*" and due[0].place == "3栋-1-101"
    assert [(d.slot, d.state) for d in mon.due(at("2022-04-02", "18:30"))] == [
        ("morning", "overdue"),
        ("evening", "due"),
    ]
    mon.record_reading(watched, 36.5, ts=at("2022-04-02", "18:40"))
    assert [(d.slot, d.state) for d in mon.due(at("2022-04-02", "18:45"))] == [
        ("morning", "overdue"),
        ("evening", "done"),
    ]


def test_abnormal_reading_raises_a_referral_alert(store, watched):
    mon = store.monitoring
    ok = mon.record_reading(watched, 36.8, ts=at("2022-04-02", "08:00"))
    assert not ok["abnormal"] and ok["alert_id"] is None
    hot = mon.record_reading(watched, 37.9, ts=at("2022-04-02", "19:00"))
    assert hot["abnormal"] and hot["slot"] == "evening"
    cough = mon.record_reading(
        watched,
        36.6,
        symptoms=["cough", "chest_tightness"],
        measured_by="self",
        ts=at("2022-04-03", "08:00"),
    )
    alerts = mon.alerts()
    assert [a["kind"] for a in alerts] == ["referral", "referral"]
    assert {a["reading_id"] for a in alerts} == {hot["id"], cough["id"]}
    assert alerts[-1]["detail"]["temperature"] == 37.9 and alerts[-1]["detail"]["call"] == "120"
    mon.acknowledge(alerts[0]["id"], note="已联系120")
    assert len(mon.alerts()) == 1
    assert store.audit.entries(1, "alert_ack")[0]["detail"]["monitoring_alert"] == alerts[0]["id"]
    with pytest.raises(InputError):
        mon.acknowledge(alerts[0]["id"])


def test_reading_validation(store, watched):
    mon = store.monitoring
    with pytest.raises(InputError, match="plausible"):
        mon.record_reading(watched, 31.0)
    with pytest.raises(InputError, match="needs a temperature"):
        mon.record_reading(watched, None)
    with pytest.raises(InputError, match="symptom"):
        mon.record_reading(watched, 36.5, symptoms=["sneeze"])
    with pytest.raises(InputError, match="no member"):
        mon.record_reading("nobody", 36.5)


def test_missed_windows_raise_one_alert_each(store, watched):
    mon = store.monitoring
    mon.record_reading(watched, 36.5, ts=at("2022-04-01", "08:00"))
    # Evening of the 1st and morning of the 2nd passed without readings.
    assert mon.check_missed(at("2022-04-02", "10:00")) == 2
    assert mon.check_missed(at("2022-04-02", "10:05")) == 0  # idempotent
    missed = [(a["day"], a["slot"]) for a in mon.alerts() if a["kind"] == "missed"]
    assert sorted(missed) == [("2022-04-01", "evening"), ("2022-04-02", "morning")]
    # A device switched off for days catches up on every window since the start:
    # 1..12 April = 24 windows, one reading, two alerts already raised.
    assert mon.check_missed(at("2022-04-12", "21:00")) == 21
    # After the planned end (1 April + 14 days) no window is expected any more.
    assert mon.check_missed(at("2022-04-20", "21:00")) == 2 * 3  # 13, 14, 15 April
    assert mon.check_missed(at("2022-04-22", "21:00")) == 0


def test_release_needs_a_supervisor_pin(store, watched):
    mon = store.monitoring
    store.keyring.add(store.operator, store.master, "小李", "patrol", "1357")
    with pytest.raises(PermissionDenied):
        mon.release(watched, "小李", "1357", today="2022-04-15")
    with pytest.raises(AuthError):
        mon.release(watched, SUPERVISOR, "0000", today="2022-04-15")
    with pytest.raises(InputError, match="reason"):
        mon.release(watched, SUPERVISOR, SUPERVISOR_PIN, today="2022-04-10")
    assert store.isolation.status(store.index(A), today="2022-04-10") == "home_isolation"
    assert [e["id"] for e in mon.ending("2022-04-15")] == [watched]
    mon.release(watched, SUPERVISOR, SUPERVISOR_PIN, today="2022-04-15")
    m = store.ledger.member(watched)
    assert m.health_status == "released" and m.status_end == "2022-04-15"
    assert store.isolation.status(store.index(A), today="2022-04-10") is None
    entry = store.audit.entries(1, "monitoring_release")[0]["detail"]
    assert entry["confirmed_by"] == SUPERVISOR and entry["early"] is False
    with pytest.raises(InputError, match="not under home"):
        mon.release(watched, SUPERVISOR, SUPERVISOR_PIN)


def test_early_release_with_a_reason(store, watched):
    store.monitoring.release(
        watched, SUPERVISOR, SUPERVISOR_PIN, early_reason="转集中隔离", today="2022-04-05"
    )
    entry = store.audit.entries(1, "monitoring_release")[0]["detail"]
    assert entry["early"] is True and entry["reason"] == "转集中隔离"


def test_readings_and_alerts_sync_with_stable_content(store, watched):
    mon = store.monitoring
    mon.record_reading(watched, 38.2, ts=datetime.now().astimezone() - timedelta(minutes=1))
    kinds = {i.kind: i for i in store.outbox.pending(100)}
    reading, alert = kinds["reading"], kinds["monitoring_alert"]
    assert reading.body["member_id"] == watched and reading.body["abnormal"] == 1
    assert alert.body["kind"] == "referral" and alert.body["reading_id"] == reading.record_id
    # Acknowledging the alert or changing the person's record later changes no event's hash.
    mon.acknowledge(alert.record_id)
    store.ledger.save_member(
        store.ledger.member(watched).household_id,
        {"id_number": make_id(49), "id_kind": None},
        member_id=watched,
    )
    hashes = store.outbox.content_hashes()
    assert hashes[reading.record_id] == reading.content_hash
    assert hashes[alert.record_id] == alert.content_hash


def test_end_date_follows_the_configured_days(store):
    store.settings.rules.isolation_days = 21
    hid, _ = store.ledger.save_household({"building": "1", "room": "1"})
    mid, _ = store.ledger.save_member(hid, {"name": "王五", "health_status": "home_isolation"})
    m = store.ledger.member(mid)
    assert date.fromisoformat(m.status_end) - date.fromisoformat(m.status_start) == timedelta(21)
