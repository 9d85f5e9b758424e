"""DCC validation with ``jsonschema`` against the published schema files in ``dcc_schemas/``.

The schema's ``valueset-uri`` keyword names a value set; the closed ones (disease targeted, test
type, test result, ISO 3166-1 alpha-2 countries) are checked, the open ones (vaccine products,
manufacturers, RAT devices: business rules that grow every few weeks) are not. ``format`` is an
annotation in JSON Schema 2020-12 and stays one. A group written as ``null`` by older encoders
counts as absent, as in the hand-written rules for the earlier generations.

Problems are given in the same words as the hand-written rules (``where`` + what is wrong), so a
reader of ``fieldkit decode`` sees one vocabulary whatever the generation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path

import jsonschema
from jsonschema import Draft202012Validator

from .dcc_schema import COUNTRY_CODES, DISEASE_AGENT_TARGETED, TEST_RESULT, TEST_TYPE

SCHEMA_DIR = Path(__file__).with_name("dcc_schemas")
SCHEMA_FILES = {"1.3": SCHEMA_DIR / "1.3.0" / "DCC.combined-schema.json"}
CLOSED_VALUE_SETS = {
    "valuesets/disease-agent-targeted.json": (DISEASE_AGENT_TARGETED, "a disease in the value set"),
    "valuesets/test-type.json": (TEST_TYPE, "a test type in the value set"),
    "valuesets/test-result.json": (TEST_RESULT, "a test result in the value set"),
    "valuesets/country-2-codes.json": (COUNTRY_CODES, "an ISO 3166-1 alpha-2 country code"),
}


def _valueset(validator, uri, instance, schema):
    closed = CLOSED_VALUE_SETS.get(uri)
    if closed and isinstance(instance, str) and instance not in closed[0]:
        yield jsonschema.ValidationError(f"{instance!r} is not {closed[1]}")


@cache
def _validator(generation: str):
    schema = json.loads(SCHEMA_FILES[generation].read_text(encoding="utf-8"))
    cls = jsonschema.validators.extend(Draft202012Validator, {"valueset-uri": _valueset})
    return cls(schema)


def validate_published(hcert: Mapping, ver: str) -> tuple[bool, str, list[str]]:
    """``(ok, ver, problems)`` for a 1.3.x certificate."""
    doc = {k: v for k, v in hcert.items() if not (k in ("v", "t", "r") and v is None)}
    problems = [_words(e) for e in sorted(_validator("1.3").iter_errors(doc), key=_order)]
    return not problems, ver, problems


def _order(error) -> tuple:
    return tuple(str(p) for p in error.absolute_path), error.validator


def _where(error) -> str:
    out = ""
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the certificate"


def _words(error) -> str:
    where, kind, value = _where(error), error.validator, error.validator_value
    if kind == "maxLength":
        return f"{where} is longer than {value} characters"
    if kind == "pattern":
        return f"{where} {error.instance!r} does not match {value}"
    if kind in ("minimum", "maximum"):
        return f"{where} = {error.instance} is out of range (1 or more)"
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
        return f"{where} may hold at most {value} entry in schema 1.3"
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
