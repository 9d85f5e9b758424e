"""The town's signed pass (出入证 / 通行证): issued by the town server, verified offline at a gate.

Format, version 1
-----------------
Text: ``FK1:`` + base45(body) — base45 keeps the QR in alphanumeric mode, the smallest — or
``FK1.`` + base64url(body, no padding) for links and chat messages. Both verify the same way.

``body = payload || signature`` where ``signature`` is the last 64 bytes, an Ed25519 signature
by the town key over ``b"FK1" + payload`` (the prefix binds the signature to this format).

``payload`` is a CBOR array (compact, and old gates can skip fields appended later)::

    [1,              # version
     pass_id,        # text, unique; what revocation lists name
     subject_kind,   # "household" | "vehicle" | "person"
     subject,        # household id, plate number or person reference
     holder,         # holder's *masked* name (张*), never the full name
     valid_from,     # int, Unix seconds UTC
     valid_to,       # int, Unix seconds UTC
     directions]     # int bit mask: 1 = in, 2 = out

A typical household pass is ~60 bytes of payload + 64 of signature → a version-6 QR.
The gate checks, in order: prefix, encoding, structure, signature (against any of the town's
public keys, so keys can rotate), revocation, validity window, and (optionally) direction.

The server issues and the gate verifies, so the format lives with the shared pieces;
``scanners.payloads.passes`` re-exports it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .base45 import Base45Error, b45decode, b45encode
from .identity import mask_name

PREFIX_B45 = "FK1:"
PREFIX_B64 = "FK1."
PREFIXES = (PREFIX_B45, PREFIX_B64)
VERSION = 1
SIGNED_CONTEXT = b"FK1"
SUBJECT_KINDS = ("household", "vehicle", "person")
DIRECTION_BITS = {"in": 1, "out": 2}
MAX_TEXT = 2048


@dataclass(frozen=True)
class PassResult:
    ok: bool
    problem: str | None = None  # why not valid, in plain words
    pass_id: str | None = None
    subject_kind: str | None = None
    subject: str | None = None
    holder: str | None = None  # masked name
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    directions: tuple[str, ...] = ()
    signature_ok: bool = False
    revoked: bool = False
    problem_code: str | None = None  # the problem as a catalogue word: why.pass.<code>

    def to_dict(self) -> dict:
        return {
            "pass_id": self.pass_id,
            "subject_kind": self.subject_kind,
            "subject": self.subject,
            "holder": self.holder,
            "valid_from": self.valid_from.isoformat() if self.valid_from else None,
            "valid_to": self.valid_to.isoformat() if self.valid_to else None,
            "directions": list(self.directions),
            "signature_ok": self.signature_ok,
            "revoked": self.revoked,
        }


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def issue_pass(
    private_key: Ed25519PrivateKey,
    *,
    pass_id: str,
    subject: str,
    valid_from: datetime,
    valid_to: datetime,
    holder_name: str = "",
    subject_kind: str = "household",
    directions: Iterable[str] = ("in", "out"),
    encoding: str = "base45",
) -> str:
    """Sign a pass and return its QR text. The holder's name is masked before it is stored."""
    if subject_kind not in SUBJECT_KINDS:
        raise ValueError(f"subject_kind must be one of {SUBJECT_KINDS}, not {subject_kind!r}")
    mask = 0
    for d in directions:
        if d not in DIRECTION_BITS:
            raise ValueError(f"direction must be 'in' or 'out', not {d!r}")
        mask |= DIRECTION_BITS[d]
    start, end = int(_utc(valid_from).timestamp()), int(_utc(valid_to).timestamp())
    if end <= start:
        raise ValueError("valid_to must be after valid_from")
    if not pass_id:
        raise ValueError("pass_id must not be empty")
    payload = cbor2.dumps(
        [VERSION, pass_id, subject_kind, subject, mask_name(holder_name), start, end, mask]
    )
    body = payload + private_key.sign(SIGNED_CONTEXT + payload)
    if encoding == "base45":
        return PREFIX_B45 + b45encode(body)
    if encoding == "base64url":
        return PREFIX_B64 + base64.urlsafe_b64encode(body).rstrip(b"=").decode()
    raise ValueError("encoding must be 'base45' or 'base64url'")


