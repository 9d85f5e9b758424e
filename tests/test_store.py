import sqlite3
import time

import pytest

from fieldkit.errors import (
    AuthError,
    InputError,
    LockedError,
    PermissionDenied,
    StoreError,
    TamperedError,
)
from fieldkit.gate import GateEntry, GateService
from fieldkit.store import open_store
from tests.conftest import SUPERVISOR, SUPERVISOR_PIN

pytestmark = pytest.mark.usefixtures("english")  # asserts the English messages

ID_A = "11010519491231002X"
ID_B = "440524188001010014"


def entry(**kw) -> GateEntry:
    base = dict(
        direction="in",
        id_number=ID_A,
        name="张三",
        phone="13800138000",
        temperature=36.5,
        code_colour="green",
    )
    base.update(kw)
    return GateEntry(**base)


def reopen(store):
    settings = store.settings
    store.close()
    return open_store(settings)


# -- keys and operators -----------------------------------------------------------------


def test_personal_fields_are_not_in_the_file(store):
    GateService(store).commit(entry(notes="住3栋2单元"))
    store.g.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw = store.path.read_bytes()
    for secret in ("张三", ID_A, "13800138000", "住3栋2单元"):
        assert secret.encode() not in raw, secret
    row = store.passages.rows()[0]
    assert row["name_masked"] == "张*" and row["id_masked"] == "110105********002X"
    assert len(row["id_hash"]) == 64


def test_unlock_after_reopen_reads_the_data(store):
    _, row = GateService(store).commit(entry())
    store = reopen(store)
    assert not store.is_unlocked
    with pytest.raises(AuthError):
        store.passages.full(row.id, purpose="test")
    store.unlock(SUPERVISOR, SUPERVISOR_PIN)
    full = store.passages.full(row.id, purpose="check")
    assert full["name"] == "张三" and full["id_number"] == ID_A
    assert store.audit.entries(1)[0]["action"] == "view_full"


def test_wrong_pins_lock_out_and_the_lock_survives_restart(store):
    store.keyring.add(store.operator, store.master, "李强", "gate", "1357")
    store.lock()
    for i in range(4):
        with pytest.raises(AuthError, match=f"{4 - i} tries left"):
            store.unlock("李强", "0000")
    with pytest.raises(LockedError, match="locked for 60 s"):
        store.unlock("李强", "0000")
    store = reopen(store)
    with pytest.raises(LockedError, match="try again in"):
        store.unlock("李强", "1357")  # even the right PIN waits
    # Time passes: the lock-out ends, and the next wrong PIN locks for twice as long.
    store.g.db.execute(
        "UPDATE operators SET locked_until = ? WHERE name = '李强'", [time.time() - 1]
    )
    with pytest.raises(LockedError, match="locked for 120 s"):
        store.unlock("李强", "0000")
    store.g.db.execute(
        "UPDATE operators SET locked_until = ? WHERE name = '李强'", [time.time() - 1]
    )
    op = store.unlock("李强", "1357")
    assert op.failures == 0
    actions = [e["action"] for e in store.audit.entries(20)]
    assert actions.count("lockout") == 2 and actions.count("login_failed") == 6


def test_supervisor_resets_a_locked_operator(store):
    store.keyring.add(store.operator, store.master, "李强", "gate", "1357")
    sup, master = store.operator, store.master
    for _ in range(5):
        with pytest.raises(AuthError):
            store.keyring.unlock("李强", "0000")
    store.keyring.reset_pin(sup, master, "李强", "9753")
    assert store.unlock("李强", "9753").role == "gate"


def test_only_a_supervisor_manages_operators(store):
    store.keyring.add(store.operator, store.master, "李强", "gate", "1357")
    store.unlock("李强", "1357")
    with pytest.raises(PermissionDenied):
        store.keyring.add(store.operator, store.master, "赵六", "gate", "1111")
    with pytest.raises(PermissionDenied):
        store.set_area_mode("high", store.operator)


def test_removed_operator_can_no_longer_unlock(store):
    store.keyring.add(store.operator, store.master, "李强", "gate", "1357")
    store.keyring.remove(store.operator, "李强")
    with pytest.raises(AuthError, match="no operator named"):
        store.unlock("李强", "1357")
    assert store.g.scalar("SELECT length(wrapped) FROM operators WHERE name='李强'") == 0
    with pytest.raises(InputError, match="last supervisor"):
        store.keyring.remove(store.operator, SUPERVISOR)


