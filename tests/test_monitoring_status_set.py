"""漏测 (missed-reading) alerts count windows from when this device learned that a person is to
be monitored: a member on the ledger for days who is put under home monitoring at 15:00 did not
miss that morning's window (trial leftover of stop 20)."""

from datetime import datetime

import pytest

from fieldkit.ledger import households
from tests.ledger_support import make_id


@pytest.fixture
def clock(store, monkeypatch):
    tz = datetime.now().astimezone().tzinfo
    now = {"t": datetime(2022, 4, 8, 10, 0, tzinfo=tz)}
    monkeypatch.setattr(households, "now_local", lambda: now["t"])
    store.g.db.execute("UPDATE operators SET created_at = ?", ["2022-04-01T12:00:00+08:00"])
    store.settings.monitoring.morning_window = "07:00-09:00"
    store.settings.monitoring.evening_window = "18:00-20:00"
    now["tz"] = tz
    return now


def _member(store, n: int, **fields) -> tuple[str, str]:
    hid, _ = store.ledger.save_household({"building": "3栋", "unit": "1", "room": f"{n}01"})
    person = {"name": f"张{n}", "id_number": make_id(90 + n)}
    mid, _ = store.ledger.save_member(hid, person | fields)
    return hid, mid


def test_put_under_monitoring_in_the_afternoon_owes_no_morning_window(store, clock):
    tz = clock["tz"]
    hid, _ = _member(store, 1)  # on the ledger since the 8th, not monitored
    clock["t"] = datetime(2022, 4, 10, 15, 0, tzinfo=tz)
    store.ledger.save_member(hid, {"id_number": make_id(91), "health_status": "home_monitoring"})
    mon = store.monitoring
    assert mon.check_missed(datetime(2022, 4, 10, 15, 5, tzinfo=tz)) == 0
    assert [d.slot for d in mon.due(datetime(2022, 4, 10, 15, 5, tzinfo=tz))] == []
    assert mon.check_missed(datetime(2022, 4, 10, 21, 0, tzinfo=tz)) == 1  # the evening: real
    assert [(a["day"], a["slot"]) for a in mon.alerts()] == [("2022-04-10", "evening")]


def test_a_backdated_start_owes_nothing_before_the_device_was_told(store, clock):
    tz = clock["tz"]
    hid, _ = _member(store, 2)
    clock["t"] = datetime(2022, 4, 10, 15, 0, tzinfo=tz)
    store.ledger.save_member(
        hid,
        {"id_number": make_id(92), "health_status": "home_isolation", "status_start": "2022-04-06"},
    )
    mon = store.monitoring
    mon.check_missed(datetime(2022, 4, 11, 10, 0, tzinfo=tz))
    missed = sorted((a["day"], a["slot"]) for a in mon.alerts() if a["kind"] == "missed")
    assert missed == [("2022-04-10", "evening"), ("2022-04-11", "morning")]


def test_a_switch_between_home_statuses_keeps_the_windows_owed_before_it(store, clock):
    tz = clock["tz"]
    clock["t"] = datetime(2022, 4, 9, 6, 0, tzinfo=tz)
    hid, _ = _member(store, 3, health_status="home_isolation")  # from the 9th, before 07:00
    mon = store.monitoring
    assert mon.check_missed(datetime(2022, 4, 9, 21, 0, tzinfo=tz)) == 2  # both windows missed
    clock["t"] = datetime(2022, 4, 10, 15, 0, tzinfo=tz)  # isolation → monitoring, same period
    store.ledger.save_member(hid, {"id_number": make_id(93), "health_status": "home_monitoring"})
    mon.check_missed(datetime(2022, 4, 10, 15, 5, tzinfo=tz))
    missed = sorted((a["day"], a["slot"]) for a in mon.alerts() if a["kind"] == "missed")
    assert missed == [
        ("2022-04-09", "evening"),
        ("2022-04-09", "morning"),
        ("2022-04-10", "morning"),  # owed under isolation, before the switch
    ]


def test_released_and_monitored_again_counts_from_the_second_start(store, clock):
    tz = clock["tz"]
    clock["t"] = datetime(2022, 4, 9, 6, 0, tzinfo=tz)
    hid, _ = _member(store, 4, health_status="home_monitoring")
    clock["t"] = datetime(2022, 4, 9, 6, 30, tzinfo=tz)
    store.ledger.save_member(hid, {"id_number": make_id(94), "health_status": "none"})
    clock["t"] = datetime(2022, 4, 10, 12, 0, tzinfo=tz)
    store.ledger.save_member(hid, {"id_number": make_id(94), "health_status": "home_monitoring"})
    mon = store.monitoring
    mon.check_missed(datetime(2022, 4, 10, 21, 0, tzinfo=tz))
    missed = sorted((a["day"], a["slot"]) for a in mon.alerts() if a["kind"] == "missed")
    assert missed == [("2022-04-10", "evening")]
