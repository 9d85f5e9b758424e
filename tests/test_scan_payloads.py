"""Payload parsers: signed passes, EU DCC (real test data), health codes, resident IDs."""

from __future__ import annotations

import base64
import json
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.dcc_conformance import parse_clock
from scanners.payloads import HealthCodePattern, PayloadConfig, parse_payload
from scanners.payloads.base45 import Base45Error, b45decode, b45encode
from scanners.payloads.dcc import TrustList, decode_dcc
from scanners.payloads.passes import issue_pass, verify_pass

DCC = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "dcc"
needs_dcc = pytest.mark.skipif(not DCC.is_dir(), reason="shared corpus absent")
NOW = datetime(2022, 4, 10, 12, 0, tzinfo=UTC)
KEY = Ed25519PrivateKey.generate()


def make_pass(**overrides) -> str:
    fields = {
        "pass_id": "P-0001",
        "subject": "3-2-501",
        "holder_name": "张三",
        "valid_from": NOW - timedelta(days=1),
        "valid_to": NOW + timedelta(days=30),
    }
    fields.update(overrides)
    return issue_pass(KEY, **fields)


# -- base45 ------------------------------------------------------------------------------
def test_base45_rfc_vectors():
    assert b45encode(b"AB") == "BB8"
    assert b45encode(b"Hello!!") == "%69 VD92EX0"
    assert b45encode(b"base-45") == "UJCLQE7W581"
    assert b45decode("QED8WEX0") == b"ietf!"
    for bad in ("GGW", "A", "aa!", "ZZZ"):
        with pytest.raises(Base45Error):
            b45decode(bad)


# -- signed passes -----------------------------------------------------------------------
def test_pass_round_trip_both_encodings():
    for encoding in ("base45", "base64url"):
        text = make_pass(encoding=encoding)
        assert text.startswith("FK1:" if encoding == "base45" else "FK1.")
        result = verify_pass(text, KEY.public_key(), set(), NOW)
        assert result.ok and result.problem is None and result.signature_ok
        assert result.holder == "张*" and result.subject == "3-2-501"
        assert result.directions == ("in", "out")


def test_pass_is_compact():
    assert len(make_pass()) < 200  # fits a small QR


def test_pass_rejections_say_why():
    text = make_pass()
    other = Ed25519PrivateKey.generate().public_key()
    assert "wrong signature" in verify_pass(text, other, set(), NOW).problem
    revoked = verify_pass(text, KEY.public_key(), {"P-0001"}, NOW)
    assert not revoked.ok and revoked.revoked and "revoked" in revoked.problem
    assert "expired" in verify_pass(text, KEY.public_key(), set(), NOW + timedelta(days=60)).problem
    assert (
        "not valid yet"
        in verify_pass(text, KEY.public_key(), set(), NOW - timedelta(days=5)).problem
    )
    in_only = make_pass(directions=("in",))
    assert (
        "does not allow going out"
        in verify_pass(in_only, KEY.public_key(), set(), NOW, "out").problem
    )
    assert verify_pass(in_only, KEY.public_key(), set(), NOW, "in").ok
    assert "no town public key" in verify_pass(text, [], set(), NOW).problem


def test_tampered_pass_fails_signature():
    text = make_pass(encoding="base64url")
    body = bytearray(base64.urlsafe_b64decode(text[4:] + "=" * (-len(text[4:]) % 4)))
    body[10] ^= 1
    tampered = "FK1." + base64.urlsafe_b64encode(bytes(body)).rstrip(b"=").decode()
    result = verify_pass(tampered, KEY.public_key(), set(), NOW)
    assert not result.ok and result.problem


def test_key_rotation_accepts_any_town_key():
    old = Ed25519PrivateKey.generate()
    assert verify_pass(make_pass(), [old.public_key(), KEY.public_key()], set(), NOW).ok


def test_issue_pass_refuses_bad_input():
    with pytest.raises(ValueError):
        make_pass(valid_to=NOW - timedelta(days=3))
    with pytest.raises(ValueError):
        make_pass(directions=("sideways",))


def test_parse_payload_recognises_pass():
    config = PayloadConfig(
        pass_public_keys=(KEY.public_key(),), revoked_passes=frozenset({"P-9"}), clock=lambda: NOW
    )
    good = parse_payload(make_pass(), config)
    assert good.kind == "pass" and good.ok and good.parsed["pass_id"] == "P-0001"
    bad = parse_payload(make_pass(pass_id="P-9"), config)
    assert bad.kind == "pass" and not bad.ok and "revoked" in bad.problem


# -- EU DCC ----------------------------------------------------------------------------------
def case(name: str) -> dict:
    return json.loads((DCC / name).read_text(encoding="utf-8"))


def run_case(name: str, trust: TrustList | None = None):
    c = case(name)
    trust = trust or TrustList.from_der_base64(c["TESTCTX"]["CERTIFICATE"])
    return decode_dcc(c["PREFIX"], trust, parse_clock(c["TESTCTX"]["VALIDATIONCLOCK"]))


@needs_dcc
def test_dcc_valid_certificate_verifies():
    result = run_case("common/2DCode/raw/CO3.json")
    assert result.ok and result.problem is None and result.alg == "ES256"
    assert result.certificate["ver"] and result.steps["verify"]
    rsa = run_case("common/2DCode/raw/CO1.json")
    assert rsa.ok and rsa.alg == "PS256"


