"""Canonical JSON: the same object always gives the same bytes (content hashes, signatures).

The device's store hashes records over these bytes and the town server checks the hash, so
both import this module (the wire format, ``sync.protocol``, re-exports it).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_STDLIB_CANONICAL = json.JSONEncoder(
    ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str
)
_ORJSON_OPTIONS = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def _floats_print_alike(container: Any) -> bool:
    """True when every float inside prints the same in orjson and in ``repr``: they differ
    only below 1e-4 (where Python switches to an exponent) and for NaN and infinities."""
    for value in container.values() if container.__class__ is dict else container:
        cls = value.__class__
        if cls is float:
            if not (value == 0.0 or 1e-4 <= abs(value) < 1e16):
                return False
        elif (cls is dict or cls is list or cls is tuple) and not _floats_print_alike(value):
            return False
    return True


def _not_native(value: Any) -> Any:
    raise TypeError  # orjson would render it its own way: the standard library decides


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8: the same object always gives the same bytes.

    The bytes are the standard library's (``json``, ``sort_keys``, compact separators,
    ``ensure_ascii=False``, ``default=str``): content hashes are taken over them and must not
    change between versions. orjson writes the very same bytes for plain JSON values, several
    times faster. What it would write differently goes to the standard library: a subclass, a
    date or other non-JSON type, an integer beyond 64 bits, a non-text key (orjson is told to
    refuse them), and a float that Python prints with an exponent (below 1e-4), NaN or an
    infinity (found by :func:`_floats_print_alike`). Plain ``Enum`` members are not covered
    (orjson writes their value; no record holds one). A property test holds the two to the
    same bytes.
    """
    if (obj.__class__ is dict or obj.__class__ is list) and _floats_print_alike(obj):
        try:
            return orjson.dumps(obj, default=_not_native, option=_ORJSON_OPTIONS)
        except TypeError:
            pass
    return _STDLIB_CANONICAL.encode(obj).encode()


def loads(data: bytes | str) -> Any:
    """orjson, and the standard library for what orjson refuses but it reads (NaN), so that
    what the standard library accepts is accepted. (orjson reads an integer beyond 64 bits as
    a float; no field the server reads is such a number.)"""
    try:
        return orjson.loads(data)
    except ValueError:
        return json.loads(data)
