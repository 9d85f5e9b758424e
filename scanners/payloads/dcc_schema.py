"""EU DCC payload validation against the published eHealth Network JSON schemas (1.0.0 – 1.3.x).

Every generation is validated with ``jsonschema`` against its published
``DCC.combined-schema.json`` shipped in ``dcc_schemas/<release>/`` (sources and sha256 in
``dcc_schemas/README.md``); :mod:`.dcc_jsonschema` picks the file from the certificate's own
``ver`` and words the problems. This module is the entry point (``fieldkit decode``, the gate,
bench/dcc_conformance.py) and guarantees that :func:`validate_hcert` never raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .dcc_jsonschema import validate_published


@dataclass
class SchemaResult:
    ok: bool
    version: str | None
    problems: list[str] = field(default_factory=list)


def validate_hcert(hcert: object) -> SchemaResult:
    """Validate a decoded health certificate (claim -260/1, JSON-like). Never raises."""
    if not isinstance(hcert, Mapping):
        return SchemaResult(False, None, ["the certificate is not an object"])
    try:
        return SchemaResult(*validate_published(hcert))
    except Exception as exc:  # noqa: BLE001 - a validator never crashes the gate
        return SchemaResult(False, None, [f"unvalidatable certificate ({type(exc).__name__})"])
