"""Payload parsers: QR or keyboard-wedge text → a typed :class:`ScanResult`.

Kinds: ``resident_id`` (GB 11643 number, alone or inside text), ``pass`` (the town's signed
pass), ``dcc`` (EU Digital COVID Certificate), ``health_code`` (links matched by configured
patterns) and ``unknown`` (kept as is). :func:`parse_payload` never raises; anything not valid
comes back with ``ok=False`` and ``problem`` saying why.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ..idnumber import find_resident_id, mask_id, parse_identity
from .dcc import PREFIX as DCC_PREFIX
from .dcc import TrustList, decode_dcc
from .healthcode import DEFAULT_PATTERNS, HealthCodePattern, match_health_code
from .passes import PREFIXES as PASS_PREFIXES
from .passes import verify_pass

KINDS = ("resident_id", "pass", "dcc", "health_code", "unknown")
MAX_PAYLOAD = 8192


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class PayloadConfig:
    """What the parsers need from the app's config (plain values, no app imports)."""

    health_code_patterns: tuple[HealthCodePattern, ...] = DEFAULT_PATTERNS
    pass_public_keys: tuple[Ed25519PublicKey, ...] = ()
    revoked_passes: frozenset[str] = frozenset()
    dcc_trust: TrustList | None = None
    direction: str | None = None  # "in" | "out": check a pass allows it
    clock: Callable[[], datetime] = field(default=_utc_now)


@dataclass(frozen=True)
class ScanResult:
    kind: str  # resident_id | pass | dcc | health_code | unknown
    ok: bool
    problem: str | None  # why not valid (None when ok)
    parsed: dict  # JSON-able
    text: str | None = None  # the payload as read (None for binary)
    # The problem as a catalogue key (why.pass.<code>, id.problem.<code>) where it has one.
    problem_code: str | None = None
    problem_params: tuple[tuple[str, object], ...] = ()  # the catalogue text's parameters

    def to_dict(self) -> dict:
        return {"kind": self.kind, "ok": self.ok, "problem": self.problem, "parsed": self.parsed}


def parse_payload(payload: str | bytes, config: PayloadConfig | None = None) -> ScanResult:
    """Recognise and check a payload. Never raises."""
    config = config or PayloadConfig()
    try:
        return _parse(payload, config)
    except Exception as exc:  # noqa: BLE001 - the gate must keep going whatever is scanned
        return ScanResult(
            "unknown",
            False,
            f"could not parse this code ({type(exc).__name__})",
            {},
            payload if isinstance(payload, str) else None,
            "payload.problem.crash",
        )


def _parse(payload: str | bytes, config: PayloadConfig) -> ScanResult:
    if isinstance(payload, bytes | bytearray):
        return ScanResult(
            "unknown",
            False,
            "binary payload, not text",
            {
                "bytes_base64": base64.b64encode(bytes(payload[:MAX_PAYLOAD])).decode(),
                "length": len(payload),
            },
            None,
            "payload.problem.binary",
        )
    text = payload
    if len(text) > MAX_PAYLOAD:
        return ScanResult(
            "unknown",
            False,
            f"payload too long ({len(text)} characters)",
            {"length": len(text)},
            None,
            "payload.problem.too_long",
            (("length", len(text)), ("limit", MAX_PAYLOAD)),
        )
    stripped = text.strip()
    if not stripped:
        return ScanResult(
            "unknown", False, "empty payload", {"text": text}, text, "payload.problem.empty"
        )

    if stripped.startswith(DCC_PREFIX):
        res = decode_dcc(stripped, config.dcc_trust, config.clock())
        coded = getattr(res.problem, "code", None)
        code = f"dcc.problem.{coded}" if coded else None
        params = tuple(getattr(res.problem, "params", {}).items())
        return ScanResult("dcc", res.ok, res.problem, res.summary(), text, code, params)

    if stripped.startswith(PASS_PREFIXES):
        passed = verify_pass(
            stripped,
            config.pass_public_keys,
            config.revoked_passes,
            config.clock(),
            config.direction,
        )
        code = f"why.pass.{passed.problem_code}" if passed.problem_code else None
        return ScanResult("pass", passed.ok, passed.problem, passed.to_dict(), text, code)

    match = match_health_code(stripped, config.health_code_patterns)
    if match:
        return ScanResult("health_code", True, None, match.to_dict(), text)

    if len(stripped) <= 24:
        ident = parse_identity(stripped, "resident_id")
        if ident.kind == "resident_id" and (
            len(ident.number) == 18 and ident.number[:17].isdigit()
        ):
            return _resident(ident, text, embedded=False)
    found = find_resident_id(stripped)
    if found:
        return _resident(parse_identity(found, "resident_id"), text, embedded=True)
    return ScanResult(
        "unknown",
        False,
        "not a recognised code (kept as is)",
        {"text": text},
        text,
        "payload.problem.unrecognised",
    )


def _resident(ident, text: str, embedded: bool) -> ScanResult:
    parsed = {
        "number": ident.number,
        "masked": mask_id(ident.number),
        "check_ok": ident.check_ok,
        "birth_date": ident.birth_date.isoformat() if ident.birth_date else None,
        "sex": ident.sex,
        "upgraded_from": ident.upgraded_from,
        "embedded_in_text": embedded,
    }
    code = f"id.problem.{ident.problem_code}" if ident.problem_code else None
    params = tuple(getattr(ident, "problem_params", ()) or ())
    return ScanResult("resident_id", ident.valid, ident.problem, parsed, text, code, params)


__all__ = [
    "KINDS",
    "HealthCodePattern",
    "PayloadConfig",
    "ScanResult",
    "TrustList",
    "parse_payload",
]
