"""No personal field the store lists as encrypted reaches the disk in clear (issue 14, item 7):
a distinctive value goes into every such field of every table through the store's own API, and
the database, WAL and journal files are scanned for it."""

from __future__ import annotations

import struct
from datetime import date
from pathlib import Path

import pytest

from fieldkit.domain import Decision, Outcome, Reason
from fieldkit.errors import TamperedError
from fieldkit.store import PassageInput
from fieldkit.store.personal import ENCRYPTED, PERSONAL_FIELDS, fields, gaps
from scanners.idnumber import mask_name

ADMIT = Decision(Outcome.ADMIT, ())
MASKED_ID = "110105********002X"  # the masked form of the ID numbers below
MASKED_NAME = mask_name("秘passagesnameQ7XZ")  # the masked form of the first passage's name


def _mark(table: str, field: str) -> str:
    return f"秘{table}{field}Q7XZ"


def _disk(path: Path) -> bytes:
    return b"".join(
        Path(f"{path}{s}").read_bytes()
        for s in ("", "-wal", "-journal")
        if Path(f"{path}{s}").exists()
    )


def _found(marks: list[bytes], disk: bytes) -> list[bytes]:
    return [m for m in marks if m in disk]


def _text(values) -> list[bytes]:
    return [v.encode() for v in values] + [v.encode("utf-16-le") for v in values]


def test_every_encrypted_field_is_absent_from_the_files(store):
    passage = {f: _mark("passages", f) for f in ("name", "id_number", "phone", "raw_scan")}
    passage |= {f: _mark("passages", f) for f in ("notes", "escort", "trip_reason")}
    store.passages.record(PassageInput(direction="in", id_kind="other", **passage), ADMIT)
    household = {f: _mark("households", f) for f in ("address", "landlord_name", "notes")}
    household["landlord_phone"] = "13912345678"
    hid, _ = store.ledger.save_household({"building": "3栋", "room": "501", **household})
    member = {"name": _mark("members", "name"), "notes": _mark("members", "notes")}
    member |= {"id_number": "11010519491231002X", "phone": "13987654321"}
    mid, _ = store.ledger.save_member(hid, member)
    visit = {f: _mark("visits", f) for f in ("supply", "medical", "notes", "follow_up")}
    store.ledger.record_visit(hid, "seen", **visit)
    store.monitoring.record_reading(mid, 36.6, notes=_mark("readings", "notes"))
    store.secrets.set("probe", b"\x01\x02SECRETPROBE\x03")
    marks = [*passage.values(), *household.values(), *member.values(), *visit.values()]
    marks += [_mark("readings", "notes")]
    disk = _disk(store.path)
    assert disk  # the scan reads real files
    found = [m for m in marks if m.encode() in disk or m.encode("utf-16-le") in disk]
    assert found == []
    assert b"SECRETPROBE".hex().encode() not in disk and b"SECRETPROBE" not in disk
    # After a checkpoint (everything in the main file) too.
    store.g.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    disk = _disk(store.path)
    assert [m for m in marks if m.encode() in disk] == []


TEMPERATURE = 39.87  # distinctive: as a REAL (8 bytes) and as text


