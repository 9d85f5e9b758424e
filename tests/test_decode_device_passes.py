"""``fieldkit decode`` on a set-up device checks a town pass as the gate does, with the town's
key and the revocations the device holds: a revoked, town-signed pass was reported
"signature_ok": false, "revoked": false — the opposite of the truth (trial of stop 21)."""

import base64
import json
from datetime import UTC, datetime, timedelta

import segno
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from fieldkit.shared.passes import issue_pass
from tests.reports_support import run_cli

PIN = "135790"


def _device_with_town_key(tmp_path, revoked: list[str]) -> Ed25519PrivateKey:
    done = run_cli(
        tmp_path,
        "init",
        "--checkpoint-name",
        "东门卡口",
        "--checkpoint-code",
        "CP-0901",
        "--supervisor",
        "王芳",
        pin=PIN,
    )
    assert done.returncode == 0, done.stderr
    town = Ed25519PrivateKey.generate()
    raw = town.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    from fieldkit.config import load_settings
    from fieldkit.store import open_store

    settings = load_settings(tmp_path / "config.toml")
    settings.data_dir = tmp_path / "home"
    store = open_store(settings)
    store.kv.set("sync.town_ed25519", base64.b64encode(raw).decode())  # as sync stores it
    store.revocations.apply(revoked)
    store.close()
    return town


def _pass_image(tmp_path, town, pass_id: str):
    now = datetime.now(UTC)
    text = issue_pass(
        town,
        pass_id=pass_id,
        subject="3栋-1单元-101",
        holder_name="张伟",
        valid_from=now - timedelta(days=1),
        valid_to=now + timedelta(days=10),
    )
    path = tmp_path / f"{pass_id}.png"
    segno.make(text, error="m").save(str(path), kind="png", scale=6, border=4)
    return path


def _decoded(tmp_path, image) -> dict:
    done = run_cli(tmp_path, "decode", "--json", str(image))
    line = next(x for x in done.stdout.splitlines() if x.startswith("{"))
    return json.loads(line)


def test_a_revoked_town_pass_is_said_signed_and_revoked(tmp_path):
    town = _device_with_town_key(tmp_path, ["P-REVOKED1"])
    got = _decoded(tmp_path, _pass_image(tmp_path, town, "P-REVOKED1"))
    code = got["codes"][0] if "codes" in got else got
    parsed = code["parsed"]
    assert parsed["signature_ok"] is True and parsed["revoked"] is True
    assert not code["ok"]


def test_a_good_town_pass_is_valid(tmp_path):
    town = _device_with_town_key(tmp_path, [])
    got = _decoded(tmp_path, _pass_image(tmp_path, town, "P-GOOD0001"))
    code = got["codes"][0] if "codes" in got else got
    assert code["ok"] and code["parsed"]["signature_ok"] is True
