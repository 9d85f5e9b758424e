"""Cryptographic primitives of the local store.

- Field encryption: AES-256-GCM, 12-byte random nonce, associated data = ``record id + field``,
  so a ciphertext copied to another row or column fails to open.
- Blind index: HMAC-SHA256 of the normalised ID number under its own key (never the data key).
- Key wrapping: each operator has an X25519 key pair whose private half is wrapped with a key
  derived from the PIN (Argon2id by default; scrypt for keys made before, still opened); the
  master secret (data key of the current epoch ‖ index key) is sealed to every operator's public
  half, so a supervisor can hand a new data-key epoch to the others without knowing their PINs.
- Data-key epochs: a field ciphertext names the epoch whose key sealed it (``F1`` = epoch 0,
  ``F2`` + 2-byte epoch), so removing an operator can start a new epoch the removed PIN never saw.

No textual, no sqlite here: the sync server imports ``blind_index`` from this module.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from .errors import TamperedError

FIELD_PREFIX = b"F1"  # version tag of the field-ciphertext layout (data-key epoch 0)
EPOCH_PREFIX = b"F2"  # followed by the data-key epoch as 2 bytes, big-endian


def new_record_id() -> str:
    """A random (version 4) UUID as text, without the uuid module's object overhead."""
    h = bytearray(os.urandom(16))
    h[6] = (h[6] & 0x0F) | 0x40
    h[8] = (h[8] & 0x3F) | 0x80
    x = h.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def new_key() -> bytes:
    return secrets.token_bytes(32)


def _aad(record_id: str, field: str) -> bytes:
    return f"{record_id}\x1f{field}".encode()


class FieldCipher:
    """Encrypts and decrypts personal fields with the unwrapped data key(s).

    ``data_key`` is the key of the current epoch (``epoch``); ``older`` the keys of earlier
    epochs, for reading what they sealed. New ciphertexts always use the current epoch."""

    def __init__(
        self, data_key: bytes, epoch: int = 0, older: dict[int, bytes] | None = None
    ) -> None:
        self.epoch = epoch
        self._aead = AESGCM(data_key)
        self._by_epoch = {e: AESGCM(k) for e, k in (older or {}).items()}
        self._by_epoch[epoch] = self._aead
        self._prefix = FIELD_PREFIX if epoch == 0 else EPOCH_PREFIX + epoch.to_bytes(2, "big")

    def encrypt(self, record_id: str, field: str, value: str | None) -> bytes | None:
        if value is None:
            return None
        nonce = os.urandom(12)
        return (
            self._prefix + nonce + self._aead.encrypt(nonce, value.encode(), _aad(record_id, field))
        )

    def encrypt_fields(
        self, record_id: str, values: dict[str, str | None]
    ) -> dict[str, bytes | None]:
        """Several fields of one record, with one draw of randomness for all their nonces."""
        present = [(f, v) for f, v in values.items() if v is not None]
        randomness = os.urandom(12 * len(present))
        out: dict[str, bytes | None] = dict.fromkeys(values)
        seal, prefix = self._aead.encrypt, self._prefix
        for i, (field, value) in enumerate(present):
            nonce = randomness[12 * i : 12 * i + 12]
            out[field] = prefix + nonce + seal(nonce, value.encode(), _aad(record_id, field))
        return out

    def decrypt(self, record_id: str, field: str, blob: bytes | None) -> str | None:
        if blob is None:
            return None
        blob = bytes(blob)
        head = blob[:2]
        if head == FIELD_PREFIX:
            epoch, body = 0, blob[2:]
        elif head == EPOCH_PREFIX and len(blob) > 4:
            epoch, body = int.from_bytes(blob[2:4], "big"), blob[4:]
        else:
            epoch, body = -1, b""
        if len(body) < 12 + 16 or epoch < 0:
            raise TamperedError(f"record {record_id}: field {field} is not a FieldKit ciphertext")
        aead = self._by_epoch.get(epoch)
        if aead is None:
            raise TamperedError(
                f"record {record_id}: field {field} was sealed under data-key epoch {epoch}, "
                "which this login cannot open"
            )
        try:
            return aead.decrypt(body[:12], body[12:], _aad(record_id, field)).decode()
        except (InvalidTag, UnicodeDecodeError):
            raise TamperedError(
                f"record {record_id}: field {field} failed its integrity check (tampered)"
            ) from None


_HMAC_PADS: dict[bytes, tuple[Any, Any]] = {}


def _hmac_sha256(key: bytes, message: bytes) -> bytes:
    """HMAC-SHA256 (RFC 2104) from SHA-256 states keyed once per key: OpenSSL's own HMAC sets
    itself up again on every call, which costs three times the hashing of a short message."""
    pads = _HMAC_PADS.get(key)
    if pads is None:
        block = (hashlib.sha256(key).digest() if len(key) > 64 else key).ljust(64, b"\0")
        pads = (
            hashlib.sha256(bytes(b ^ 0x36 for b in block)),
            hashlib.sha256(bytes(b ^ 0x5C for b in block)),
        )
        if len(_HMAC_PADS) > 16:  # a handful of keys per process; never grow without bound
            _HMAC_PADS.clear()
        _HMAC_PADS[key] = pads
    inner, outer = pads[0].copy(), pads[1].copy()
    inner.update(message)
    outer.update(inner.digest())
    return outer.digest()


