"""EU Digital COVID Certificate (DCC / "green pass") decoding and verification.

``HC1:`` prefix → base45 → zlib (size-guarded) → COSE_Sign1 (optionally wrapped in CWT tag 61)
→ CWT claims in CBOR → health certificate (claim -260, key 1). The signature (ES256 or PS256)
is checked against a signer certificate whose ``kid`` (first 8 bytes of the SHA-256 of its DER)
must equal the ``kid`` in the protected header (or, if the protected header has none, the
unprotected one). Expiry and issued-at are checked against a clock passed in by the caller.

Every step's outcome is kept in ``DccResult.steps`` so a conformance run can compare each one;
:func:`decode_dcc` never raises.

One piece (~470 lines): one decoding chain (base45, zlib, COSE, CBOR, signature, rules) whose
steps pass each other's values.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import cbor2
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from fieldkit.shared.base45 import Base45Error, b45decode

from ..coded import Problem
from .dcc_schema import validate_hcert

PREFIX = "HC1:"


MAX_DECOMPRESSED = 64 * 1024  # a real DCC is < 2 KiB decompressed; anything larger is a bomb
MAX_TEXT = 8 * 1024  # a version-40 QR holds at most 4296 alphanumeric characters

ALG_ES256 = -7
ALG_PS256 = -37
ALG_NAMES = {ALG_ES256: "ES256", ALG_PS256: "PS256"}

# Extended key usage OIDs that restrict a signer to certificate types (DCC trust framework).
_EKU_TYPES = {
    "1.3.6.1.4.1.1847.2021.1.1": "t",
    "1.3.6.1.4.1.0.1847.2021.1.1": "t",
    "1.3.6.1.4.1.1847.2021.1.2": "v",
    "1.3.6.1.4.1.0.1847.2021.1.2": "v",
    "1.3.6.1.4.1.1847.2021.1.3": "r",
    "1.3.6.1.4.1.0.1847.2021.1.3": "r",
}

STEPS = (
    "unprefix",
    "base45",
    "decompress",
    "cose",
    "cbor",
    "schema",
    "verify",
    "expiry",
    "key_usage",
)


def kid_of(certificate: x509.Certificate) -> bytes:
    """The DCC key id: first 8 bytes of the SHA-256 of the certificate's DER."""
    from cryptography.hazmat.primitives.serialization import Encoding

    return hashlib.sha256(certificate.public_bytes(Encoding.DER)).digest()[:8]


@dataclass
class TrustList:
    """Signer certificates by kid (from a trust-list file or a test context)."""

    by_kid: dict[bytes, x509.Certificate] = field(default_factory=dict)

    @classmethod
    def of(cls, certificates: Iterable[x509.Certificate]) -> TrustList:
        return cls({kid_of(c): c for c in certificates})

    @classmethod
    def from_der_base64(cls, *items: str) -> TrustList:
        return cls.of(x509.load_der_x509_certificate(base64.b64decode(i)) for i in items)

    @classmethod
    def load(cls, path: str | Path) -> TrustList:
        """A PEM bundle, or JSON: a list of base64 DER strings or ``{"certificates": [...]}``."""
        data = Path(path).read_bytes()
        if b"-----BEGIN CERTIFICATE-----" in data:
            return cls.of(x509.load_pem_x509_certificates(data))
        doc = json.loads(data)
        items = doc.get("certificates", []) if isinstance(doc, dict) else doc
        return cls.from_der_base64(*(i["certificate"] if isinstance(i, dict) else i for i in items))


