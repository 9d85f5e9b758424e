"""No personal or health field of the household ledger reaches the disk in clear (issue 14,
item 7, ledger side): a distinctive value goes into every field of households, members, visits,
readings and monitoring alerts through the real API (a ledger file imported, the member form's
save, a visit, a reading that raises an alert), and the database, WAL and journal files are
scanned for it. Screens, exports and the sync read every value back unchanged."""

from __future__ import annotations

import csv
import struct
from pathlib import Path

from fieldkit.ledger.exporter import export_households
from fieldkit.ledger.importer import import_file
from fieldkit.shared.identity import mask_id, mask_name
from tests.ledger_support import make_id

TEMPERATURE = 39.87  # distinctive: as a REAL (8 bytes) and as text
BUILDING, UNIT, ROOM = "鬯楼Q7XZ", "鬯元Q7XZ", "鬯室Q7XZ7"
NAME_A, NAME_B = "鬯Q7XZ", "黹Q7XY"  # masked: 鬯*** and 黹***
ID_A = make_id(7, "19870605")
PHONE_A, PHONE_B = "13912345678", "13687654321"
MASKS = (mask_name(NAME_A), mask_name(NAME_B), mask_id(ID_A), "139****5678", "136****4321")
CODES = (  # categories, health statuses, found via, symptoms: stored only inside ciphertexts
    "left_behind_child",
    "dialysis",
    "pregnant",
    "central_isolation",
    "home_monitoring",
    "mutual_check",
    "self_report",
    "chest_tightness",
    "diarrhoea",
)
DATES = ("2031-07-19", "2031-08-23", "2030-02-17", "2020-01-23", "2030-03-11")
MARKS = ("鬯苗Q7XZ", "鬯核Q7XZ", "黹苗Q7XY", "黹核Q7XY")


def _disk(path: Path) -> bytes:
    return b"".join(
        Path(f"{path}{s}").read_bytes()
        for s in ("", "-wal", "-journal")
        if Path(f"{path}{s}").exists()
    )


def _patterns() -> list[bytes]:
    texts = [BUILDING, UNIT, ROOM, *MASKS, *CODES, *DATES, *MARKS, "39.87"]
    out = [v.encode() for v in texts] + [v.encode("utf-16-le") for v in texts]
    return out + [struct.pack(">d", TEMPERATURE), struct.pack("<d", TEMPERATURE)]


def _found(disk: bytes) -> list[bytes]:
    return [p for p in _patterns() if p in disk]


def _write_ledger(store, tmp_path: Path) -> dict[str, str]:
    """Every ledger field through the real API; returns the record ids."""
    sheet = tmp_path / "ledger.csv"
    with sheet.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "姓名",
                "身份证号码",
                "联系电话",
                "楼栋",
                "单元",
                "房号",
                "人员类别",
                "健康管理状态",
                "开始时间",
                "解除时间",
                "来源",
                "疫苗接种",
                "最近核酸时间",
                "核酸结果",
            ]
        )
        w.writerow(
            [
                NAME_A,
                ID_A,
                PHONE_A,
                BUILDING,
                UNIT,
                ROOM,
                "留守儿童、血透患者",
                "集中隔离",
                "2031-07-19",
                "2031-08-23",
                "居民互查",
                MARKS[0],
                "2030-02-17",
                MARKS[1],
            ]
        )
    summary = import_file(store, sheet)
    assert summary.imported == 1 and not summary.rejected, summary.as_dict()
    ledger = store.ledger
    hid = ledger.find_household("", BUILDING, UNIT, ROOM)
    assert hid
    a = ledger.members(hid)[0].id
    # The member form's save (fieldkit/ui/member_form.py hands its fields to save_member).
    b, state = ledger.save_member(
        hid,
        {
            "name": NAME_B,
            "phone": PHONE_B,
            "categories": ["pregnant"],
            "health_status": "home_monitoring",
            "status_start": "2020-01-23",
            "found_via": "self_report",
            "vaccination": MARKS[2],
            "last_test_date": "2030-03-11",
            "last_test_result": MARKS[3],
        },
    )
    assert state == "created"
    ledger.record_visit(
        hid, "seen", members=[{"member_id": a, "temperature": TEMPERATURE, "symptoms": []}]
    )
    ledger.record_visit(
        hid,
        "seen",
        members=[{"member_id": b, "temperature": None, "symptoms": ["chest_tightness"]}],
    )
    reading = store.monitoring.record_reading(b, TEMPERATURE, symptoms=["diarrhoea"])
    assert reading["alert_id"]  # a referral alert, its detail carrying both
    return {"household": hid, "a": a, "b": b, "alert": reading["alert_id"]}