@needs_dcc
def test_dcc_cwt_tag_61_unwrapped():
    assert run_case("common/2DCode/raw/CO28.json").steps.get("verify")


@needs_dcc
def test_dcc_failures_reported_as_such():
    assert "wrong signature" in run_case("common/2DCode/raw/CO5.json").problem
    assert "unknown signer" in run_case("common/2DCode/raw/CO22.json").problem  # wrong kid
    assert "expired" in run_case("common/2DCode/raw/CO17.json").problem
    assert "not valid yet" in run_case("common/2DCode/raw/CO16.json").problem
    assert "not zlib" in run_case("common/2DCode/raw/Z2.json").problem
    assert "may only sign" in run_case("common/2DCode/raw/CO8.json").problem
    assert "HC1:" in decode_dcc(case("common/2DCode/raw/H2.json")["PREFIX"]).problem
    stranger = TrustList.from_der_base64(
        case("common/2DCode/raw/CO1.json")["TESTCTX"]["CERTIFICATE"]
    )
    assert "unknown signer" in run_case("common/2DCode/raw/CO3.json", stranger).problem


def test_dcc_zlib_bomb_refused():
    bomb = zlib.compress(b"\0" * 2_000_000, 9)  # ~2 KiB: fits a QR code
    result = decode_dcc("HC1:" + b45encode(bomb))
    assert not result.ok and "bomb" in result.problem and result.steps["decompress"] is False


def test_dcc_junk_inside_is_invalid_not_an_error():
    for payload in (
        b"\x00",
        cbor2.dumps([1, 2, 3]),
        cbor2.dumps(cbor2.CBORTag(18, [b"", {}, b"x", b""])),
    ):
        result = decode_dcc("HC1:" + b45encode(zlib.compress(payload)))
        assert not result.ok and result.problem


@needs_dcc
def test_parse_payload_dcc_with_trust_list():
    c = case("common/2DCode/raw/CO3.json")
    config = PayloadConfig(
        dcc_trust=TrustList.from_der_base64(c["TESTCTX"]["CERTIFICATE"]),
        clock=lambda: parse_clock(c["TESTCTX"]["VALIDATIONCLOCK"]),
    )
    result = parse_payload(c["PREFIX"], config)
    assert result.kind == "dcc" and result.ok and result.parsed["type"] in "vtr"


# The conformance run over the whole corpus (every EXPECTED* flag) is in test_scan_dcc_schema.py.


# -- health codes, IDs, unknown -------------------------------------------------------------
def test_health_code_patterns_from_config():
    config = PayloadConfig(
        health_code_patterns=(
            HealthCodePattern(
                "粤康码", r"^https://yuekang\.example\.cn/q\?t=(?P<token>[A-Za-z0-9]+)"
            ),
        )
    )
    result = parse_payload("https://yuekang.example.cn/q?t=AbC123xyz", config)
    assert result.kind == "health_code" and result.ok
    assert result.parsed == {
        "system": "粤康码",
        "token": "AbC123xyz",
        "url": "https://yuekang.example.cn/q?t=AbC123xyz",
        "resident_id": None,
    }
    with pytest.raises(ValueError, match="token"):
        _ = HealthCodePattern("bad", r"no group").regex


def test_health_code_default_pattern_and_masked_id():
    text = "https://hc.example.gov.cn/jkm/show?code=Zx81kL0p&id=11010519491231002X"
    result = parse_payload(text)
    assert result.kind == "health_code" and result.parsed["resident_id"] == "110105********002X"


def test_resident_id_alone_and_in_text():
    alone = parse_payload("11010519491231002X")
    assert alone.kind == "resident_id" and alone.ok and alone.parsed["sex"] == "F"
    wrong = parse_payload("110105194912310029")
    assert wrong.kind == "resident_id" and not wrong.ok and "check digit" in wrong.problem
    inside = parse_payload("姓名:张三 身份证:11010519491231002X 电话")
    assert inside.kind == "resident_id" and inside.parsed["embedded_in_text"]
    legacy = parse_payload("110105491231002")
    assert legacy.kind == "resident_id" and legacy.parsed["upgraded_from"] == "110105491231002"


def test_unknown_text_kept_as_is():
    result = parse_payload("  WIFI:S:gate;T:WPA;P:x;;  ")
    assert result.kind == "unknown" and not result.ok
    assert result.parsed["text"] == "  WIFI:S:gate;T:WPA;P:x;;  "
    assert parse_payload(b"\x00\x01binary").problem == "binary payload, not text"


def test_dcc_base45_by_the_package_agrees_with_the_strict_decoder_and_says_why():
    import random

    from fieldkit.shared.base45 import explain as strict
    from scanners.payloads.dcc import b45decode as dcc_b45decode

    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:a\n"
    rnd = random.Random(7)
    for _ in range(20_000):
        text = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 9)))
        try:
            want = strict(text)
        except Base45Error:
            want = None
        try:
            got = dcc_b45decode(text)
        except Base45Error:
            got = None
        assert got == want, repr(text)
    for _ in range(2_000):  # the package's encoder, back through both decoders
        data = rnd.randbytes(rnd.randint(0, 40))
        assert strict(b45encode(data)) == dcc_b45decode(b45encode(data)) == data
    with pytest.raises(Base45Error, match="not in the base45 alphabet"):
        dcc_b45decode("AB!")
    with pytest.raises(Base45Error, match="impossible"):
        dcc_b45decode("ABCD")