@dataclass
class DccResult:
    ok: bool = False
    problem: str | None = None
    steps: dict[str, bool] = field(default_factory=dict)  # only the steps that ran
    kid: str | None = None  # base64
    alg: str | None = None
    issuer: str | None = None
    issued_at: datetime | None = None
    expires_at: datetime | None = None
    certificate: dict | None = None  # the health certificate, JSON-able
    cert_type: str | None = None  # v | t | r
    # Schema problems are reported, not fatal: real issuers ship certificates that break the
    # schema in small ways (over-long test centre names), and a signed certificate from a
    # trusted signer is what the gate decides on.
    schema_problems: list[str] = field(default_factory=list)

    def fail(self, step: str, problem: str) -> DccResult:
        self.steps[step] = False
        self.ok = False
        if self.problem is None:
            self.problem = problem
        return self

    def summary(self) -> dict:
        """JSON-able view for the CLI and the UI (personal data left to the caller to mask)."""
        return {
            "kid": self.kid,
            "alg": self.alg,
            "issuer": self.issuer,
            "issued_at": self.issued_at.isoformat() if self.issued_at else None,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "type": self.cert_type,
            "steps": dict(self.steps),
            "certificate": self.certificate,
            "schema_problems": list(self.schema_problems),
        }


def to_jsonable(value):
    """CBOR values → JSON values (dates as ISO text, bytes as base64)."""
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, datetime):
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, cbor2.CBORTag):
        return to_jsonable(value.value)
    if value is cbor2.undefined or isinstance(value, cbor2.CBORSimpleValue):
        return None
    return value


def inflate_guarded(data: bytes, limit: int = MAX_DECOMPRESSED) -> bytes:
    """zlib-inflate at most ``limit`` bytes; raises ValueError on a bomb, junk or truncation."""
    if len(data) < 2 or data[0] & 0x0F != 8 or ((data[0] << 8) | data[1]) % 31:
        raise ValueError(Problem("payload is not zlib-compressed (no zlib header)", "not_zlib"))
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise ValueError(Problem(f"zlib data is broken ({exc})", "zlib_broken")) from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise ValueError(
            Problem(f"decompressed payload exceeds {limit} bytes (zip bomb?)", "bomb", limit=limit)
        )
    if not inflater.eof:
        raise ValueError(Problem("zlib data is truncated", "zlib_truncated"))
    return out


def _unwrap_cose(obj) -> tuple:
    """CWT tag 61 and COSE_Sign1 tag 18 unwrapped; returns the 4-element array."""
    for _ in range(3):
        if isinstance(obj, cbor2.CBORTag):
            if obj.tag not in (61, 18):
                raise ValueError(f"unexpected CBOR tag {obj.tag} (COSE_Sign1 is 18, CWT is 61)")
            obj = obj.value
    if not isinstance(obj, list | tuple) or len(obj) != 4:
        raise ValueError("not a COSE_Sign1 structure (an array of 4)")
    protected, unprotected, payload, signature = obj
    if (
        not isinstance(protected, bytes)
        or not isinstance(payload, bytes)
        or not isinstance(signature, bytes)
    ):
        raise TypeError("COSE_Sign1 protected header, payload and signature must be byte strings")
    if not isinstance(unprotected, Mapping):
        raise TypeError("COSE_Sign1 unprotected header must be a map")
    return protected, unprotected, payload, signature


def _verify_signature(
    cert: x509.Certificate, alg: int | None, to_sign: bytes, signature: bytes
) -> None:
    key = cert.public_key()
    if alg == ALG_ES256:
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise InvalidSignature("ES256 signature but the signer key is not EC")
        if len(signature) != 64:
            raise InvalidSignature(f"ES256 signature must be 64 bytes, got {len(signature)}")
        der = encode_dss_signature(int.from_bytes(signature[:32]), int.from_bytes(signature[32:]))
        key.verify(der, to_sign, ec.ECDSA(hashes.SHA256()))
    elif alg == ALG_PS256:
        if not isinstance(key, rsa.RSAPublicKey):
            raise InvalidSignature("PS256 signature but the signer key is not RSA")
        key.verify(
            signature,
            to_sign,
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
            hashes.SHA256(),
        )
    else:
        raise InvalidSignature(f"unsupported signature algorithm {alg}")


def _instant(value) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and -1e11 < value < 1e11:
        return datetime.fromtimestamp(value, UTC)
    return None


def certificate_type(hcert: Mapping) -> str | None:
    kinds = [k for k in ("v", "t", "r") if hcert.get(k)]
    return kinds[0] if len(kinds) == 1 else None