def test_every_ledger_field_is_absent_from_the_files(store, tmp_path):
    ids = _write_ledger(store, tmp_path)
    disk = _disk(store.path)
    assert disk and Path(f"{store.path}-wal").exists()  # the scan reads real files
    assert _found(disk) == []
    store.g.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert _found(_disk(store.path)) == []

    # Screens, exports, reports and the sync read every value back.
    ledger, monitoring = store.ledger, store.monitoring
    assert [b["building"] for b in ledger.buildings()] == [BUILDING]
    assert ledger.units(BUILDING) == [UNIT]
    (row,) = ledger.households_in(BUILDING, UNIT)
    assert (row.building, row.unit, row.room) == (BUILDING, UNIT, ROOM)
    assert {"left_behind_child", "dialysis", "central_isolation", "home_monitoring"} <= set(
        row.flags
    )
    a, b = ledger.member(ids["a"]), ledger.member(ids["b"])
    assert (a.name_masked, a.id_masked, a.phone_masked) == (MASKS[0], mask_id(ID_A), MASKS[3])
    assert a.categories == ("left_behind_child", "dialysis")
    assert (a.health_status, a.status_start, a.status_end, a.found_via) == (
        "central_isolation",
        "2031-07-19",
        "2031-08-23",
        "mutual_check",
    )
    assert (b.name_masked, b.phone_masked, b.categories) == (MASKS[1], MASKS[4], ("pregnant",))
    assert (b.health_status, b.status_start, b.found_via) == (
        "home_monitoring",
        "2020-01-23",
        "self_report",
    )
    full = ledger.member_full(ids["a"], purpose="test")
    assert (full["vaccination"], full["last_test_date"], full["last_test_result"]) == (
        MARKS[0],
        "2030-02-17",
        MARKS[1],
    )
    assert ledger.find_member(ID_A).id == ids["a"]
    visits = ledger.visits(ids["household"])
    got = [(m["temperature"], m["symptoms"]) for v in visits for m in v["members"]]
    assert sorted(got, key=repr) == sorted(
        [(None, ["chest_tightness"]), (TEMPERATURE, [])], key=repr
    )
    (reading,) = monitoring.readings(ids["b"])
    assert (reading["temperature"], reading["symptoms"]) == (TEMPERATURE, ["diarrhoea"])
    (alert,) = monitoring.alerts()
    assert alert["detail"]["temperature"] == TEMPERATURE
    assert alert["detail"]["symptoms"] == ["diarrhoea"]
    assert alert["place"] == f"{BUILDING}-{UNIT}-{ROOM}" and alert["name_masked"] == MASKS[1]
    assert [m["id"] for m in monitoring.ending()] == [ids["b"]]
    assert ledger.category_counts("9999-12-31", ["home_monitoring"]) == {
        "category.dialysis": 1,
        "category.left_behind_child": 1,
        "category.pregnant": 1,
    }
    cover = ledger.coverage()
    assert cover["buildings"][0]["building"] == BUILDING and cover["total"]["total"] == 1
    out = tmp_path / "out.csv"
    export_households(store, out)
    text = out.read_text(encoding="utf-8-sig")
    assert BUILDING in text and ROOM in text and MASKS[0] in text and "集中隔离" in text
    bodies = {i.record_id: i.body for batch in store.outbox.batches(100) for i in batch}
    assert bodies[reading["id"]]["temperature"] == TEMPERATURE
    assert bodies[reading["id"]]["symptoms"] == ["diarrhoea"]
    assert bodies[ids["alert"]]["detail"]["temperature"] == TEMPERATURE
    visit_members = [m for v in visits for m in bodies[v["id"]]["members"]]
    assert {"member_id": ids["a"], "temperature": TEMPERATURE, "symptoms": []} in visit_members