def _gate_tables(store) -> tuple[list[bytes], dict]:
    """Write a distinctive value into every personal field of passages, vehicle_passages and
    shifts through the real APIs (gate service, vehicle, shift open/close); return the byte
    patterns that must not be on disk and what the store must read back."""
    from fieldkit.gate import GateEntry, GateService
    from fieldkit.reports.shiftwork import close_shift, open_shift

    open_shift(store, _mark("shifts", "open_note"))
    gate = GateService(store)
    # The gate as the operator uses it: a fever (its reason carries the temperature).
    _, fever = gate.commit(
        GateEntry(
            direction="in",
            id_number="11010519491231002X",
            name=_mark("passages", "name"),
            temperature=TEMPERATURE,
            code_colour="green",
            trip_reason=_mark("passages", "trip_reason"),
        )
    )
    # Not measured: the reason given is written as typed (and into the decision's reasons).
    _, skipped = gate.commit(
        GateEntry(
            direction="in",
            name="李四",
            temperature_skipped=_mark("passages", "temperature_skipped"),
            code_colour="green",
        )
    )
    # The store's own API takes any value: a distinctive one in every sealed field.
    odd = store.passages.record(
        PassageInput(
            direction="in",
            id_kind="other",
            id_number="11010519491231002X",
            temperature=TEMPERATURE,
            code_colour=_mark("passages", "code_colour"),
            test_date=date(1987, 6, 5),
            test_result=_mark("passages", "test_result"),
            category=_mark("passages", "category"),
            pass_id=_mark("passages", "pass_id"),
        ),
        Decision(
            Outcome.REFER,
            (Reason("keyperson_hit", Outcome.REFER, True, {"category": _mark("p", "reason")}),),
        ),
    )
    store.passages.acknowledge(odd.id, [_mark("passages", "alerts_ack")])
    vid, _ = store.vehicles.record(
        direction="in",
        plate="秘PLATEQ7XZ",
        pass_no=_mark("vehicle_passages", "pass_no"),
        kind="resident",
        disinfected=True,
        occupants=[],
        decision=Decision(
            Outcome.DENY,
            (Reason("supply_not_whitelisted", Outcome.DENY, True, {"plate": _mark("v", "r")}),),
        ),
    )
    closed = close_shift(store, _mark("shifts", "handover_note"))
    texts = [
        _mark("shifts", "open_note"),
        _mark("shifts", "handover_note"),
        _mark("passages", "temperature_skipped"),
        _mark("passages", "code_colour"),
        _mark("passages", "test_result"),
        _mark("passages", "category"),
        _mark("passages", "pass_id"),
        _mark("p", "reason"),
        _mark("v", "r"),
        "秘PLATEQ7XZ",
        _mark("vehicle_passages", "pass_no"),
        MASKED_ID,
        MASKED_NAME,
        "1987-06-05",
        "39.87",
        '"39.9"',  # the fever reason's temperature
        "supply_not_whitelisted",  # reason codes are sealed too
        "keyperson_hit",
        "temperature_not_measured",
    ]
    patterns = _text(texts) + [struct.pack(">d", TEMPERATURE), struct.pack("<d", TEMPERATURE)]
    back = {"fever": fever.id, "skipped": skipped.id, "odd": odd.id, "vid": vid}
    back["shift"] = closed.shift_id
    return patterns, back


def test_gate_vehicle_and_shift_fields_are_absent_from_the_files(store):
    patterns, back = _gate_tables(store)
    disk = _disk(store.path)
    assert disk and Path(f"{store.path}-wal").exists()  # the scan reads real files
    assert _found(patterns, disk) == []
    # The acknowledged alerts are a ciphertext, and the (clear) audit entry counts them
    # without naming them: the alert code is in no byte of the files.
    ack = store.g.scalar("SELECT alerts_ack FROM passages WHERE id = ?", [back["odd"]])
    assert isinstance(ack, bytes) and _mark("passages", "alerts_ack").encode() not in ack
    assert _found(_text([_mark("passages", "alerts_ack")]), disk) == []
    store.g.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert _found(patterns, _disk(store.path)) == []

    # The store reads every value back: screens, reports and the sync see them unchanged.
    fever = store.passages.get(back["fever"])
    assert fever.temperature == TEMPERATURE and fever.id_masked == MASKED_ID
    assert fever.name_masked == MASKED_NAME and fever.decision == "refer"
    assert any(r["code"] == "fever" for r in fever.reasons)
    odd = store.passages.full(back["odd"], purpose="test")
    assert odd["test_date"] == "1987-06-05" and odd["category"] == _mark("passages", "category")
    assert odd["test_result"] == _mark("passages", "test_result")
    assert odd["pass_id"] == _mark("passages", "pass_id")
    assert _mark("passages", "alerts_ack") in odd["alerts_ack"]
    assert [r["alerts_ack"] for r in store.passages.rows() if r["id"] == back["odd"]] == [
        odd["alerts_ack"]
    ]
    skipped = store.passages.full(back["skipped"], purpose="test")
    assert skipped["temperature_skipped"] == _mark("passages", "temperature_skipped")
    vehicle = [v for v in store.vehicles.rows() if v["id"] == back["vid"]][0]
    assert vehicle["plate"] == "秘PLATEQ7XZ"
    assert vehicle["pass_no"] == _mark("vehicle_passages", "pass_no")
    shift = store.shifts.get(back["shift"])
    assert shift["handover_note"] == _mark("shifts", "handover_note")
    assert '"open_note"' in shift["summary"] and _mark("shifts", "open_note") in shift["summary"]
    bodies = {i.record_id: i.body for batch in store.outbox.batches(100) for i in batch}
    assert bodies[back["odd"]]["category"] == _mark("passages", "category")
    assert bodies[back["odd"]]["pass_id"] == _mark("passages", "pass_id")
    assert "alerts_ack" not in bodies[back["odd"]]  # local only
    assert bodies[back["fever"]]["temperature"] == TEMPERATURE
    assert bodies[back["fever"]]["id_masked"] == MASKED_ID
    assert bodies[back["vid"]]["plate"] == "秘PLATEQ7XZ"
    assert bodies[back["vid"]]["reasons"][0]["params"] == {"plate": _mark("v", "r")}


