"""Wire records on the server: one JSON line checked and indexed (:func:`parse_record`, the
ingest hot path) and its body encrypted at rest (:func:`encrypt_body`, :func:`decrypt_body`).
"""

from __future__ import annotations

import os
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any, TypeGuard

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .. import protocol as p
from .repository import IngestRecord

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


BODY_PREFIX = b"R1"  # version tag of record bodies encrypted at rest


_loads = p.loads  # orjson on the ingest path, with the standard library's acceptance


def encrypt_body(cipher: AESGCM, record_id: str, line: bytes, nonce: bytes | None = None) -> bytes:
    nonce = nonce or os.urandom(12)
    return BODY_PREFIX + nonce + cipher.encrypt(nonce, line, b"record:" + record_id.encode())


def decrypt_body(cipher: AESGCM, record_id: str, blob: bytes) -> bytes:
    blob = bytes(blob)
    return cipher.decrypt(blob[2:14], blob[14:], b"record:" + record_id.encode())


def _is_hash(value: object) -> TypeGuard[str]:
    """64 lower-case hex digits (``str.strip`` with the digit set: a third of a regex's cost)."""
    return value.__class__ is str and len(value) == 64 and not value.strip("0123456789abcdef")


def _short_text(value: Any, name: str, limit: int = 128) -> str | None:
    if value is None or (value.__class__ is str and len(value) <= limit):
        return value
    raise ValueError(f"{name} must be text of at most {limit} characters")


MIN_RECORD_TIME = 946684800.0  # 2000-01-01T00:00Z: no record is older than FieldKit


MAX_RECORD_FUTURE_S = 2 * 86400.0  # a record time further ahead of the server clock is refused


def parse_record(
    index: int,
    line: bytes,
    cipher: AESGCM,
    max_bytes: int,
    nonce: bytes | None = None,
    latest: float | None = None,
) -> IngestRecord:
    """One wire record → a row; ValueError says in plain words what is wrong with it.

    This runs once per record on the server's hot path (about half of its CPU time per record
    before the database): orjson, pre-compiled patterns and no helper calls in the common case.
    ``nonce``: 12 random bytes for the at-rest encryption (the caller draws them for a whole
    batch at once); drawn here when not given. ``latest``: the latest record time taken (the
    server clock plus :data:`MAX_RECORD_FUTURE_S` when not given); record times must fall
    between :data:`MIN_RECORD_TIME` and it.
    """
    if len(line) > max_bytes:
        raise ValueError(f"record is {len(line)} bytes, the limit is {max_bytes}")
    try:
        obj = _loads(line)
    except (ValueError, UnicodeDecodeError):
        raise ValueError("record is not valid JSON") from None
    except RecursionError:
        raise ValueError("record is nested too deeply") from None
    if obj.__class__ is not dict:
        raise ValueError("record is not a JSON object")
    get = obj.get
    record_id = get("id")
    if record_id.__class__ is not str or not _UUID.fullmatch(record_id):
        try:  # upper case or without dashes: accept, store in the canonical form
            record_id = str(uuid.UUID(str(record_id)))
        except ValueError:
            raise ValueError(f"record id {get('id')!r} is not a UUID") from None
    kind = get("kind")
    if kind.__class__ is not str or not 0 < len(kind) <= 32:
        raise ValueError("record kind is missing")
    content_hash = get("hash")
    if not _is_hash(content_hash):
        raise ValueError("content hash must be 64 lower-case hex digits")
    body = get("body")
    if body.__class__ is not dict:
        raise ValueError("record body is missing")
    # What the server indexes comes from the body (``ts``, ``id_hash_town`` ...). Devices before
    # this version also sent it beside the body, as ``at`` and ``id_hash``: that copy is used
    # when present.
    if "at" in obj:
        at_text, id_hash = get("at"), get("id_hash")
    else:
        get = body.get
        at_text, id_hash = get("ts"), get("id_hash_town")
    occurred_at = day = None
    if at_text is not None:
        try:
            at = datetime.fromisoformat(at_text)
            day = at.date().isoformat()  # the gate's local day, as the device wrote it
            if at.tzinfo is None:
                at = at.replace(tzinfo=UTC)
            occurred_at = at.timestamp()
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"time {str(at_text)[:40]!r} is not ISO 8601") from None
        if latest is None:
            latest = time.time() + MAX_RECORD_FUTURE_S
        if not MIN_RECORD_TIME <= occurred_at <= latest:
            raise ValueError(
                f"time {at_text[:40]!r} is out of range (before 2000 or ahead of the server clock)"
            )
    if id_hash is not None and not _is_hash(id_hash):
        raise ValueError("id_hash must be 64 lower-case hex digits")
    nonce = nonce or os.urandom(12)
    return IngestRecord(
        index,
        record_id,
        kind,
        content_hash,
        occurred_at,
        day,
        _short_text(get("checkpoint"), "checkpoint"),
        _short_text(get("direction"), "direction", 16),
        id_hash,
        _short_text(get("name_masked"), "name_masked"),
        _short_text(get("id_masked"), "id_masked"),
        BODY_PREFIX + nonce + cipher.encrypt(nonce, line, b"record:" + record_id.encode()),
    )