def decode_dcc(
    text: str,
    trust: TrustList | None = None,
    now: datetime | None = None,
    *,
    max_decompressed: int = MAX_DECOMPRESSED,
    check_key_usage: bool = True,
) -> DccResult:
    """Decode and, given ``trust``, verify a DCC. Never raises; see ``steps`` and ``problem``."""
    res = DccResult()
    try:
        return _decode(res, text, trust, now, max_decompressed, check_key_usage)
    except Exception as exc:  # noqa: BLE001 - last line of defence: a parser never crashes the gate
        return res.fail("cbor", Problem(f"undecodable DCC ({type(exc).__name__})", "undecodable"))


def _decode(
    res: DccResult,
    text: str,
    trust: TrustList | None,
    now: datetime | None,
    max_decompressed: int,
    check_key_usage: bool,
) -> DccResult:
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        return res.fail("unprefix", Problem("not a DCC text (too long or not text)", "not_text"))
    if not text.startswith(PREFIX):
        return res.fail(
            "unprefix",
            Problem(
                f"a DCC starts with {PREFIX!r}, this starts with {text[:4]!r}",
                "prefix",
                prefix=PREFIX,
                start=text[:4],
            ),
        )
    res.steps["unprefix"] = True
    try:
        compressed = b45decode(text[len(PREFIX) :])
    except Base45Error as exc:
        return res.fail("base45", Problem(f"base45 is broken: {exc}", "base45"))
    res.steps["base45"] = True
    try:
        cose_bytes = inflate_guarded(compressed, max_decompressed)
    except ValueError as exc:
        coded = exc.args[0] if exc.args and isinstance(exc.args[0], Problem) else None
        return res.fail("decompress", coded or Problem(str(exc), "zlib_broken"))
    res.steps["decompress"] = True
    return _decode_cose(res, cose_bytes, trust, now, check_key_usage)


def decode_cose(
    cose_bytes: bytes,
    trust: TrustList | None = None,
    now: datetime | None = None,
    *,
    check_key_usage: bool = True,
) -> DccResult:
    """Decode and verify from the COSE stage (the conformance run uses it). Never raises."""
    res = DccResult()
    try:
        return _decode_cose(res, cose_bytes, trust, now, check_key_usage)
    except Exception as exc:  # noqa: BLE001
        return res.fail("cbor", Problem(f"undecodable DCC ({type(exc).__name__})", "undecodable"))