def test_the_scan_finds_a_value_left_in_clear(store):
    """The scan can fail: a value written into a former clear column is found."""
    patterns, back = _gate_tables(store)
    store.g.db.execute(
        "UPDATE passages SET temperature = ?, code_colour = ? WHERE id = ?",
        [TEMPERATURE, _mark("passages", "code_colour"), back["odd"]],
    )
    assert len(_found(patterns, _disk(store.path))) >= 2


def test_every_encrypted_column_of_the_schema_is_in_the_one_list(store):
    listed = set(fields(ENCRYPTED))
    tables = [r["name"] for r in store.g.query("SELECT name FROM sqlite_master WHERE type='table'")]
    for table in tables:
        for col in store.g.query(f"PRAGMA table_info({table})"):
            if col["name"].endswith("_enc"):
                assert (table, col["name"]) in listed, f"{table}.{col['name']} not listed"
    assert set(PERSONAL_FIELDS) <= set(tables)


def test_the_fields_still_in_clear_are_named(store):
    """The open gaps of item 7, named: closing one means moving it to ENCRYPTED in the list.
    Of the gate's tables only the local acknowledgement record is left in clear."""
    gate_gaps = [(t, c) for t, c in gaps() if t in ("passages", "vehicle_passages", "shifts")]
    assert gate_gaps == []
    assert PERSONAL_FIELDS["passages"]["alerts_ack"] == ENCRYPTED
    assert ("keypersons", "category") not in gaps()
    assert ("isolation_index", "status") not in gaps()


def test_trip_reason_of_an_older_row_is_sealed_at_login(store, settings):
    from fieldkit.store import open_store

    rid = store.passages.record(PassageInput(direction="in", id_kind="other"), ADMIT).id
    store.g.db.execute(
        "UPDATE passages SET trip_reason = ?, trip_reason_enc = NULL WHERE id = ?",
        [_mark("old", "trip"), rid],
    )
    store.g.db.execute("DELETE FROM kv WHERE key = 'sealed.trip_reason'")
    body_before = store.outbox.kinds["passage"].body(
        store.g.query("SELECT * FROM passages WHERE id = ?", [rid])[0]
    )
    s = open_store(settings)
    s.unlock("王芳", "2468")
    row = s.g.query("SELECT * FROM passages WHERE id = ?", [rid])[0]
    assert row["trip_reason"] is None and row["trip_reason_enc"] is not None
    assert s.outbox.kinds["passage"].body(dict(row)) == body_before
    s.g.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    s.g.db.execute("VACUUM")
    assert _mark("old", "trip").encode() not in _disk(s.path)


def test_rows_from_before_m005_are_sealed_at_login(store, settings):
    """A store upgraded from before m005 holds masked copies, health values, plates and notes
    in clear: the first login seals them, and what the sync sends is unchanged."""
    from fieldkit.store import open_store
    from fieldkit.store.passages import SEALED, VEHICLE_SEALED

    patterns, back = _gate_tables(store)
    kinds = store.outbox.kinds
    before = {}
    for kind, table, key in (
        ("passage", "passages", "odd"),
        ("vehicle", "vehicle_passages", "vid"),
    ):
        raw = store.g.query(f"SELECT * FROM {table} WHERE id = ?", [back[key]])[0]
        before[key] = kinds[kind].body(dict(raw))
    # Put the rows back as an older version wrote them: values in clear, nothing sealed.
    odd = store.passages.unseal(
        store.g.query("SELECT * FROM passages WHERE id = ?", [back["odd"]])[0]
    )
    store.g.db.execute(
        f"UPDATE passages SET sealed_enc = NULL, {', '.join(f'{k} = ?' for k in SEALED)} "
        "WHERE id = ?",
        [*(odd[k] for k in SEALED), back["odd"]],
    )
    vehicle = [v for v in store.vehicles.rows() if v["id"] == back["vid"]][0]
    store.g.db.execute(
        "UPDATE vehicle_passages SET sealed_enc = NULL, plate = ?, pass_no = ?, reasons = ? "
        "WHERE id = ?",
        [*(vehicle[k] for k in VEHICLE_SEALED), back["vid"]],
    )
    shift = store.shifts.get(back["shift"])
    store.g.db.execute(
        "UPDATE shifts SET handover_note = ?, summary = ?, handover_note_enc = NULL, "
        "summary_enc = NULL WHERE id = ?",
        [shift["handover_note"], shift["summary"], back["shift"]],
    )
    ack = store.passages.unseal(
        {
            "id": back["odd"],
            "alerts_ack": store.g.scalar(
                "SELECT alerts_ack FROM passages WHERE id = ?", [back["odd"]]
            ),
        }
    )["alerts_ack"]
    store.g.db.execute("UPDATE passages SET alerts_ack = ? WHERE id = ?", [ack, back["odd"]])
    store.g.db.execute("DELETE FROM kv WHERE key = 'sealed.m005'")
    assert _found(patterns, _disk(store.path))  # in clear now, as before the upgrade
    # Before the login, the older rows read as they are.
    assert store.passages.get(back["odd"]).category == _mark("passages", "category")

    s = open_store(settings)
    s.unlock("王芳", "2468")
    for kind, table, key in (
        ("passage", "passages", "odd"),
        ("vehicle", "vehicle_passages", "vid"),
    ):
        raw = s.g.query(f"SELECT * FROM {table} WHERE id = ?", [back[key]])[0]
        assert raw["sealed_enc"] is not None
        assert s.outbox.kinds[kind].body(dict(raw)) == before[key]
    assert s.shifts.get(back["shift"]) == shift
    stored_ack = s.g.scalar("SELECT alerts_ack FROM passages WHERE id = ?", [back["odd"]])
    assert isinstance(stored_ack, bytes)
    assert [r["alerts_ack"] for r in s.passages.rows() if r["id"] == back["odd"]] == [ack]
    # Sealed where they were: no copy of the clear values in the files, with no VACUUM.
    assert _found(patterns, _disk(s.path)) == []


