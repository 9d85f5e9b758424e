"""Attacks on a device's store file and keys (issue 14: lock-out race, operator removal,
offline PIN guessing). Each test performs the attack and checks that it fails."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from fieldkit.config import Settings
from fieldkit.crypto import derive_pin_key, open_sealed, recovery_kek, unwrap, wrap
from fieldkit.domain import Decision, Outcome
from fieldkit.errors import AuthError, InputError, LockedError, TamperedError
from fieldkit.store import PassageInput, open_store, tpm
from fieldkit.store.keyring import _KEY_LABEL, _LABEL, _SEAL_LABEL

from .conftest import SUPERVISOR, SUPERVISOR_PIN

ADMIT = Decision(Outcome.ADMIT, ())
GATE, GATE_PIN = "李强", "135790"


def _record(store, name: str, id_number: str) -> str:
    row = store.passages.record(
        PassageInput(direction="in", id_kind="resident_id", id_number=id_number, name=name),
        ADMIT,
    )
    return row.id


def _name_enc(store, record_id: str) -> bytes:
    return store.g.scalar("SELECT name_enc FROM passages WHERE id = ?", [record_id])


# -- 5. lock-out race ---------------------------------------------------------------------------


def test_twenty_parallel_wrong_pins_all_count_and_lock_the_operator(store, settings):
    store.keyring.add(store.operator, store.master, GATE, "gate", GATE_PIN)
    attackers = [open_store(settings) for _ in range(20)]  # each its own connection
    barrier = threading.Barrier(len(attackers))
    outcomes: list[str] = []

    def guess(s, i: int) -> None:
        barrier.wait()
        try:
            s.unlock(GATE, f"{900000 + i}")
            outcomes.append("opened")
        except LockedError:
            outcomes.append("locked")
        except AuthError:
            outcomes.append("wrong")

    threads = [threading.Thread(target=guess, args=(s, i)) for i, s in enumerate(attackers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in attackers:
        s.close()
    assert "opened" not in outcomes and len(outcomes) == 20
    row = store.g.query("SELECT failures, locked_until FROM operators WHERE name = ?", [GATE])[0]
    assert row["failures"] == 20
    assert row["locked_until"] > time.time()
    # The right PIN straight after is refused: the operator is locked out.
    with pytest.raises(LockedError):
        open_store(settings).unlock(GATE, GATE_PIN)
    assert len(store.audit.entries(100, "login_failed")) == 20


# -- 4. removing an operator rotates the data key -----------------------------------------------


def test_removed_operator_with_a_copy_of_their_wrap_opens_nothing_written_after(store, settings):
    store.keyring.add(store.operator, store.master, GATE, "gate", GATE_PIN)
    store.keyring.add(store.operator, store.master, "赵六", "patrol", "246813")
    before = _record(store, "张三", "11010519491231002X")
    # The operator-to-be-removed copies the file (their own row) before they go.
    stolen = store.g.query("SELECT * FROM operators WHERE name = ?", [GATE])[0]
    store.keyring.remove(store.operator, GATE)
    after = _record(store, "李四", "110105194912310021")

    gone = store.g.query("SELECT wrapped, sealed, pubkey FROM operators WHERE name = ?", [GATE])[0]
    assert gone["wrapped"] == b"" and gone["sealed"] is None and gone["pubkey"] is None

    # The old PIN on the copied wrap gives the old master secret …
    params = json.loads(stolen["kdf_params"])
    from fieldkit.crypto import FieldCipher, derive_pin_key_argon2id

    kek = derive_pin_key_argon2id(GATE_PIN, stolen["salt"], params["t"], params["m"], params["p"])
    old_master = open_sealed(
        unwrap(kek, stolen["wrapped"], _KEY_LABEL), stolen["sealed"], _SEAL_LABEL
    )
    assert old_master is not None
    old_cipher = FieldCipher(old_master[:32])
    assert old_cipher.decrypt(before, "name", _name_enc(store, before)) == "张三"
    # … which opens nothing written after the removal.
    with pytest.raises(TamperedError):
        old_cipher.decrypt(after, "name", _name_enc(store, after))
    # Nor does the removed name log in any more.
    with pytest.raises(AuthError):
        open_store(settings).unlock(GATE, GATE_PIN)

    # The remaining operators (their PINs unknown to the supervisor) read both epochs.
    other = open_store(settings)
    other.unlock("赵六", "246813")
    assert other.cipher.decrypt(before, "name", _name_enc(other, before)) == "张三"
    assert other.cipher.decrypt(after, "name", _name_enc(other, after)) == "李四"
    assert other.cipher.epoch == 1
    # A second removal: epoch 2, and the first two epochs still read.
    store.keyring.add(store.operator, store.master, "钱七", "gate", "975310")
    store.keyring.remove(store.operator, "钱七")
    third = _record(store, "王五", "11010519491231002X")
    other2 = open_store(settings)
    other2.unlock("赵六", "246813")
    assert other2.cipher.epoch == 2
    assert [
        other2.cipher.decrypt(r, "name", _name_enc(other2, r)) for r in (before, after, third)
    ] == ["张三", "李四", "王五"]
    assert other2.audit.verify()[1] is None


def test_recovery_key_still_opens_every_epoch_after_a_rotation(settings):
    s = open_store(settings, create=True)
    recovery = s.setup(SUPERVISOR, SUPERVISOR_PIN)
    s.keyring.add(s.operator, s.master, GATE, "gate", GATE_PIN)
    before = _record(s, "张三", "11010519491231002X")
    s.keyring.remove(s.operator, GATE)
    after = _record(s, "李四", "110105194912310021")
    s.close()
    r = open_store(settings)
    r.recover(recovery, "新负责人", "864200")
    assert r.cipher.decrypt(before, "name", _name_enc(r, before)) == "张三"
    assert r.cipher.decrypt(after, "name", _name_enc(r, after)) == "李四"


# -- 2. offline PIN guessing ---------------------------------------------------------------------


def test_new_and_reset_pins_need_six_characters_by_default(tmp_path):
    settings = Settings()
    settings.data_dir = tmp_path
    settings.security.argon2_memory_kib = 1024  # the check happens before any key is derived
    s = open_store(settings, create=True)
    with pytest.raises(InputError) as err:
        s.setup(SUPERVISOR, "12345")
    assert "6" in err.value.render("en") and "6" in err.value.render("zh")
    s.setup(SUPERVISOR, "123456")
    with pytest.raises(InputError):
        s.keyring.add(s.operator, s.master, GATE, "gate", "2468")
    s.keyring.add(s.operator, s.master, GATE, "gate", GATE_PIN)
    with pytest.raises(InputError):
        s.keyring.reset_pin(s.operator, s.master, GATE, "97531")


def test_default_kdf_is_argon2id_at_64_mib(tmp_path):
    settings = Settings()
    settings.data_dir = tmp_path
    s = open_store(settings, create=True)
    s.setup(SUPERVISOR, "135790")
    row = s.g.query("SELECT kdf, kdf_params FROM operators")[0]
    assert row["kdf"] == "argon2id"
    assert json.loads(row["kdf_params"]) == {"m": 65536, "p": 4, "t": 2}
    assert s.keyring.protection()["tpm"] in ("none", "off") or tpm.DEVICE.exists()


def _make_legacy(store, name: str, pin: str, n: int = 1024) -> None:
    """Turn one operator's row into what a store made before Argon2id held: the master secret
    wrapped directly under a scrypt key, no key pair."""
    salt = os.urandom(16)
    store.g.db.execute(
        "UPDATE operators SET kdf='scrypt', kdf_params=NULL, pubkey=NULL, sealed=NULL, salt=?,"
        " wrapped=?, scrypt_n=?, scrypt_r=8, scrypt_p=1 WHERE name=?",
        [salt, wrap(derive_pin_key(pin, salt, n), store.master, _LABEL), n, name],
    )


def test_scrypt_wrapped_key_opens_and_is_rewrapped_with_argon2id_at_login(store, settings):
    before = _record(store, "张三", "11010519491231002X")
    _make_legacy(store, SUPERVISOR, SUPERVISOR_PIN)
    s = open_store(settings)
    s.unlock(SUPERVISOR, SUPERVISOR_PIN)
    row = s.g.query("SELECT kdf, kdf_params, pubkey FROM operators WHERE name=?", [SUPERVISOR])[0]
    assert row["kdf"] == "argon2id" and row["pubkey"] is not None
    assert s.cipher.decrypt(before, "name", _name_enc(s, before)) == "张三"
    assert s.audit.entries(5, "pin_rewrap")[0]["detail"] == {"from": "scrypt", "to": "argon2id"}
    s.close()
    again = open_store(settings)
    again.unlock(SUPERVISOR, SUPERVISOR_PIN)  # the new wrap opens
    with pytest.raises(AuthError):
        open_store(settings).unlock(SUPERVISOR, "000000")


def test_legacy_wrap_left_at_a_rotation_must_be_reset_and_says_so(store, settings):
    store.keyring.add(store.operator, store.master, GATE, "gate", GATE_PIN)
    store.keyring.add(store.operator, store.master, "赵六", "patrol", "246813")
    _make_legacy(store, "赵六", "246813")
    store.keyring.remove(store.operator, GATE)
    with pytest.raises(AuthError) as err:
        open_store(settings).unlock("赵六", "246813")
    assert "reset" in err.value.render("en")
    store.keyring.reset_pin(store.operator, store.master, "赵六", "246800")
    open_store(settings).unlock("赵六", "246800")


def test_recovery_wrap_from_before_key_pairs_still_recovers(settings):
    s = open_store(settings, create=True)
    recovery = s.setup(SUPERVISOR, SUPERVISOR_PIN)
    rsalt = os.urandom(16)
    s.g.db.execute(
        "UPDATE recovery SET salt=?, wrapped=?, pubkey=NULL, sealed=NULL",
        [rsalt, wrap(recovery_kek(recovery, rsalt), s.master, _LABEL)],
    )
    rid = _record(s, "张三", "11010519491231002X")
    s.close()
    r = open_store(settings)
    r.recover(recovery, SUPERVISOR, "864200")
    assert r.cipher.decrypt(rid, "name", _name_enc(r, rid)) == "张三"


def test_sealed_key_swapped_between_operators_fails_closed(store, settings):
    store.keyring.add(store.operator, store.master, GATE, "gate", GATE_PIN)
    # An attacker replaces the gate operator's public key and seal with their own: the
    # operator's PIN-wrapped private key no longer matches, so the store refuses.
    store.g.db.execute(
        "UPDATE operators SET sealed = (SELECT sealed FROM operators WHERE name = ?)"
        " WHERE name = ?",
        [SUPERVISOR, GATE],
    )
    with pytest.raises(TamperedError):
        open_store(settings).unlock(GATE, GATE_PIN)


def test_status_says_which_protection_is_active_and_verify_checks_keys_with_a_pin(cli):
    cli.init()
    status = cli.json("status")
    prot = status["protection"]
    assert prot["kdf"] == {"argon2id": 1} and prot["epoch"] == 0
    assert prot["tpm"] == ("none" if not tpm.DEVICE.exists() else prot["tpm"])
    text = cli.run("--lang", "en", "status").stdout
    assert "PIN KDF argon2id" in text and "TPM none on this machine" in text
    assert cli.json("audit", "verify", pin=SUPERVISOR_PIN)["keys_checked"] is True
    assert cli.json("audit", "verify")["keys_checked"] is False


# -- 3. key-person list brute force ---------------------------------------------------------------


def test_key_person_list_is_a_slow_town_salted_hash_and_the_gate_still_finds_people(
    store, tmp_path
):
    from fieldkit.crypto import KEYPERSON_PREFIX, blind_index, keyperson_hash
    from sync.server.keypersons import read_keyperson_file

    town_key = b"t" * 32
    store.secrets.set("town_index_key", town_key)
    wanted = "11010519491231002X"
    sheet = tmp_path / "kp.csv"
    sheet.write_text(f"身份证号,类别\n{wanted},密接\n", encoding="utf-8")
    entries, problems = read_keyperson_file(sheet, town_key)
    assert problems == [] and entries[0]["id_hash"].startswith(KEYPERSON_PREFIX)
    store.keypersons.apply(entries)
    # The attack: the device's town key and a fast keyed hash over candidate IDs (0.75 M/s)
    # no longer finds the person — the list holds only Argon2id hashes.
    listed = {r["id_hash"] for r in store.g.query("SELECT id_hash FROM keypersons")}
    assert blind_index(town_key, wanted) not in listed
    # Another town (another salt) gets another hash for the same person.
    assert keyperson_hash(b"u" * 32, wanted) not in listed
    # The gate, with one slow hash per scan, still finds the person.
    assert store.keypersons.lookup_id(wanted) == "密接"
    assert store.keypersons.lookup_id("110105194912310021") is None