def _decode_cose(
    res: DccResult,
    cose_bytes: bytes,
    trust: TrustList | None,
    now: datetime | None,
    check_key_usage: bool,
) -> DccResult:
    try:
        protected_raw, unprotected, payload, signature = _unwrap_cose(cbor2.loads(cose_bytes))
        protected = cbor2.loads(protected_raw) if protected_raw else {}
        if not isinstance(protected, Mapping):
            raise TypeError("protected header is not a map")
    except Exception as exc:  # noqa: BLE001 - cbor2 raises many types on junk
        return res.fail("cose", Problem(f"not a valid COSE_Sign1 message: {exc}", "cose"))
    res.steps["cose"] = True

    try:
        claims = cbor2.loads(payload)
        if not isinstance(claims, Mapping):
            raise TypeError("CWT claims are not a map")
        hcert_wrapper = claims.get(-260)
        hcert = hcert_wrapper.get(1) if isinstance(hcert_wrapper, Mapping) else None
        if not isinstance(hcert, Mapping):
            raise TypeError("no health certificate (claim -260/1)")
        res.certificate = to_jsonable(hcert)
        json.dumps(res.certificate)
    except Exception as exc:  # noqa: BLE001
        return res.fail(
            "cbor", Problem(f"CWT payload is not a valid health certificate: {exc}", "hcert")
        )
    res.steps["cbor"] = True
    res.issuer = claims.get(1) if isinstance(claims.get(1), str) else None
    res.issued_at, res.expires_at = _instant(claims.get(6)), _instant(claims.get(4))
    res.cert_type = certificate_type(hcert)
    schema = validate_hcert(res.certificate)
    res.steps["schema"] = schema.ok
    res.schema_problems = schema.problems

    alg: Any = protected.get(1) if 1 in protected else unprotected.get(1)
    res.alg = ALG_NAMES.get(alg, str(alg))
    kid = protected.get(4) if 4 in protected else unprotected.get(4)
    res.kid = base64.b64encode(kid).decode() if isinstance(kid, bytes) else None
    cert = None
    if trust is not None:
        if not isinstance(kid, bytes):
            res.fail("verify", Problem("no key id (kid) in the COSE header", "no_kid"))
        elif (cert := trust.by_kid.get(kid)) is None:
            res.fail(
                "verify",
                Problem(
                    f"unknown signer: kid {res.kid} is not in the trust list",
                    "unknown_signer",
                    kid=res.kid,
                ),
            )
        else:
            sig_structure = cbor2.dumps(["Signature1", protected_raw, b"", payload])
            try:
                _verify_signature(cert, alg, sig_structure, signature)
                res.steps["verify"] = True
            except (InvalidSignature, ValueError) as exc:
                res.fail(
                    "verify",
                    Problem(
                        f"wrong signature ({exc or 'does not match the signer key'})",
                        "wrong_signature",
                    ),
                )

    if now is not None:
        now = now if now.tzinfo else now.replace(tzinfo=UTC)
        if res.expires_at is None:
            res.fail("expiry", Problem("no expiry date (claim 4)", "no_expiry"))
        elif res.issued_at is not None and now < res.issued_at:
            issued = res.issued_at.isoformat()
            res.fail(
                "expiry", Problem(f"not valid yet: issued at {issued}", "not_yet", issued=issued)
            )
        elif now > res.expires_at:
            expires = res.expires_at.isoformat()
            res.fail("expiry", Problem(f"expired on {expires}", "expired", expires=expires))
        else:
            res.steps["expiry"] = True

    if cert is not None and check_key_usage:
        problem = key_usage_problem(cert, res.cert_type)
        if problem:
            res.fail("key_usage", problem)
        else:
            res.steps["key_usage"] = True

    res.ok = res.problem is None and res.steps.get("verify") is True
    if res.problem is None and trust is None:
        res.problem = Problem("signature not checked: no trust list", "no_trust")
    return res


def _dcc_eku_types(cert: x509.Certificate) -> tuple[bool, set[str]]:
    """(has an extended-key-usage extension, DCC types it allows)."""
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        return True, {_EKU_TYPES[o.dotted_string] for o in eku if o.dotted_string in _EKU_TYPES}
    except x509.ExtensionNotFound:
        return False, set()
    except ValueError:
        # Some issuers' certificates carry an extension the X.509 parser rejects; fall back to
        # looking for the DCC key-usage OIDs in the DER.
        from cryptography.hazmat.primitives.serialization import Encoding

        der = cert.public_bytes(Encoding.DER)
        found = {kind for oid, kind in _EKU_TYPES.items() if _oid_der(oid) in der}
        return bool(found), found


def _oid_der(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    body = bytearray([40 * parts[0] + parts[1]])
    for n in parts[2:]:
        chunk = [n & 0x7F]
        while n > 0x7F:
            n >>= 7
            chunk.append(0x80 | (n & 0x7F))
        body += bytes(reversed(chunk))
    return bytes([6, len(body)]) + bytes(body)


def key_usage_problem(cert: x509.Certificate, cert_type: str | None) -> str | None:
    """A signer whose extended key usage does not allow this certificate type may not sign it.

    No extended key usage at all: any type. Extended key usage present: it must name the type
    (with the DCC OIDs 1.3.6.1.4.1.1847.2021.1.1 test, .2 vaccination, .3 recovery).
    """
    has_eku, allowed = _dcc_eku_types(cert)
    if not has_eku:
        return None
    names = {"v": "vaccination", "t": "test", "r": "recovery", None: "unknown"}
    if not allowed:
        return Problem(
            "signer's extended key usage does not allow signing health certificates", "eku_none"
        )
    if cert_type not in allowed:
        return Problem(
            f"signer may only sign {', '.join(sorted(names[a] for a in allowed))} "
            f"certificates, this is a {names[cert_type]} certificate",
            "eku_type",
            allowed_types=",".join(sorted(a for a in allowed if a)),
            cert_types=cert_type or "",
        )
    return None