def test_keyperson_category_and_isolation_status_are_absent_from_the_files(store, settings):
    """A key-person category (written by a sync download, with or without an operator logged
    in) and an isolation status (written by the ledger) reach no byte of the files in clear;
    the gate's look-ups and the report's counts read them back."""
    from fieldkit.crypto import blind_index, new_key
    from fieldkit.store import open_store

    category, status = _mark("keypersons", "category"), _mark("isolation", "status")
    town_key = new_key()
    store.secrets.set("town_index_key", town_key)
    unlocked_hash, locked_hash = blind_index(town_key, "A1"), blind_index(town_key, "A2")
    store.keypersons.apply([{"id_hash": unlocked_hash, "category": category}])
    iso_hash = store.index("11010519491231002X")
    store.isolation.set(iso_hash, status, "2099-01-01")
    raw = store.g.scalar("SELECT category FROM keypersons WHERE id_hash = ?", [unlocked_hash])
    assert isinstance(raw, bytes) and category.encode() not in raw
    assert store.keypersons.lookup(unlocked_hash) == category
    assert store.isolation.status(iso_hash) == status
    assert store.isolation.counts_on("2098-01-01") == {status: 1}
    # A download while no one is logged in: kept in clear only until the next login seals it.
    store.lock()
    store.keypersons.apply([{"id_hash": locked_hash, "category": category + "L"}])
    assert store.keypersons.count() == 2
    s = open_store(settings)
    s.unlock("王芳", "2468")
    assert s.keypersons.lookup(locked_hash) == category + "L"
    assert s.g.scalar("SELECT count(*) FROM keypersons WHERE typeof(category) = 'text'") == 0
    patterns = _text([category, category + "L", status])
    assert _found(patterns, _disk(s.path)) == []
    s.g.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert _found(patterns, _disk(s.path)) == []
    # A value moved to another row does not open (the row key is in the associated data).
    s.g.db.execute(
        "UPDATE keypersons SET category = (SELECT category FROM keypersons WHERE id_hash = ?) "
        "WHERE id_hash = ?",
        [unlocked_hash, locked_hash],
    )
    with pytest.raises(TamperedError):
        s.keypersons.lookup(locked_hash)
    s.close()


def test_an_isolation_status_from_before_the_upgrade_is_sealed_at_login(store, settings):
    from fieldkit.store import open_store

    iso_hash = store.index("11010519491231002X")
    status = _mark("old", "status")
    store.g.db.execute(
        "INSERT INTO isolation_index(id_hash, status, end_date) VALUES (?, ?, NULL)",
        [iso_hash, status],
    )
    s = open_store(settings)
    s.unlock("王芳", "2468")
    assert isinstance(s.g.scalar("SELECT status FROM isolation_index"), bytes)
    assert s.isolation.status(iso_hash) == status
    s.g.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert _found(_text([status]), _disk(s.path)) == []
    s.close()
