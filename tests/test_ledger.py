"""The household ledger facade: encryption, versions and edits, visits, coverage, the gate link."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta

import pytest

from fieldkit.errors import InputError, TamperedError
from fieldkit.gate import GateEntry, GateService
from tests.ledger_support import make_id

pytestmark = pytest.mark.usefixtures("english")  # asserts the English messages

A, B, C = make_id(11), make_id(12), make_id(13)


@pytest.fixture
def household(store):
    hid, state = store.ledger.save_household(
        {
            "grid": "网格1",
            "building": "3栋",
            "unit": "2单元",
            "room": "501",
            "address": "幸福路1号",
            "worker": "李干部",
            "is_rental": True,
            "landlord_name": "周房东",
            "landlord_phone": "13600000000",
        }
    )
    assert state == "created"
    return hid


def test_personal_fields_are_encrypted_at_rest(store, household):
    mid, _ = store.ledger.save_member(
        household, {"name": "张三", "id_number": A, "phone": "13800138000", "notes": "糖尿病"}
    )
    raw = sqlite3.connect(store.path).execute("SELECT * FROM members").fetchone()
    blob = b"".join(v if isinstance(v, bytes) else str(v).encode() for v in raw)
    for secret in ("张三", A, "13800138000", "糖尿病"):
        assert secret.encode() not in blob
    hraw = sqlite3.connect(store.path).execute("SELECT * FROM households").fetchone()
    hblob = b"".join(v if isinstance(v, bytes) else str(v).encode() for v in hraw)
    assert "幸福路1号".encode() not in hblob and "周房东".encode() not in hblob
    m = store.ledger.member(mid)
    assert (m.name_masked, m.id_masked, m.phone_masked) == (
        "张*",
        A[:6] + "********" + A[-4:],
        "138****8000",
    )


def test_ciphertext_moved_to_another_member_fails(store, household):
    a, _ = store.ledger.save_member(household, {"name": "张三", "id_number": A})
    b, _ = store.ledger.save_member(household, {"name": "李四", "id_number": B})
    with store.g.tx() as db:
        db.execute(
            "UPDATE members SET name_enc = (SELECT name_enc FROM members WHERE id = ?) "
            "WHERE id = ?",
            [a, b],
        )
    with pytest.raises(TamperedError):
        store.ledger.member_full(b, purpose="test")


def test_full_view_is_audited(store, household):
    mid, _ = store.ledger.save_member(household, {"name": "张三", "id_number": A})
    assert store.ledger.member_full(mid, purpose="回访")["name"] == "张三"
    entry = store.audit.entries(1, "view_full")[0]
    assert entry["detail"] == {"member": mid, "purpose": "回访"}


def test_edit_bumps_version_and_records_what_changed(store, household):
    mid, _ = store.ledger.save_member(household, {"name": "张三", "id_number": A})
    _, state = store.ledger.save_member(household, {"phone": "13900000000"}, member_id=mid)
    assert state == "updated"
    _, state = store.ledger.save_member(household, {"phone": "13900000000"}, member_id=mid)
    assert state == "unchanged"
    row = store.g.query("SELECT version, last_writer FROM members WHERE id = ?", [mid])[0]
    assert row == {"version": 2, "last_writer": "王芳@CP-0101"}
    items = [
        i
        for i in store.outbox.pending(100)
        if i.kind == "ledger_edit" and i.body["entity_id"] == mid
    ]
    assert [(i.body["base_version"], i.body["version"]) for i in items] == [(0, 1), (1, 2)]
    assert items[1].body["changes"] == {"phone": "13900000000"}
    assert items[0].body["id_number"] == A  # the town can index the person
    assert items[0].body["changes"]["household_id"] == household


def test_same_id_number_finds_the_same_person(store, household):
    mid, _ = store.ledger.save_member(household, {"name": "张三", "id_number": A})
    other, _ = store.ledger.save_household({"building": "4栋", "room": "101"})
    again, state = store.ledger.save_member(
        other, {"name": "张三", "id_number": f" {A[:6]} {A[6:]}"}
    )
    assert (again, state) == (mid, "updated")  # moved to the other household
    assert store.ledger.member(mid).household_id == other
    assert store.ledger.find_member(A.lower()).id == mid


def test_id_number_of_another_member_is_refused(store, household):
    a, _ = store.ledger.save_member(household, {"name": "张三", "id_number": A})
    store.ledger.save_member(household, {"name": "李四", "id_number": B})
    with pytest.raises(InputError, match="another member"):
        store.ledger.save_member(household, {"id_number": B}, member_id=a)
    assert store.ledger.member(a).version == 1


def test_bad_id_number_is_refused(store, household):
    with pytest.raises(InputError, match="check digit"):
        store.ledger.save_member(
            household, {"name": "张三", "id_number": A[:-1] + "0" if A[-1] != "0" else A[:-1] + "1"}
        )


def test_home_isolation_keeps_the_gate_in_step(store, household):
    mid, _ = store.ledger.save_member(
        household, {"name": "张三", "id_number": A, "health_status": "home_isolation"}
    )
    gate = GateService(store)
    ev = gate.evaluate(
        GateEntry(direction="out", id_number=A, temperature=36.5, code_colour="green")
    )
    assert ev.isolation == "home_isolation"
    assert any(r.code == "home_isolation_leaving" for r in ev.decision.reasons)
    store.ledger.save_member(household, {"health_status": "daily_monitoring"}, member_id=mid)
    ev = gate.evaluate(
        GateEntry(direction="out", id_number=A, temperature=36.5, code_colour="green")
    )
    assert ev.isolation is None
    # A new ID number for the person moves the gate's entry with it.
    store.ledger.save_member(household, {"health_status": "home_monitoring"}, member_id=mid)
    store.ledger.save_member(household, {"id_number": B, "id_kind": None}, member_id=mid)
    assert store.isolation.status(store.index(A)) is None
    assert store.isolation.status(store.index(B)) == "home_monitoring"
    store.ledger.remove_member(mid, "moved away")
    assert store.isolation.status(store.index(B)) is None


def test_status_end_date_from_configured_days(store, household):
    store.settings.rules.health_monitoring_days = 5
    mid, _ = store.ledger.save_member(
        household,
        {"name": "张三", "health_status": "home_monitoring", "status_start": "2022-04-01"},
    )
    m = store.ledger.member(mid)
    assert (m.status_start, m.status_end) == ("2022-04-01", "2022-04-06")


def test_building_list_with_today_state_and_flags(store, household):
    ledger = store.ledger
    mid, _ = ledger.save_member(
        household, {"name": "张三", "id_number": A, "categories": ["close_contact", "tenant"]}
    )
    other, _ = ledger.save_household({"building": "3栋", "unit": "2单元", "room": "1001"})
    third, _ = ledger.save_household({"building": "3栋", "unit": "2单元", "room": "502"})
    ledger.save_household({"building": "9栋", "unit": "1单元", "room": "101"})
    rows = ledger.households_in("3栋", "2单元")
    assert [r.room for r in rows] == ["501", "502", "1001"]  # natural order
    assert set(rows[0].flags) >= {"close_contact", "rental"} and "tenant" not in rows[0].flags
    v = ledger.record_visit(
        household,
        "seen",
        members=[{"member_id": mid, "temperature": 37.6, "symptoms": ["dry_cough"]}],
        supply="米面油",
        medical=None,
    )
    assert v["abnormal"] == [mid] and v["follow_up"] == 1
    ledger.record_visit(third, "nobody_home")
    ledger.record_visit(third, "nobody_home")
    ledger.record_visit(other, "refused", follow_up="明天再来")
    rows = {r.room: r for r in ledger.households_in("3栋")}
    assert rows["501"].today == "seen" and rows["501"].reached and rows["501"].follow_up
    assert "supply_need" in rows["501"].flags
    assert "nobody_home_twice" in rows["502"].flags and not rows["502"].reached
    assert rows["1001"].today == "refused" and rows["1001"].follow_up
    assert [(b["grid"], b["building"]) for b in ledger.buildings()] == [
        ("", "3栋"),
        ("", "9栋"),
        ("网格1", "3栋"),
    ]
    assert ledger.units("3栋") == ["2单元"]


def test_coverage_per_unit_building_grid_and_not_reached(store, household):
    ledger = store.ledger
    ledger.save_household({"grid": "网格1", "building": "3栋", "unit": "1单元", "room": "101"})
    ledger.save_household({"grid": "网格2", "building": "5栋", "unit": "1单元", "room": "101"})
    ledger.record_visit(household, "seen")
    cov = ledger.coverage()
    assert cov["total"]["total"] == 3 and cov["total"]["visited"] == 1
    b = {(x["grid"], x["building"]): (x["visited"], x["total"]) for x in cov["buildings"]}
    assert b == {("网格1", "3栋"): (1, 2), ("网格2", "5栋"): (0, 1)}
    assert {(u["unit"], u["visited"]) for u in cov["units"]} == {("2单元", 1), ("1单元", 0)}
    assert sorted(r.building for r in ledger.not_reached()) == ["3栋", "5栋"]
    # A new round starts from zero.
    ledger.start_round("第2轮")
    assert ledger.coverage()["total"]["visited"] == 0
    assert len(ledger.not_reached()) == 3


def test_visit_validation(store, household):
    with pytest.raises(InputError, match="outcome"):
        store.ledger.record_visit(household, "maybe")
    with pytest.raises(InputError, match="plausible"):
        store.ledger.record_visit(
            household, "seen", members=[{"member_id": "x", "temperature": 45.5}]
        )
    with pytest.raises(InputError, match="symptom"):
        store.ledger.record_visit(
            household, "seen", members=[{"member_id": "x", "symptoms": ["sneeze"]}]
        )


def test_visits_sync_as_events_and_are_append_only(store, household):
    store.ledger.record_visit(
        household, "seen", notes="家中两人", ts=datetime.now().astimezone() - timedelta(minutes=5)
    )
    items = [i for i in store.outbox.pending(100) if i.kind == "visit"]
    assert len(items) == 1 and items[0].body["notes"] == "家中两人"
    assert items[0].body["household_id"] == household
    store.outbox.mark_synced([items[0].record_id], "batch-1", kind="visit")
    assert not [i for i in store.outbox.pending(100) if i.kind == "visit"]
    assert store.outbox.counts()["synced"] == 1
    assert {"visit", "reading", "ledger_edit", "monitoring_alert"} <= set(store.outbox.kinds)