def test_bad_operator_input(store):
    with pytest.raises(InputError, match="at least 4"):
        store.keyring.add(store.operator, store.master, "李强", "gate", "12")
    with pytest.raises(InputError, match="role must be"):
        store.keyring.add(store.operator, store.master, "李强", "cook", "1234")
    store.keyring.add(store.operator, store.master, "李强", "gate", "1234")
    with pytest.raises(InputError, match="already exists"):
        store.keyring.add(store.operator, store.master, "李强", "gate", "1234")


def test_recovery_key_rewraps_the_data_key(settings):
    store = open_store(settings, create=True)
    recovery = store.setup(SUPERVISOR, SUPERVISOR_PIN)
    _, row = GateService(store).commit(entry())
    store = reopen(store)
    with pytest.raises(AuthError, match="recovery key is wrong"):
        store.recover("AAAA-BBBB", SUPERVISOR, "1111")
    store.recover(recovery.lower(), SUPERVISOR, "1111")  # case and dashes do not matter
    assert store.passages.full(row.id, purpose="recovery check")["name"] == "张三"
    store = reopen(store)
    store.unlock(SUPERVISOR, "1111")
    with pytest.raises(AuthError):
        store.unlock(SUPERVISOR, SUPERVISOR_PIN)


# -- bad files --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content", [b"", b"hello, this is a text file\n" * 100, b"SQLite format 3\x00" + b"\xff" * 4000]
)
def test_corrupt_or_foreign_file_is_never_overwritten(settings, content):
    settings.data_dir.mkdir(parents=True)
    settings.store_path.write_bytes(content)
    if not content:
        # An empty file is what a crashed first start leaves: it is safe to set up there.
        open_store(settings, create=True).close()
        return
    with pytest.raises(StoreError, match="left untouched"):
        open_store(settings, create=True)
    assert settings.store_path.read_bytes() == content


def test_another_programs_sqlite_file_is_refused(settings):
    settings.data_dir.mkdir(parents=True)
    conn = sqlite3.connect(settings.store_path)
    conn.execute("CREATE TABLE contacts(name TEXT)")
    conn.execute("INSERT INTO contacts VALUES ('x')")
    conn.commit()
    conn.close()
    before = settings.store_path.read_bytes()
    with pytest.raises(StoreError, match="not a FieldKit store"):
        open_store(settings, create=True)
    assert settings.store_path.read_bytes() == before


def test_missing_store_says_how_to_start(settings):
    with pytest.raises(StoreError, match="fieldkit init"):
        open_store(settings)


def test_flipped_byte_in_a_ciphertext_is_reported_as_tampered(store):
    _, row = GateService(store).commit(entry())
    blob = bytearray(store.g.scalar("SELECT name_enc FROM passages WHERE id = ?", [row.id]))
    blob[20] ^= 0x01
    store.g.db.execute("UPDATE passages SET name_enc = ? WHERE id = ?", [bytes(blob), row.id])
    with pytest.raises(TamperedError, match=f"record {row.id}: field name .*tampered"):
        store.passages.full(row.id, purpose="test")
    # Sync never ships it as garbage: it is quarantined with the reason and the queue goes on.
    _, other = GateService(store).commit(entry(id_number=ID_B, name="李四"))
    items = store.outbox.pending(10)
    assert [i.record_id for i in items] == [other.id]
    assert "tampered" in store.outbox.quarantined()[0]["sync_reason"]


def test_ciphertext_moved_to_another_row_fails(store):
    _, a = GateService(store).commit(entry())
    _, b = GateService(store).commit(entry(id_number=ID_B, name="李四"))
    blob = store.g.scalar("SELECT name_enc FROM passages WHERE id = ?", [a.id])
    store.g.db.execute("UPDATE passages SET name_enc = ? WHERE id = ?", [blob, b.id])
    with pytest.raises(TamperedError):
        store.passages.full(b.id, purpose="test")


# -- gate records -----------------------------------------------------------------------


def test_exit_matches_the_open_entry_and_inside_now(store):
    gate = GateService(store)
    _, a_in = gate.commit(entry())
    _, b_in = gate.commit(entry(id_number=ID_B, name="李四"))
    assert store.passages.inside_now() == 2
    _, a_out = gate.commit(entry(direction="out"))
    assert a_out.entry_id == a_in.id
    assert store.passages.inside_now() == 1
    _, again = gate.commit(entry(direction="out"))  # a second exit has no open entry left
    assert again.entry_id is None
    counters = store.passages.counters(a_in.ts[:10])
    assert counters["in"] == 2 and counters["out"] == 2 and counters["inside"] == 1


