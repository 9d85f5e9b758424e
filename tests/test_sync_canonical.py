"""Canonical JSON: the fast encoder (orjson) writes exactly the standard library's bytes.

Content hashes are taken over these bytes on the device, and a record sent again (after a cut
connection, perhaps by a newer FieldKit) must hash the same or the server calls it a conflict.
"""

from __future__ import annotations

import enum
import json
from datetime import UTC, date, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from sync.protocol import canonical_json, loads


def stdlib(value) -> bytes:
    return json.dumps(
        value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str
    ).encode()


texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | texts
    | st.floats(allow_nan=False, allow_infinity=False)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(texts, inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=3000, deadline=None)
@given(values)
def test_same_bytes_as_the_standard_library(value) -> None:
    assert canonical_json(value) == stdlib(value)


@settings(max_examples=2000, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_finite_float_prints_as_python_prints_it(value) -> None:
    assert canonical_json({"t": value}) == stdlib({"t": value})


class Colour(enum.StrEnum):
    GREEN = "green"


def test_values_orjson_would_write_its_own_way() -> None:
    cases = [
        {"t": 1e-05},
        {"t": 9.999999999999999e-05},
        {"t": -3.9e-8},
        {"t": 1e16},
        {"t": 1.5e300},
        {"n": 2**64},
        {"n": -(2**63) - 1},
        {"n": 2**64 - 1},
        {"d": date(2026, 12, 1)},
        {"d": datetime(2026, 12, 1, 8, 30, tzinfo=UTC)},
        {"c": Colour.GREEN},
        {"tuple": (1, "a")},
        {"s": "e-mail e+ 0.0000"},
        {"控制": '\x00\x1f\x7f\u2028 "\\ 张三'},
        {"deep": [[[[{"x": [0.1, 2.5e-7]}]]]]},
    ]
    for value in cases:
        assert canonical_json(value) == stdlib(value), value


def test_loads_accepts_what_the_standard_library_accepts() -> None:
    assert loads(b'{"a":[1,2.5,"x"]}') == {"a": [1, 2.5, "x"]}
    value = loads(b'{"t":NaN}')["t"]
    assert value != value  # NaN: orjson refuses it, the standard library reads it
