"""Parsers fuzzed with hypothesis: no exception escapes, every result says why it is invalid.

Inputs are shaped to get past the first checks (right prefix, valid base45, valid zlib, CBOR
that looks like a COSE message or a pass), so the deep parts are exercised too.
"""

from __future__ import annotations

import zlib
from datetime import UTC, datetime

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scanners.engines import decode_payload_bytes
from scanners.payloads import PayloadConfig, parse_payload
from scanners.payloads.base45 import Base45Error, b45decode, b45encode
from scanners.payloads.dcc import decode_dcc
from scanners.payloads.healthcode import match_health_code
from scanners.payloads.passes import verify_pass

pytestmark = pytest.mark.slow
FUZZ = settings(
    max_examples=10_000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
NOW = datetime(2022, 1, 1, tzinfo=UTC)
KEY = Ed25519PrivateKey.generate().public_key()

cbor_leaf = st.one_of(
    st.integers(-(2**40), 2**40),
    st.text(max_size=20),
    st.binary(max_size=40),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False),
)
cbor_value = st.recursive(
    cbor_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.one_of(st.integers(-300, 10), st.text(max_size=3)), inner, max_size=5),
    ),
    max_leaves=5,
)
cose_like = st.builds(
    lambda tag, prot, unprot, payload, sig: cbor2.dumps(
        cbor2.CBORTag(tag, [cbor2.dumps(prot), unprot, cbor2.dumps(payload), sig])
    ),
    st.sampled_from([18, 61, 99]),
    st.dictionaries(
        st.sampled_from([1, 4]), st.one_of(st.sampled_from([-7, -37]), st.binary(max_size=8))
    ),
    st.dictionaries(st.sampled_from([1, 4]), st.binary(max_size=8)),
    st.one_of(
        cbor_value,
        st.fixed_dictionaries(
            {-260: st.fixed_dictionaries({1: cbor_value}), 4: st.integers(), 6: st.integers()}
        ),
    ),
    st.binary(max_size=70),
)
dcc_text = st.one_of(
    st.text(max_size=300),
    st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:", max_size=300).map(
        "HC1:".__add__
    ),
    st.binary(max_size=200).map(lambda b: "HC1:" + b45encode(b)),
    st.binary(max_size=200).map(lambda b: "HC1:" + b45encode(zlib.compress(b))),
    cose_like.map(lambda b: "HC1:" + b45encode(zlib.compress(b))),
)
pass_text = st.one_of(
    st.text(max_size=300),
    st.binary(max_size=200).map(lambda b: "FK1:" + b45encode(b)),
    st.text(max_size=200).map("FK1.".__add__),
    st.builds(
        lambda fields, sig: "FK1:" + b45encode(cbor2.dumps(fields) + sig),
        st.one_of(
            cbor_value,
            st.tuples(
                st.just(1),
                st.text(max_size=8),
                st.sampled_from(["household", "vehicle"]),
                st.text(max_size=8),
                st.text(max_size=4),
                st.integers(-5, 2**41),
                st.integers(-5, 2**41),
                st.integers(-1, 5),
            ).map(list),
        ),
        st.binary(min_size=64, max_size=64),
    ),
)


def assert_invalid_with_reason(ok: bool, problem: str | None) -> None:
    assert ok is False
    assert isinstance(problem, str) and problem.strip()


@FUZZ
@given(dcc_text)
def test_fuzz_dcc(text):
    result = decode_dcc(text, now=NOW)
    assert_invalid_with_reason(result.ok, result.problem)


@FUZZ
@given(pass_text)
def test_fuzz_pass(text):
    result = verify_pass(text, KEY, {"x"}, NOW)
    assert_invalid_with_reason(result.ok, result.problem)


@FUZZ
@given(
    st.one_of(
        st.text(max_size=400),
        st.binary(max_size=100),
        st.binary(max_size=150).map(lambda b: "HC1:" + b45encode(zlib.compress(b))),
        st.binary(min_size=60, max_size=150).map(lambda b: "FK1:" + b45encode(b)),
        st.text(max_size=60).map("https://hc.example.cn/jkm/x?code=".__add__),
        st.from_regex(r"[1-9]\d{16}[\dX]", fullmatch=True),
    )
)
def test_fuzz_parse_payload(payload):
    result = parse_payload(payload, PayloadConfig(pass_public_keys=(KEY,), clock=lambda: NOW))
    assert result.kind in ("resident_id", "pass", "dcc", "health_code", "unknown")
    if result.kind not in ("health_code", "resident_id"):  # random text can hold a real ID
        assert_invalid_with_reason(result.ok, result.problem)
    assert isinstance(result.parsed, dict)


@settings(max_examples=2_000, deadline=None, database=None)  # a helper, not a parser: lighter
@given(st.text(max_size=300))
def test_fuzz_base45(text):
    try:
        b45decode(text)
    except Base45Error as exc:
        assert str(exc)


@FUZZ
@given(
    st.one_of(
        st.text(max_size=300), st.text(max_size=200).map("https://hc.example.cn/jkm?code=".__add__)
    )
)
def test_fuzz_health_code(text):
    match = match_health_code(text)
    assert match is None or match.token


@settings(max_examples=2_000, deadline=None, database=None)
@given(st.binary(max_size=300))
def test_fuzz_payload_bytes(raw):
    text, encoding = decode_payload_bytes(raw)
    assert (text is None) == (encoding == "binary")
