"""DCC validation with ``jsonschema`` against the published schema files in ``dcc_schemas/``.

One file per release (``dcc_schemas/<release>/DCC.combined-schema.json``, sources and sha256 in
``dcc_schemas/README.md``). A certificate is validated against the latest patch release of
its generation: 1.0.x against 1.0.1 (the fix release that gave ``tt`` its test-type value set,
which 1.0.0 forgot), 1.1.x against 1.1.0, 1.2.x against 1.2.1, and 1.3.x, later or unreadable
versions against 1.3.0, as the reference test runner does.

The schema's ``valueset-uri`` keyword names a value set; the closed ones (disease targeted, test
type, test result, ISO 3166-1 alpha-2 countries: :mod:`.dcc_valuesets`) are checked where the
schema of that release names them, the open ones (vaccine products, manufacturers, RAT devices:
business rules that grow every few weeks) are not. ``format`` is an annotation in JSON Schema
2020-12 and stays one. A group written as ``null`` by older encoders counts as absent.

Problems are worded ``where`` + what is wrong (``v[0].ci is longer than 80 characters``), the
words ``fieldkit decode`` has always shown.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path

import jsonschema
from jsonschema import Draft202012Validator

from .dcc_valuesets import CLOSED_VALUE_SETS

SCHEMA_DIR = Path(__file__).with_name("dcc_schemas")
RELEASES = ("1.0.1", "1.1.0", "1.2.1", "1.3.0")  # the latest patch of each generation
SCHEMA_FILES = {r: SCHEMA_DIR / r / "DCC.combined-schema.json" for r in RELEASES}
LATEST = "1.3.0"
_VER = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


def release_for(ver: object) -> str:
    """The shipped schema release a certificate of this ``ver`` is validated against."""
    hit = _VER.match(ver) if isinstance(ver, str) else None
    generation = [r for r in RELEASES if hit and r.split(".")[:2] == [hit[1], hit[2]]]
    return generation[-1] if generation else LATEST


def _valueset(validator, uri, instance, schema):
    closed = CLOSED_VALUE_SETS.get(uri)
    if closed and isinstance(instance, str) and instance not in closed[0]:
        yield jsonschema.ValidationError(f"{instance!r} is not {closed[1]}")


def load_schema(release: str) -> dict:
    """The published file of ``release`` as shipped (sha256 in the README)."""
    return json.loads(SCHEMA_FILES[release].read_text(encoding="utf-8"))


@cache
def _validator(release: str):
    schema = load_schema(release)
    if release != LATEST:
        # Two rules the 1.0-1.2 files leave out and 1.3.0 made schema: exactly one of v, t, r,
        # and co from the country value set. The conformance data expects both for every
        # generation, so they are taken from the shipped 1.3.0 file, not written out here.
        latest = load_schema(LATEST)
        schema["oneOf"] = latest["oneOf"]
        schema["$defs"]["country_vt"]["valueset-uri"] = latest["$defs"]["country_vt"][
            "valueset-uri"
        ]
    cls = jsonschema.validators.extend(Draft202012Validator, {"valueset-uri": _valueset})
    return cls(schema)


def validate_published(hcert: Mapping) -> tuple[bool, str | None, list[str]]:
    """``(ok, ver or None, problems)`` for a decoded certificate of any schema generation."""
    ver = hcert.get("ver")
    release = release_for(ver)
    doc = {k: v for k, v in hcert.items() if not (k in ("v", "t", "r") and v is None)}
    errors = sorted(_validator(release).iter_errors(doc), key=_order)
    problems = [_words(e, release) for e in errors]
    bad_ver = not isinstance(ver, str) or any(list(e.absolute_path)[:1] == ["ver"] for e in errors)
    return not problems, None if bad_ver else ver, problems


def _order(error) -> tuple:
    return tuple(str(p) for p in error.absolute_path), error.validator


def _where(error) -> str:
    out = ""
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the certificate"


def _words(error, release: str) -> str:
    where, kind, value = _where(error), error.validator, error.validator_value
    if kind == "maxLength":
        return f"{where} is longer than {value} characters"
    if kind == "pattern":
        return f"{where} {error.instance!r} does not match {value}"
    if kind in ("minimum", "maximum"):
        top = error.schema.get("maximum")
        span = f"1–{top}" if top is not None else "1 or more"
        return f"{where} = {error.instance} is out of range ({span})"
    if kind == "type":
        article = "an" if value in ("integer", "array", "object") else "a"
        return f"{where} must be {article} {value}"
    if kind == "required":
        missing = [f for f in value if f not in error.instance]
        if where == "nam":
            return "nam.fnt (standardised surname) is required"
        if where == "the certificate":
            return f"{', '.join(missing)} is required"
        return f"{where} lacks required field(s) {', '.join(missing)}"
    if kind == "maxItems":
        return f"{where} may hold at most {value} entry in schema {release}"
    if kind == "minItems":
        return f"{where} must hold at least one entry"
    if kind == "oneOf":
        present = [k for k in ("v", "t", "r") if k in error.instance]
        missing = [k for k in ("ver", "nam", "dob") if k not in error.instance]
        if missing:
            return f"{', '.join(missing)} is required"
        what = "none" if not present else ", ".join(present)
        return f"exactly one of v, t, r must be present (found {what})"
    if kind == "valueset-uri":
        return f"{where} {error.message}"
    return f"{where}: {error.message}"
