"""Wire format shared by the device client and the town server.

Nothing here does I/O. Both sides import it; it imports neither side.

Upload batch (``POST /v1/batches``, ``application/octet-stream``)::

    b"FKB1" | u32 header length | header (canonical JSON) | nonce (12) | AES-GCM ciphertext
           | sig (64)

- The plaintext is zlib-compressed JSON lines, one record per line, so the server can keep each
  record's bytes as they came and never re-serialises them. A line is
  ``{"id": uuid, "kind": …, "hash": sha256 of the body's canonical JSON, "body": {…}}``; the server
  indexes the body's ``ts``, ``checkpoint``, ``direction``, ``id_hash_town`` (the town blind
  index), ``name_masked`` and ``id_masked``. (Devices before 2026-12 also sent those beside the
  body as ``at``, ``checkpoint`` … ``id_hash``; the server still reads that form.)
- Sealing: an ephemeral X25519 key per batch, ``HKDF-SHA256(shared, salt=eph_pub|town_pub,
  info=b"fieldkit/seal/v1"|batch_id)`` gives the AES-256-GCM key; the header is the associated
  data, so a header moved onto another ciphertext fails to open.
- Signing: Ed25519 by the device key over everything before the signature. The server checks the
  signature before it decrypts anything: an unenrolled device or a flipped bit costs it one
  verification.

Downloads and enrollment replies are canonical JSON signed by the town's Ed25519 key:
``{"payload": "<canonical json text>", "signature": "<base64>"}``.

One piece (~580 lines): the whole wire format both sides must agree on, in one file to read
against either side.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import struct
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any, NamedTuple

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# Canonical JSON lives with the pieces the device and the server share; the wire format uses it.
from fieldkit.shared.canonical import canonical_json, loads  # noqa: F401 (re-exported)

zstandard: ModuleType | None
try:  # faster and smaller than zlib; both sides fall back to zlib without it
    import zstandard
except ImportError:  # pragma: no cover - a dependency; a safety net for odd installs
    zstandard = None

PROTOCOL_VERSION = 1
MAGIC = b"FKB1"
SIG_LEN = 64
SEAL_INFO = b"fieldkit/seal/v1"
RECORD_KINDS_WITH_TIME = ("passage", "visit", "reading")

# Paths of the HTTP API, in one place.
PATH_INFO = "/v1/info"
PATH_ENROLL = "/v1/enroll"
PATH_BATCHES = "/v1/batches"
PATH_UPDATES = "/v1/updates"

# Record kinds the server merges in the order they arrive (the household ledger's edits): a
# device never has two batches holding them in flight at once.
ORDERED_KINDS = frozenset({"ledger_edit"})

# Record fates in a batch reply.
STORED = "stored"
DUPLICATE = "duplicate"
CONFLICT = "conflict"
REJECTED = "rejected"


# Compressions of a batch's plaintext this side can read, preferred first. The server lists its
# own in the enrollment reply, ``/v1/info`` and every update; a device uses the first it shares.
COMPRESSIONS = ("zstd", "zlib") if zstandard is not None else ("zlib",)
ZSTD_LEVEL = 1  # on FieldKit's records level 1 is both the fastest and (here) the smallest
ZLIB_LEVEL = 6


def choose_compression(offered: Any) -> str:
    """The best compression both sides read; zlib when the other side names none."""
    if isinstance(offered, list | tuple):
        for name in COMPRESSIONS:
            if name in offered:
                return name
    return "zlib"


class ProtocolError(Exception):
    """A message that does not follow the wire format, or fails its signature or seal.

    ``code`` is a stable machine word (``bad_signature``, ``cannot_open`` ...) sent to clients.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# --- encoding helpers -------------------------------------------------------------------------


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def b64e(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64d(text: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as err:
        raise ProtocolError("bad_envelope", f"not base64: {err}") from None


def new_batch_id() -> str:
    return str(uuid.uuid4())


def key_fingerprint(ed25519_public: bytes, x25519_public: bytes) -> str:
    """Short fingerprint of the town's two public keys, carried inside enrollment tokens."""
    return sha256_hex(b"fieldkit/town/v1" + ed25519_public + x25519_public)[:16]


# --- keys --------------------------------------------------------------------------------------


def raw_public(key: Ed25519PublicKey | X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def raw_private(key: Ed25519PrivateKey | X25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )


def load_ed25519_public(raw: bytes) -> Ed25519PublicKey:
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise ProtocolError("bad_key", "not an Ed25519 public key (32 bytes expected)") from None


def load_x25519_public(raw: bytes) -> X25519PublicKey:
    try:
        return X25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise ProtocolError("bad_key", "not an X25519 public key (32 bytes expected)") from None


# --- sealing -----------------------------------------------------------------------------------


def _seal_key(shared: bytes, eph_pub: bytes, recipient_pub: bytes, context: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=eph_pub + recipient_pub, info=SEAL_INFO + context
    ).derive(shared)


def seal(
    recipient: X25519PublicKey, plaintext: bytes, context: bytes, aad: bytes = b""
) -> tuple[bytes, bytes]:
    """Encrypt to ``recipient``: returns (ephemeral public key, nonce | ciphertext)."""
    eph = X25519PrivateKey.generate()
    eph_pub = raw_public(eph.public_key())
    key = _seal_key(eph.exchange(recipient), eph_pub, raw_public(recipient), context)
    nonce = os.urandom(12)
    return eph_pub, nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_sealed(
    recipient: X25519PrivateKey, eph_pub: bytes, blob: bytes, context: bytes, aad: bytes = b""
) -> bytes:
    if len(blob) < 12 + 16 or len(eph_pub) != 32:
        raise ProtocolError("cannot_open", "sealed data is truncated")
    try:
        shared = recipient.exchange(X25519PublicKey.from_public_bytes(eph_pub))
        key = _seal_key(shared, eph_pub, raw_public(recipient.public_key()), context)
        return AESGCM(key).decrypt(blob[:12], blob[12:], aad)
    except (InvalidTag, ValueError):
        raise ProtocolError(
            "cannot_open", "the batch does not open with the town key (altered in transit?)"
        ) from None


# --- upload batches ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchHeader:
    device_id: str
    batch_id: str
    created_at: float
    count: int
    eph_pub: bytes
    compression: str = "zlib"

    def to_bytes(self) -> bytes:
        return canonical_json(
            {
                "v": PROTOCOL_VERSION,
                "device_id": self.device_id,
                "batch_id": self.batch_id,
                "created_at": self.created_at,
                "count": self.count,
                "eph_pub": b64e(self.eph_pub),
                "compression": self.compression,
            }
        )


@dataclass(frozen=True)
class OpenedBatch:
    header: BatchHeader
    lines: list[bytes]  # one canonical-JSON record per line, as the device sent it


def encode_records(records: list[dict[str, Any]]) -> list[bytes]:
    return [canonical_json(r) for r in records]


def seal_batch(
    lines: list[bytes],
    *,
    device_id: str,
    device_key: Ed25519PrivateKey,
    town_x25519: X25519PublicKey,
    batch_id: str | None = None,
    created_at: float | None = None,
    compression: str = "zlib",
) -> tuple[str, bytes]:
    """Compress, seal and sign records already encoded as JSON lines."""
    batch_id = batch_id or new_batch_id()
    plain = compress(b"\n".join(lines), compression)
    # The ephemeral key is part of the header (AAD), so generate it first.
    eph = X25519PrivateKey.generate()
    eph_pub = raw_public(eph.public_key())
    header = BatchHeader(
        device_id, batch_id, created_at or time.time(), len(lines), eph_pub, compression
    )
    header_bytes = header.to_bytes()
    key = _seal_key(eph.exchange(town_x25519), eph_pub, raw_public(town_x25519), batch_id.encode())
    nonce = os.urandom(12)
    ciphertext = nonce + AESGCM(key).encrypt(nonce, plain, header_bytes)
    signed = MAGIC + struct.pack(">I", len(header_bytes)) + header_bytes + ciphertext
    return batch_id, signed + device_key.sign(signed)


def read_batch_header(body: bytes) -> tuple[BatchHeader, bytes, bytes, bytes]:
    """Parse without trusting: (header, header bytes, ciphertext, signed part)."""
    if len(body) < 8 + SIG_LEN or body[:4] != MAGIC:
        raise ProtocolError("bad_envelope", "not a FieldKit batch (bad magic or too short)")
    (hlen,) = struct.unpack(">I", body[4:8])
    if hlen > 4096 or 8 + hlen + 28 + SIG_LEN > len(body):
        raise ProtocolError("bad_envelope", "batch header length is out of range")
    header_bytes = body[8 : 8 + hlen]
    try:
        h = json.loads(header_bytes)
        header = BatchHeader(
            device_id=str(h["device_id"]),
            batch_id=str(uuid.UUID(str(h["batch_id"]))),
            created_at=float(h["created_at"]),
            count=int(h["count"]),
            eph_pub=b64d(h["eph_pub"]),
            compression=str(h.get("compression")),
        )
        if not math.isfinite(header.created_at) or not 0 <= header.count <= 1 << 31:
            raise ProtocolError("bad_envelope", "batch header time or count is out of range")
        if h.get("v") != PROTOCOL_VERSION:
            raise ProtocolError("bad_envelope", f"unsupported batch version {h.get('v')!r}")
        if header.compression not in COMPRESSIONS:
            raise ProtocolError(
                "unsupported_compression",
                f"batch is compressed with {header.compression!r}, this side "
                f"reads {', '.join(COMPRESSIONS)}: send it with zlib",
            )
    except ProtocolError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError, OverflowError):
        raise ProtocolError("bad_envelope", "batch header is not valid") from None
    signed = body[:-SIG_LEN]
    return header, header_bytes, body[8 + hlen : -SIG_LEN], signed


def _zstd() -> ModuleType:
    """The zstandard module; "zstd" is offered only where it loaded (:data:`COMPRESSIONS`),
    so this refuses only a caller that asks for it anyway."""
    if zstandard is None:  # pragma: no cover - a dependency; a safety net for odd installs
        raise ProtocolError(
            "unsupported_compression", "this side cannot read zstd: send it with zlib"
        )
    return zstandard


def compress(data: bytes, compression: str) -> bytes:
    if compression == "zstd":
        # A compressor per call: one is not to be shared between threads, and making one is
        # cheap beside compressing a batch.
        return _zstd().ZstdCompressor(level=ZSTD_LEVEL).compress(data)
    return zlib.compress(data, ZLIB_LEVEL)


def decompress(data: bytes, compression: str, limit: int) -> bytes:
    """At most ``limit`` bytes out, whatever the data claims (a zstd frame states its own size,
    and a one-shot decompression would trust it: a bomb)."""
    too_large = ProtocolError(
        "batch_too_large", f"batch expands beyond {limit} bytes: send smaller batches"
    )
    if compression == "zstd":
        zstd = _zstd()
        try:
            stated = zstd.frame_content_size(data)
            if 0 <= stated <= limit:  # the frame states a size within the limit: one go
                plain = zstd.ZstdDecompressor().decompress(data, max_output_size=limit)
                if len(plain) != stated:
                    raise zstd.ZstdError("frame content size mismatch")
                return plain
            if stated > limit:
                raise too_large
            with zstd.ZstdDecompressor().stream_reader(data) as reader:
                chunks, size = [], 0
                while size <= limit:
                    chunk = reader.read(min(1 << 20, limit + 1 - size))
                    if not chunk:
                        break
                    chunks.append(chunk)
                    size += len(chunk)
        except zstd.ZstdError:
            raise ProtocolError("bad_envelope", "batch content is not valid zstd data") from None
        if size > limit:
            raise too_large
        return b"".join(chunks)
    d = zlib.decompressobj()
    try:
        plain = d.decompress(data, limit)
    except zlib.error:
        raise ProtocolError("bad_envelope", "batch content is not valid zlib data") from None
    if d.unconsumed_tail:
        raise too_large
    return plain


class OversizedLine(NamedTuple):
    """A line longer than the per-line bound: its bytes were counted and dropped, never held."""

    size: int


STREAM_CHUNK = 64 * 1024  # bytes decompressed per step: the most a batch holds beyond its lines


def _decompressed_chunks(data: bytes, compression: str) -> Iterator[bytes]:
    """The plaintext in chunks of at most :data:`STREAM_CHUNK` bytes, never all at once."""
    if compression == "zstd":
        zstd = _zstd()
        try:
            with zstd.ZstdDecompressor().stream_reader(data) as reader:
                while chunk := reader.read(STREAM_CHUNK):
                    yield chunk
        except zstd.ZstdError:
            raise ProtocolError("bad_envelope", "batch content is not valid zstd data") from None
        return
    d = zlib.decompressobj()
    pending = data
    try:
        while pending:
            chunk = d.decompress(pending, STREAM_CHUNK)
            pending = d.unconsumed_tail
            if chunk:
                yield chunk
            elif not pending:
                break
        if not d.eof:
            tail = d.flush()
            if tail:
                yield tail
    except zlib.error:
        raise ProtocolError("bad_envelope", "batch content is not valid zlib data") from None


def iter_batch_lines(
    data: bytes, compression: str, *, max_total: int, max_line: int, max_lines: int
) -> Iterator[bytes | OversizedLine]:
    """Decompress and split a batch's plaintext as a stream, with bounds.

    Yields each line (the record's bytes as sent), or :class:`OversizedLine` for a line beyond
    ``max_line`` bytes (its bytes are skipped as they come: the record is refused alone).
    Raises :class:`ProtocolError` as soon as the plaintext passes ``max_total`` bytes
    (``batch_too_large``) or holds more than ``max_lines`` lines (``bad_envelope``). At most
    one chunk and one line are held at a time, whatever the data expands to."""
    total = newlines = 0
    part = bytearray()  # the line being read, when it started in an earlier chunk
    skipped = -1  # bytes of the line being skipped, -1 when none is

    for chunk in _decompressed_chunks(data, compression):
        total += len(chunk)
        if total > max_total:
            raise ProtocolError(
                "batch_too_large", f"batch expands beyond {max_total} bytes: send smaller batches"
            )
        ends = chunk.count(b"\n")
        newlines += ends
        if newlines >= max_lines:  # the text after the last newline is one more line
            raise ProtocolError(
                "bad_envelope", f"batch holds more than the {max_lines} records its header says"
            )
        if not ends:
            if skipped >= 0:
                skipped += len(chunk)
            elif len(part) + len(chunk) > max_line:
                skipped, part = len(part) + len(chunk), bytearray()
            else:
                part += chunk
            continue
        pieces = chunk.split(b"\n")
        first = pieces[0]
        if skipped >= 0:  # the line begun before ends here
            yield OversizedLine(skipped + len(first))
        elif part:
            size = len(part) + len(first)
            yield OversizedLine(size) if size > max_line else bytes(part) + first
        else:
            yield first if len(first) <= max_line else OversizedLine(len(first))
        for piece in pieces[1:-1]:  # whole lines: the common case, no copy
            yield piece if len(piece) <= max_line else OversizedLine(len(piece))
        last = pieces[-1]
        if len(last) > max_line:
            skipped, part = len(last), bytearray()
        else:
            skipped, part = -1, bytearray(last)
    if total:
        yield OversizedLine(skipped) if skipped >= 0 else bytes(part)


def verify_batch_signature(body: bytes, signed: bytes, device_public: Ed25519PublicKey) -> None:
    try:
        device_public.verify(body[-SIG_LEN:], signed)
    except InvalidSignature:
        raise ProtocolError(
            "bad_signature", "the batch signature does not match the device key"
        ) from None


def open_batch(
    header: BatchHeader,
    header_bytes: bytes,
    ciphertext: bytes,
    town_x25519: X25519PrivateKey,
    max_plain_bytes: int,
) -> OpenedBatch:
    compressed = open_sealed(
        town_x25519, header.eph_pub, ciphertext, header.batch_id.encode(), header_bytes
    )
    plain = decompress(compressed, header.compression, max_plain_bytes)
    lines = plain.split(b"\n") if plain else []
    if len(lines) != header.count:
        raise ProtocolError(
            "bad_envelope", f"header says {header.count} records, the batch holds {len(lines)}"
        )
    return OpenedBatch(header, lines)


def open_batch_stream(
    header: BatchHeader,
    header_bytes: bytes,
    ciphertext: bytes,
    town_x25519: X25519PrivateKey,
    *,
    max_plain_bytes: int,
    max_line_bytes: int,
) -> Iterator[bytes | OversizedLine]:
    """Open a batch and stream its lines (see :func:`iter_batch_lines`): exactly
    ``header.count`` of them, or a :class:`ProtocolError` once that is known to be false."""
    compressed = open_sealed(
        town_x25519, header.eph_pub, ciphertext, header.batch_id.encode(), header_bytes
    )
    count = 0
    for line in iter_batch_lines(
        compressed,
        header.compression,
        max_total=max_plain_bytes,
        max_line=max_line_bytes,
        max_lines=header.count,
    ):
        count += 1
        yield line
    if count != header.count:
        raise ProtocolError(
            "bad_envelope", f"header says {header.count} records, the batch holds {count}"
        )


# --- signed documents (town → device) ---------------------------------------------------------


def sign_document(key: Ed25519PrivateKey, payload: dict[str, Any]) -> dict[str, str]:
    text = canonical_json(payload)
    return {"payload": text.decode(), "signature": b64e(key.sign(text))}


def verify_document(doc: Any, town_public: Ed25519PublicKey) -> dict[str, Any]:
    try:
        text = doc["payload"].encode()
        signature = b64d(doc["signature"])
    except (KeyError, TypeError, AttributeError):
        raise ProtocolError("bad_envelope", "signed document is malformed") from None
    try:
        town_public.verify(signature, text)
    except InvalidSignature:
        raise ProtocolError(
            "bad_signature", "the update is not signed by the pinned town key"
        ) from None
    result = json.loads(text)
    if not isinstance(result, dict):
        raise ProtocolError("bad_envelope", "signed document payload is not an object")
    return result


def document_payload_unverified(doc: Any) -> dict[str, Any]:
    """Read a payload before its key is known (enrollment: checked against the token's
    fingerprint right after)."""
    try:
        result = json.loads(doc["payload"])
    except (KeyError, TypeError, ValueError):
        raise ProtocolError("bad_envelope", "signed document is malformed") from None
    if not isinstance(result, dict):
        raise ProtocolError("bad_envelope", "signed document payload is not an object")
    return result


# --- request signatures (device → town, for GET) ----------------------------------------------


def request_signing_text(method: str, path: str, query: str, device_id: str, ts: str) -> bytes:
    return f"fieldkit/req/v1\n{method}\n{path}\n{query}\n{device_id}\n{ts}".encode()


def sign_request(
    key: Ed25519PrivateKey, device_id: str, method: str, path: str, query: str
) -> dict[str, str]:
    ts = f"{time.time():.3f}"
    sig = key.sign(request_signing_text(method, path, query, device_id, ts))
    return {
        "X-Fieldkit-Device": device_id,
        "X-Fieldkit-Time": ts,
        "X-Fieldkit-Signature": b64e(sig),
    }


def verify_request(
    public: Ed25519PublicKey, headers: dict[str, str], method: str, path: str, query: str
) -> float:
    """Returns the request time claimed by the device (checked against a window by the caller)."""
    try:
        ts = headers["x-fieldkit-time"]
        sig = b64d(headers["x-fieldkit-signature"])
        device_id = headers["x-fieldkit-device"]
        public.verify(sig, request_signing_text(method, path, query, device_id, ts))
        claimed = float(ts)
    except (KeyError, InvalidSignature, ValueError):
        raise ProtocolError(
            "bad_signature", "request signature does not match the device key"
        ) from None
    if not math.isfinite(claimed):
        raise ProtocolError("bad_request_time", f"request time {ts[:32]!r} is not a time")
    return claimed