def test_the_scan_finds_a_value_left_in_clear(store, tmp_path):
    """The scan can fail: a value written into a former clear column is found."""
    ids = _write_ledger(store, tmp_path)
    store.g.db.execute(
        "UPDATE members SET health_status = 'central_isolation' WHERE id = ?", [ids["a"]]
    )
    store.g.db.execute(
        "UPDATE households SET building = ? WHERE id = ?", [BUILDING, ids["household"]]
    )
    assert len(_found(_disk(store.path))) >= 2


def test_rows_written_in_clear_before_are_sealed_at_the_next_login(store, tmp_path, settings):
    """A store from before the ledger sealed these fields: its clear values are encrypted by
    the first unlocked session, and read back the same."""
    from fieldkit.store import open_store
    from tests.conftest import SUPERVISOR, SUPERVISOR_PIN

    ids = _write_ledger(store, tmp_path)
    ledger = store.ledger
    before = (
        ledger.households_in(BUILDING, UNIT),
        ledger.member(ids["a"]),
        ledger.member(ids["b"]),
    )
    readings_before = store.monitoring.readings(ids["b"])
    alerts_before = store.monitoring.alerts()
    # Put the store back as the code before m003 wrote it: values in the clear columns.
    db = store.g.db
    (h,) = store.g.query("SELECT * FROM households")
    db.execute(
        "UPDATE households SET building = ?, unit = ?, room = ?, sort_key = ?, "
        "address_key = ?, place_enc = NULL, building_key = NULL, unit_key = NULL",
        [BUILDING, UNIT, ROOM, "鬯室Q7XZ00000007", f"|{BUILDING}|{UNIT}|{ROOM}".upper()],
    )
    for m in store.g.query("SELECT * FROM members"):
        p = ledger.profile(m)
        db.execute(
            "UPDATE members SET name_masked = ?, id_masked = ?, phone_masked = ?, "
            "categories = ?, health_status = ?, status_start = ?, status_end = ?, found_via = ?, "
            "vaccination = ?, last_test_date = ?, last_test_result = ?, profile_enc = NULL "
            "WHERE id = ?",
            [
                p["name_masked"],
                p["id_masked"],
                p["phone_masked"],
                '["' + '", "'.join(p["categories"]) + '"]',
                p["health_status"],
                p["status_start"],
                p["status_end"],
                p["found_via"],
                p["vaccination"],
                p["last_test_date"],
                p["last_test_result"],
                m["id"],
            ],
        )
    for v in store.g.query("SELECT * FROM visits"):
        db.execute(
            "UPDATE visits SET members = ?, members_enc = NULL WHERE id = ?",
            [store.cipher.decrypt(v["id"], "members", v["members_enc"]), v["id"]],
        )
    db.execute(
        "UPDATE readings SET temperature = ?, symptoms = '[\"diarrhoea\"]', reading_enc = NULL",
        [TEMPERATURE],
    )
    for a in store.g.query("SELECT * FROM monitoring_alerts"):
        db.execute(
            "UPDATE monitoring_alerts SET detail = ?, detail_enc = NULL WHERE id = ?",
            [store.cipher.decrypt(a["id"], "detail", a["detail_enc"]), a["id"]],
        )
    db.execute("DELETE FROM kv WHERE key = 'sealed.ledger'")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert len(_found(_disk(store.path))) >= 10  # the legacy store does hold them in clear
    store.close()

    again = open_store(settings)
    again.unlock(SUPERVISOR, SUPERVISOR_PIN)
    ledger = again.ledger
    after = (ledger.households_in(BUILDING, UNIT), ledger.member(ids["a"]), ledger.member(ids["b"]))
    assert after == before
    assert again.monitoring.readings(ids["b"]) == readings_before
    assert again.monitoring.alerts() == alerts_before
    assert ledger.find_household("", BUILDING, UNIT, ROOM) == h["id"]
    assert _found(_disk(again.path)) == []
    again.close()