def _invalid(problem: str, code: str = "invalid", **fields) -> PassResult:
    return PassResult(False, problem, problem_code=code, **fields)


def verify_pass(
    text: str,
    public_key: Ed25519PublicKey | Iterable[Ed25519PublicKey],
    revoked: set[str] | frozenset[str] = frozenset(),
    now: datetime | None = None,
    direction: str | None = None,
) -> PassResult:
    """Check a pass offline. Never raises; ``problem`` says why a pass is not valid."""
    try:
        return _verify(text, public_key, revoked, now, direction)
    except Exception as exc:  # noqa: BLE001 - a gate never crashes on a bad code
        return _invalid(f"unreadable pass ({type(exc).__name__})", "unreadable")


def _verify(text, public_key, revoked, now, direction) -> PassResult:
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        return _invalid("not a pass: too long or not text", "not_a_pass")
    text = text.strip()
    try:
        if text.startswith(PREFIX_B45):
            body = b45decode(text[len(PREFIX_B45) :])
        elif text.startswith(PREFIX_B64):
            tail = text[len(PREFIX_B64) :]
            body = base64.urlsafe_b64decode(tail + "=" * (-len(tail) % 4))
        else:
            return _invalid(
                f"not a town pass: it must start with {PREFIX_B45} or {PREFIX_B64}", "not_a_pass"
            )
    except (Base45Error, binascii.Error, ValueError) as exc:
        return _invalid(f"pass text is damaged: {exc}", "damaged")
    if len(body) <= 64:
        return _invalid("pass is too short to hold a signature", "damaged")
    payload, signature = body[:-64], body[-64:]
    try:
        fields = cbor2.loads(payload)
    except Exception as exc:  # noqa: BLE001 - cbor2 raises many types on junk
        return _invalid(f"pass content is damaged ({type(exc).__name__})", "damaged")
    if not isinstance(fields, list | tuple) or len(fields) < 8:
        return _invalid("pass content has the wrong structure", "damaged")
    version, pass_id, subject_kind, subject, holder, start, end, mask = fields[:8]
    if version != VERSION:
        return _invalid(
            f"pass version {version!r} is not supported (this gate reads {VERSION})", "version"
        )
    types_ok = (
        isinstance(pass_id, str)
        and isinstance(subject_kind, str)
        and isinstance(subject, str)
        and isinstance(holder, str)
        and all(
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**40
            for v in (start, end, mask)
        )
    )
    if not types_ok:
        return _invalid("pass content has the wrong field types", "damaged")
    info = {
        "pass_id": pass_id,
        "subject_kind": subject_kind,
        "subject": subject,
        "holder": holder,
        "valid_from": datetime.fromtimestamp(start, UTC),
        "valid_to": datetime.fromtimestamp(end, UTC),
        "directions": tuple(d for d, bit in DIRECTION_BITS.items() if mask & bit),
    }
    keys = [public_key] if isinstance(public_key, Ed25519PublicKey) else list(public_key)
    if not keys:
        return _invalid("no town public key configured: cannot check passes", "no_key", **info)
    for key in keys:
        try:
            key.verify(signature, SIGNED_CONTEXT + payload)
            break
        except InvalidSignature:
            continue
    else:
        return _invalid("wrong signature: not issued by this town, or altered", "signature", **info)
    info["signature_ok"] = True
    if pass_id in revoked:
        return _invalid(f"pass {pass_id} has been revoked", "revoked", revoked=True, **info)
    now = _utc(now or datetime.now(UTC))
    if now < info["valid_from"]:
        return _invalid(
            f"pass not valid yet: from {info['valid_from']:%Y-%m-%d %H:%M} UTC", "not_yet", **info
        )
    if now > info["valid_to"]:
        return _invalid(f"pass expired on {info['valid_to']:%Y-%m-%d %H:%M} UTC", "expired", **info)
    if direction is not None and direction not in info["directions"]:
        return _invalid(f"pass does not allow going {direction}", "direction", **info)
    return PassResult(True, None, **info)
