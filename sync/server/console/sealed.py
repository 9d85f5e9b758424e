"""The two server formats the console reads, restated here so that the console does not import
``sync.server.app`` (which mounts the console: that import would be a cycle).

``tests/test_console_units.py`` holds them byte-equal to ``sync.server.app``'s own.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def decrypt_body(cipher: AESGCM, record_id: str, blob: bytes) -> bytes:
    """A record body sealed at rest: ``R1`` + 12-byte nonce + AES-GCM, record id as AAD."""
    blob = bytes(blob)
    return cipher.decrypt(blob[2:14], blob[14:], b"record:" + record_id.encode())


def token_hash(token: str) -> str:
    """What the devices table keeps of a one-time enrollment token."""
    secret = token.split(".", 1)[0].strip().upper()
    return hashlib.sha256(b"fieldkit/token/v1" + secret.encode()).hexdigest()