def blind_index(index_key: bytes, id_number: str) -> str:
    """Deterministic, keyed look-up hash of an ID number (hex, 64 chars): HMAC-SHA256."""
    normalised = "".join(id_number.split()).upper()
    return _hmac_sha256(index_key, normalised.encode()).hex()


# The key-person list's lookup hash: Argon2id over the normalised ID number, salted per town
# (a salt derived from the town's index key). Fixed parameters: the town and every device must
# compute the same hash. ≈ 25 ms on one core of the build machine (bench/keyperson_hash.py), so
# reversing the list over ~1.1e11 plausible resident ID numbers costs about a century of core
# time, against ~2 core-days for the HMAC blind index it replaces; one hash per scan at the gate.
KEYPERSON_PREFIX = "k1:"
KEYPERSON_T, KEYPERSON_M_KIB = 1, 16384


def keyperson_hash(town_index_key: bytes, id_number: str) -> str:
    """The key-person list's slow, town-salted hash of an ID number (``k1:`` + 64 hex)."""
    from argon2.low_level import Type, hash_secret_raw

    salt = _hmac_sha256(town_index_key, b"fieldkit-keyperson-salt-v1")[:16]
    normalised = "".join(id_number.split()).upper()
    digest = hash_secret_raw(
        normalised.encode(),
        salt,
        time_cost=KEYPERSON_T,
        memory_cost=KEYPERSON_M_KIB,
        parallelism=1,
        hash_len=32,
        type=Type.ID,
    )
    return KEYPERSON_PREFIX + digest.hex()


def derive_pin_key(pin: str, salt: bytes, n: int, r: int = 8, p: int = 1) -> bytes:
    """scrypt: the PIN KDF of stores made before Argon2id (still opened, rewrapped at login)."""
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(pin.encode())


def derive_pin_key_argon2id(
    pin: str, salt: bytes, time_cost: int, memory_kib: int, parallelism: int
) -> bytes:
    """Argon2id (RFC 9106) through argon2-cffi: memory-hard, so a GPU farm gains little."""
    from argon2.low_level import Type, hash_secret_raw

    return hash_secret_raw(
        pin.encode(),
        salt,
        time_cost=time_cost,
        memory_cost=memory_kib,
        parallelism=parallelism,
        hash_len=32,
        type=Type.ID,
    )


def hkdf(key: bytes, info: str, length: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info.encode()).derive(key)


def new_keypair() -> tuple[bytes, bytes]:
    """(private, public) X25519 key pair as raw 32-byte strings."""
    private = X25519PrivateKey.generate()
    raw = serialization.Encoding.Raw
    return (
        private.private_bytes(raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()),
        private.public_key().public_bytes(raw, serialization.PublicFormat.Raw),
    )


def seal(public: bytes, secret: bytes, label: str) -> bytes:
    """``secret`` sealed to an X25519 public key: ephemeral key ‖ nonce ‖ AES-GCM ciphertext."""
    eph, eph_pub = new_keypair()
    shared = X25519PrivateKey.from_private_bytes(eph).exchange(
        X25519PublicKey.from_public_bytes(public)
    )
    key = hkdf(shared + eph_pub + public, label)
    return eph_pub + wrap(key, secret, label)


def open_sealed(private: bytes, blob: bytes, label: str) -> bytes | None:
    """What :func:`seal` sealed, or None when the key or the blob is wrong."""
    if len(blob) < 32 + 12 + 16 or len(private) != 32:
        return None
    priv = X25519PrivateKey.from_private_bytes(private)
    public = priv.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    shared = priv.exchange(X25519PublicKey.from_public_bytes(blob[:32]))
    return unwrap(hkdf(shared + blob[:32] + public, label), blob[32:], label)


def wrap(kek: bytes, secret: bytes, label: str) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(kek).encrypt(nonce, secret, label.encode())


def unwrap(kek: bytes, blob: bytes, label: str) -> bytes | None:
    """The wrapped secret, or None when the key is wrong."""
    try:
        return AESGCM(kek).decrypt(blob[:12], blob[12:], label.encode())
    except InvalidTag:
        return None


def new_recovery_key() -> str:
    """A printable recovery key: 32 random bytes in base32, grouped by 4 (e.g. ABCD-EFGH-...)."""
    raw = base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")
    return "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))


def recovery_kek(recovery_key: str, salt: bytes) -> bytes:
    """The recovery key has 160 bits of entropy: a fast KDF is enough."""
    cleaned = recovery_key.replace("-", "").replace(" ", "").upper()
    return hashlib.pbkdf2_hmac("sha256", cleaned.encode(), salt, 10_000)


def content_hash(canonical_json: bytes) -> str:
    return hashlib.sha256(canonical_json).hexdigest()
