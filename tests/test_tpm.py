"""TPM 2.0 sealing (issue 14, item 2): a device secret sealed to the machine's TPM is mixed into
every PIN key, so a copy of the store opens nothing elsewhere, whatever the PIN.

The TPM is real: a software TPM 2.0 (``swtpm``, the libtpms reference implementation) started
per test, spoken to through the same TSS stack and TCTI a laptop's ``/dev/tpmrm0`` uses. The
tests skip (with the reason) where swtpm or tpm2-pytss is missing; ``FIELDKIT_REQUIRE_TPM=1``
(CI) makes that a failure instead.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from textual.widgets import Input, Static

from fieldkit.crypto import derive_pin_key_argon2id, unwrap
from fieldkit.errors import AuthError
from fieldkit.store import open_store, tpm
from fieldkit.store.keyring import _KEY_LABEL
from fieldkit.ui.app import make_app
from fieldkit.ui.login import LoginScreen
from fieldkit.ui.registry import screen_entries

from .conftest import SUPERVISOR, SUPERVISOR_PIN, make_settings
from .swtpm import SoftTpm, why_no_tpm

GATE, GATE_PIN = "李强", "135790"


def _require_tpm() -> None:
    why = why_no_tpm()
    if why:
        if os.environ.get("FIELDKIT_REQUIRE_TPM") == "1":
            pytest.fail(f"a software TPM is required (FIELDKIT_REQUIRE_TPM=1): {why}")
        pytest.skip(why)


@pytest.fixture
def tpms(tmp_path):
    """Start software TPMs on demand: ``tpms("laptop")``; all stopped at the end."""
    _require_tpm()
    started: list[SoftTpm] = []

    def start(name: str) -> SoftTpm:
        t = SoftTpm(tmp_path / "tpm" / name).start()
        started.append(t)
        return t

    yield start
    for t in started:
        t.stop()


@pytest.fixture
def no_tpm(monkeypatch, tmp_path):
    """This machine has no TPM (whatever the machine running the tests has)."""
    monkeypatch.delenv("FIELDKIT_TPM_TCTI", raising=False)
    monkeypatch.delenv("TPM2TOOLS_TCTI", raising=False)
    monkeypatch.delenv("FIELDKIT_TPM", raising=False)
    monkeypatch.setattr(tpm, "DEVICE", tmp_path / "no-tpmrm0")


def _use(monkeypatch, t: SoftTpm | None) -> None:
    if t is None:
        monkeypatch.delenv("FIELDKIT_TPM_TCTI", raising=False)
    else:
        monkeypatch.setenv("FIELDKIT_TPM_TCTI", t.tcti)


def _new_store(path: Path, with_gate: bool = False):
    s = open_store(make_settings(path), create=True)
    recovery = s.setup(
        SUPERVISOR, SUPERVISOR_PIN, checkpoint_name="东门卡口", checkpoint_code="CP-1"
    )
    if with_gate:
        s.keyring.add(s.operator, s.master, GATE, "gate", GATE_PIN)
    s.close()
    return recovery


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _failures(path: Path, name: str) -> int:
    s = open_store(make_settings(path))
    try:
        return s.g.scalar("SELECT failures FROM operators WHERE name = ?", [name])
    finally:
        s.close()


def _unlock(path: Path, name: str = SUPERVISOR, pin: str = SUPERVISOR_PIN):
    s = open_store(make_settings(path))
    try:
        s.unlock(name, pin)
        return s.keyring.protection()
    finally:
        s.close()


# -- sealing at set-up; the right PIN on the right TPM opens ------------------------------------


def test_init_seals_a_device_secret_and_the_right_pin_on_the_same_tpm_opens(
    tmp_path, tpms, no_tpm, monkeypatch
):
    laptop = tpms("laptop")
    _use(monkeypatch, laptop)
    data = tmp_path / "data"
    _new_store(data, with_gate=True)
    s = open_store(make_settings(data))
    seal = json.loads(s.g.scalar("SELECT value FROM fieldkit_meta WHERE key = 'tpm_seal'"))
    params = [json.loads(r["kdf_params"]) for r in s.g.query("SELECT kdf_params FROM operators")]
    s.close()
    assert all(p["tpm"] == seal["id"] for p in params) and len(params) == 2
    prot = _unlock(data)
    assert prot["tpm"] == "active" and prot["kdf"] == {"argon2id+tpm": 2}
    assert _unlock(data, GATE, GATE_PIN)["tpm"] == "active"
    # The same TPM after a restart (state kept on "disk", as a laptop's TPM keeps its seeds).
    laptop.stop()
    laptop.start()
    _use(monkeypatch, laptop)
    assert _unlock(data)["tpm"] == "active"


# -- the attack: the store file copied to another machine, or the TPM cleared ----------------------


def test_a_copy_opened_on_another_machines_tpm_is_refused_even_with_the_right_pin(
    tmp_path, tpms, no_tpm, monkeypatch
):
    laptop, thief = tpms("laptop"), tpms("thief")
    _use(monkeypatch, laptop)
    _new_store(tmp_path / "data", with_gate=True)
    stolen = _copy(tmp_path / "data", tmp_path / "stolen")
    _use(monkeypatch, thief)
    for name, pin in ((SUPERVISOR, SUPERVISOR_PIN), (GATE, GATE_PIN)):
        with pytest.raises(AuthError) as err:
            _unlock(stolen, name, pin)
        assert err.value.code == "tpm.err.foreign"
        assert "another device's TPM" in err.value.render("en")
        assert "另一台设备的 TPM" in err.value.render("zh")
        assert _failures(stolen, name) == 0  # not a wrong PIN: nothing to count, no lock-out
    # On a machine with no TPM at all: the same refusal.
    _use(monkeypatch, None)
    with pytest.raises(AuthError) as err:
        _unlock(stolen)
    assert err.value.code == "tpm.err.foreign"
    # The original still opens on its own TPM.
    _use(monkeypatch, laptop)
    assert _unlock(tmp_path / "data")["tpm"] == "active"


def test_the_copy_cannot_be_opened_by_stripping_the_tpm_flag_the_secret_is_in_the_key(
    tmp_path, tpms, no_tpm, monkeypatch
):
    """The thief edits the copy so FieldKit derives the PIN key without the TPM, or derives
    it themselves: the right PIN still opens nothing (a wrong-PIN result)."""
    _use(monkeypatch, tpms("laptop"))
    _new_store(tmp_path / "data")
    stolen = _copy(tmp_path / "data", tmp_path / "stolen")
    _use(monkeypatch, None)
    s = open_store(make_settings(stolen))
    row = s.g.query("SELECT salt, wrapped, kdf_params FROM operators")[0]
    params = json.loads(row["kdf_params"])
    kek = derive_pin_key_argon2id(
        SUPERVISOR_PIN, row["salt"], params["t"], params["m"], params["p"]
    )
    assert unwrap(kek, row["wrapped"], _KEY_LABEL) is None
    del params["tpm"]
    s.g.db.execute("UPDATE operators SET kdf_params = ?", [json.dumps(params)])
    s.g.db.execute("DELETE FROM fieldkit_meta WHERE key = 'tpm_seal'")
    with pytest.raises(AuthError) as err:
        s.unlock(SUPERVISOR, SUPERVISOR_PIN)
    assert err.value.code == "err.wrong_pin"
    s.close()


def test_after_the_tpm_is_cleared_the_right_pin_is_refused_and_the_recovery_key_moves_the_store(
    tmp_path, tpms, no_tpm, monkeypatch
):
    laptop = tpms("laptop")
    _use(monkeypatch, laptop)
    data = tmp_path / "data"
    recovery = _new_store(data, with_gate=True)
    laptop.clear()
    with pytest.raises(AuthError) as err:
        _unlock(data)
    assert err.value.code == "tpm.err.foreign"
    assert _failures(data, SUPERVISOR) == 0
    # The printed recovery key seals a new secret to the TPM as it is now.
    s = open_store(make_settings(data))
    s.recover(recovery, SUPERVISOR, "975310")
    assert s.audit.entries(5, "recovery")[0]["detail"]["tpm"] is True
    s.close()
    assert _unlock(data, SUPERVISOR, "975310")["tpm"] == "active"
    # The gate operator's PIN was bound to the old seal: one clear line, not a wrong PIN.
    with pytest.raises(AuthError) as err:
        _unlock(data, GATE, GATE_PIN)
    assert err.value.code == "tpm.err.resealed" and _failures(data, GATE) == 0
    s = open_store(make_settings(data))
    s.unlock(SUPERVISOR, "975310")
    s.keyring.reset_pin(s.operator, s.master, GATE, "864200")
    s.close()
    assert _unlock(data, GATE, "864200")["kdf"] == {"argon2id+tpm": 2}


def test_a_tpm_that_does_not_answer_is_one_clear_line_and_no_wrong_pin(
    tmp_path, tpms, no_tpm, monkeypatch
):
    laptop = tpms("laptop")
    _use(monkeypatch, laptop)
    data = tmp_path / "data"
    _new_store(data)
    laptop.stop()
    with pytest.raises(AuthError) as err:
        _unlock(data)
    assert err.value.code == "tpm.err.unreachable" and _failures(data, SUPERVISOR) == 0
    assert "TPM" in err.value.render("zh") and "\n" not in err.value.render("zh")
    s = open_store(make_settings(data))
    state = s.keyring.protection()["tpm"]
    s.close()
    assert state.startswith("unavailable: ")
    assert "无法使用" not in state and "cannot be used" not in state  # the reason, not a sentence


# -- the command line: what a user (or a thief) sees -----------------------------------------------


def _cli_init(cli, env: dict[str, str]):
    return cli.run(
        "init",
        "--checkpoint-name",
        "东门卡口",
        "--checkpoint-code",
        "CP-0101",
        "--supervisor",
        SUPERVISOR,
        pin=SUPERVISOR_PIN,
        env=env,
    )


def test_cli_init_on_a_tpm_status_and_a_stolen_copy_refused_in_one_line(cli, tpms, tmp_path):
    laptop, thief = tpms("laptop"), tpms("thief")
    on_laptop = {"FIELDKIT_TPM_TCTI": laptop.tcti}
    out = _cli_init(cli, on_laptop).stdout
    assert "keys sealed to this machine's TPM" in out
    prot = cli.json("status", env=on_laptop)["protection"]
    assert prot["tpm"] == "active" and prot["kdf"] == {"argon2id+tpm": 1} and prot["epoch"] == 0
    text = cli.run("status", env=on_laptop).stdout
    assert "TPM active (the file alone opens nothing)" in text
    assert "argon2id+tpm" in text and "epoch 0" in text
    assert cli.json("audit", "verify", pin=SUPERVISOR_PIN, env=on_laptop)["keys_checked"]

    # The thief copies the whole data directory and runs FieldKit on their own machine.
    shutil.copytree(cli.home, tmp_path / "thief-home")
    for lang, words in (("en", "another device's TPM"), ("zh", "另一台设备的 TPM")):
        env = {
            "FIELDKIT_HOME": str(tmp_path / "thief-home"),
            "FIELDKIT_TPM_TCTI": thief.tcti,
            "FIELDKIT_LANG": lang,
        }
        proc = cli.run("audit", "verify", pin=SUPERVISOR_PIN, env=env, check=False)
        assert proc.returncode != 0 and "Traceback" not in proc.stderr + proc.stdout
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0], proc.stderr
        status = cli.run("status", env=env).stdout
        assert ("no PIN opens this copy" if lang == "en" else "任何 PIN 都打不开") in status


# -- machines without a TPM keep working as before -------------------------------------------------


def test_without_a_tpm_nothing_is_sealed_and_status_says_none(tmp_path, no_tpm):
    data = tmp_path / "data"
    _new_store(data, with_gate=True)
    s = open_store(make_settings(data))
    assert s.g.scalar("SELECT value FROM fieldkit_meta WHERE key = 'tpm_seal'") is None
    assert all(
        "tpm" not in json.loads(r[0]) for r in s.g.db.execute("SELECT kdf_params FROM operators")
    )
    s.close()
    prot = _unlock(data, GATE, GATE_PIN)
    assert prot["tpm"] == "none" and prot["kdf"] == {"argon2id": 2}


def test_fieldkit_tpm_off_leaves_a_new_store_unsealed(tmp_path, tpms, no_tpm, monkeypatch):
    _use(monkeypatch, tpms("laptop"))
    monkeypatch.setenv("FIELDKIT_TPM", "off")
    _new_store(tmp_path / "data")
    assert _unlock(tmp_path / "data") == {
        "kdf": {"argon2id": 1},
        "epoch": 0,
        "tpm": "off",
        "min_pin_length": 4,
    }


def test_a_store_made_without_a_tpm_is_sealed_at_the_next_login_on_a_machine_with_one(
    tmp_path, tpms, no_tpm, monkeypatch
):
    data = tmp_path / "data"
    _new_store(data, with_gate=True)
    _use(monkeypatch, tpms("laptop"))
    s = open_store(make_settings(data))
    assert s.keyring.protection()["tpm"] == "ready"
    s.close()
    # The supervisor logs in: the store is sealed, their wrap mixes the secret in; the gate
    # operator's wrap follows at their own next login.
    assert _unlock(data)["kdf"] == {"argon2id+tpm": 1, "argon2id": 1}
    prot = _unlock(data, GATE, GATE_PIN)
    assert prot["kdf"] == {"argon2id+tpm": 2} and prot["tpm"] == "active"
    s = open_store(make_settings(data))
    rewraps = [e["detail"] for e in s.audit.entries(20, "pin_rewrap")]
    s.close()
    assert rewraps == [{"from": "argon2id", "to": "argon2id+tpm"}] * 2
    stolen = _copy(data, tmp_path / "stolen")
    _use(monkeypatch, None)
    with pytest.raises(AuthError):
        _unlock(stolen)


def test_cli_init_where_the_tpm_does_not_answer_sets_up_on_the_pin_alone_and_says_so(cli, tpms):
    dead = tpms("dead")
    dead.stop()
    env = {"FIELDKIT_TPM_TCTI": dead.tcti}
    out = _cli_init(cli, env).stdout
    assert "TPM cannot be used" in out and "PIN alone" in out
    prot = cli.json("status", env=env)["protection"]
    assert prot["tpm"].startswith("unavailable") and prot["kdf"] == {"argon2id": 1}
    assert cli.json("audit", "verify", pin=SUPERVISOR_PIN, env=env)["keys_checked"]


def test_cli_init_without_a_tpm_says_nothing_about_it(cli, tmp_path):
    env = {"FIELDKIT_TPM_TCTI": "", "TPM2TOOLS_TCTI": ""}
    if tpm.DEVICE.exists():
        pytest.skip("this machine has a TPM at /dev/tpmrm0")
    out = _cli_init(cli, env).stdout
    assert "TPM" not in out
    assert cli.json("status", env=env)["protection"]["tpm"] == "none"


# -- the app: the login screen says why, not "wrong PIN" -------------------------------------------


@pytest.mark.parametrize(
    "lang, words", [("zh", "另一台设备的 TPM"), ("en", "another device's TPM")]
)
async def test_login_on_a_copy_under_another_tpm_says_why_not_wrong_pin(
    tmp_path,
    tpms,
    no_tpm,
    monkeypatch,
    lang,
    words,  # noqa: F811
):
    laptop, thief = tpms("laptop"), tpms("thief")
    monkeypatch.setenv("FIELDKIT_TPM_TCTI", laptop.tcti)
    s = open_store(make_settings(tmp_path / "data"), create=True)
    s.setup(SUPERVISOR, SUPERVISOR_PIN, checkpoint_name="东门卡口", checkpoint_code="CP-0101")
    s.close()
    shutil.copytree(tmp_path / "data", tmp_path / "stolen")
    monkeypatch.setenv("FIELDKIT_TPM_TCTI", thief.tcti)
    settings = make_settings(tmp_path / "stolen")
    settings.ui.language = lang
    store = open_store(settings)
    app = make_app(settings, store, entries=screen_entries(("fieldkit.ui.gate",)))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, LoginScreen)
        screen.query_one("#login-operator", Input).value = SUPERVISOR
        screen.query_one("#login-pin", Input).focus()
        await pilot.press(*SUPERVISOR_PIN, "enter")
        from tests.test_ui_app import settle

        await settle(pilot)
        message = str(app.screen.query_one("#login-message", Static).render())
        assert words in message, message
        assert not store.is_unlocked
    assert store.keyring.get(SUPERVISOR).failures == 0
    store.close()