def test_turned_back_entry_is_not_inside(store):
    gate = GateService(store)
    ev, row = gate.commit(entry(code_colour="yellow"))
    assert row.decision == "turn_back"
    assert store.passages.inside_now() == 0
    assert store.passages.counters(row.ts[:10])["turned_back"] == 1


def test_correction_supersedes_and_is_audited(store):
    gate = GateService(store)
    _, wrong = gate.commit(entry(temperature=38.5))
    assert wrong.decision == "refer"
    _, fixed = gate.correct(wrong.id, entry(temperature=36.8))
    assert fixed.decision == "admit"
    assert store.passages.get(wrong.id).superseded
    assert [r.id for r in store.passages.recent()] == [fixed.id]
    audit = store.audit.entries(1)[0]
    assert audit["action"] == "correction" and audit["detail"] == {
        "record": wrong.id,
        "by": fixed.id,
    }


def test_wrong_check_digit_needs_confirmation(store):
    gate = GateService(store)
    with pytest.raises(InputError, match="check digit"):
        gate.commit(entry(id_number="110105194912310021"))
    _, row = gate.commit(entry(id_number="110105194912310021", check_digit_confirmed=True))
    assert store.g.scalar("SELECT id_check_ok FROM passages WHERE id=?", [row.id]) == 0


def test_keyperson_isolation_and_revocation_lookups(store):
    from fieldkit.crypto import blind_index, new_key

    town_key = new_key()
    store.secrets.set("town_index_key", town_key)
    store.keypersons.apply(
        [{"id_hash": blind_index(town_key, ID_A), "category": "密接", "end_date": "2099-01-01"}]
    )
    store.isolation.set(store.index(ID_B), "home_isolation", "2099-01-01")
    store.revocations.apply(["P-77"])
    gate = GateService(store)
    assert gate.evaluate(entry()).decision.outcome == "refer"
    out = gate.evaluate(entry(direction="out", id_number=ID_B))
    assert "home_isolation_leaving" in [r.code for r in out.decision.reasons]
    revoked = gate.evaluate(entry(id_number=ID_B, pass_id="P-77"))
    assert revoked.decision.outcome == "deny"
    # An expired key-person entry no longer hits.
    store.keypersons.apply(
        [{"id_hash": blind_index(town_key, ID_A), "category": "密接", "end_date": "2000-01-01"}]
    )
    assert gate.evaluate(entry()).decision.outcome == "admit"


def test_vehicle_with_occupants_is_one_transaction(store):
    gate = GateService(store)
    decision, vid, rows = gate.commit_vehicle(
        direction="in",
        plate="京A 12345",
        kind="resident",
        pass_no="T-1",
        disinfected=True,
        occupants=[entry(), entry(id_number=ID_B, name="李四", temperature=38.0)],
    )
    assert decision.outcome == "refer"
    assert len(rows) == 2 and all(r.vehicle_id == vid for r in rows)
    assert [v["plate"] for v in store.vehicles.rows() if v["id"] == vid] == ["京A12345"]
    # Nobody from a refused vehicle counts as admitted.
    assert all(r.decision != "admit" for r in rows)
    with pytest.raises(InputError, match="plate"):
        gate.commit_vehicle(direction="in", plate=" ", kind="resident", occupants=[entry()])


def test_area_mode_change_is_audited_and_kept(store):
    store.set_area_mode("medium", store.operator)
    store = reopen(store)
    assert store.settings.checkpoint.area_mode == "medium"
    e = store.audit.entries(1)[0]
    assert e["action"] == "setting_change" and e["detail"]["to"] == "medium"


# -- audit ------------------------------------------------------------------------------


def test_audit_chain_detects_alteration_deletion_and_truncation(store):
    for i in range(5):
        store.audit.append("export", SUPERVISOR, {"file": f"f{i}.xlsx"})
    n, problem = store.audit.verify()
    assert problem is None and n >= 6
    db = store.g.db
    db.execute('UPDATE audit SET detail = \'{"file":"other.xlsx"}\' WHERE seq = 3')
    assert store.audit.verify()[1].seq == 3
    db.execute("DELETE FROM audit WHERE seq = 3")
    assert store.audit.verify()[1].seq == 3
    assert "missing" in store.audit.verify()[1].message


def test_audit_truncation_is_detected(store):
    for i in range(3):
        store.audit.append("export", SUPERVISOR, {"file": f"f{i}.xlsx"})
    last = store.g.scalar("SELECT max(seq) FROM audit")
    store.g.db.execute("DELETE FROM audit WHERE seq = ?", [last])
    n, problem = store.audit.verify()
    assert problem is not None and "removed" in problem.message
