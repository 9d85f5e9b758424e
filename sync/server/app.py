"""The town server's HTTP API (FastAPI on uvicorn).

Endpoints (paths in :mod:`sync.protocol`):

- ``GET  /v1/info``     public keys' fingerprint, limits, server time;
- ``POST /v1/enroll``   a one-time token + the device's public key → its id and the town keys;
- ``POST /v1/batches``  a sealed, signed batch → each record's fate;
- ``GET  /v1/updates``  signed key-person, revocation, rule and mode changes since a cursor.

Every refusal is a JSON ``{"error": code, "message": one line}`` with a fitting status, is logged
on the ``fieldkit.server`` logger, and stores nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect

from fieldkit.i18n import current_language, has_key, t

from .. import protocol as p
from .device_scope import DeviceScopes
from .ledger import KIND as LEDGER_KIND
from .ledger import LedgerCodec, LedgerEdit
from .repository import (
    BatchAlreadyIngested,
    BatchMeta,
    IngestOutcome,
    IngestRecord,
    Repository,
)
from .town import ServerSettings, TownKeys

log = logging.getLogger("fieldkit.server")

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
BODY_PREFIX = b"R1"  # version tag of record bodies encrypted at rest

_loads = p.loads  # orjson on the ingest path, with the standard library's acceptance


class Refusal(Exception):
    """``message`` is the English sentence (log, English servers); ``key`` + ``params`` say it
    in the server's language (else the code's ``http.<code>`` words)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict | None = None,
        key: str | None = None,
        **params: Any,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers
        self.key, self.params = key, params

    def text(self, lang: str | None = None) -> str:
        """The human sentence of the HTTP body, in the server's language."""
        lang = lang or current_language()
        if lang == "en":
            return self.message
        if self.key:
            return t(self.key, lang, **self.params)
        if has_key("http." + self.code):
            return t("http." + self.code, lang)
        return self.message


def token_hash(token: str) -> str:
    secret = token.split(".", 1)[0].strip().upper()
    return hashlib.sha256(b"fieldkit/token/v1" + secret.encode()).hexdigest()


class RateLimiter:
    """Token bucket per key (device id, or client address before enrollment)."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def peek(self, key: str) -> float:
        """0 if one request would be allowed now, else seconds to wait; nothing is taken."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate

    def check(self, key: str) -> float:
        """0 if allowed (one token taken), else seconds to wait."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                return (1 - tokens) / self.rate
            self._buckets[key] = (tokens - 1, now)
            if len(self._buckets) > 100_000:  # forget idle keys rather than grow forever
                self._buckets.clear()
            return 0.0


def encrypt_body(cipher: AESGCM, record_id: str, line: bytes, nonce: bytes | None = None) -> bytes:
    nonce = nonce or os.urandom(12)
    return BODY_PREFIX + nonce + cipher.encrypt(nonce, line, b"record:" + record_id.encode())


def decrypt_body(cipher: AESGCM, record_id: str, blob: bytes) -> bytes:
    blob = bytes(blob)
    return cipher.decrypt(blob[2:14], blob[14:], b"record:" + record_id.encode())


def _is_hash(value: Any) -> bool:
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


@dataclass
class AuthenticatedBatch:
    """A batch whose signature verified: what ingest needs next."""

    header: p.BatchHeader
    header_bytes: bytes
    ciphertext: bytes
    device: Any


@dataclass
class TownServer:
    """What the endpoints share: keys, settings, storage, limits.

    ``scopes``: the checkpoints each device may write for; ``insecure_http``: serving plain
    HTTP beyond this machine (``serve --insecure-http``), warned about at every enrollment.
    """

    keys: TownKeys
    repo: Repository
    settings: ServerSettings
    scopes: DeviceScopes | None = None
    insecure_http: bool = False

    def __post_init__(self) -> None:
        self.cipher = AESGCM(self.keys.data_key)
        self.ledger_codec = LedgerCodec(self.keys.data_key, self.keys.index_key)
        # A device's quota counts only requests its signature proved; everything not (yet)
        # proved to come from a device counts against the client's address.
        self.limiter = RateLimiter(self.settings.rate_per_second, self.settings.rate_burst)
        self.address_limiter = RateLimiter(
            self.settings.address_rate_per_second, self.settings.address_burst
        )
        self.scopes = self.scopes or DeviceScopes(None)

    # limits ----------------------------------------------------------------------------------
    def gate_address(self, address: str) -> None:
        """Before any work: an address whose unauthenticated quota is spent waits."""
        wait = self.address_limiter.peek(address)
        if wait:
            raise _too_many(f"client {address}", wait)

    def charge_address(self, address: str) -> None:
        self.address_limiter.check(address)

    def charge_device(self, device_id: str) -> None:
        wait = self.limiter.check(device_id)
        if wait:
            raise _too_many(f"device {device_id}", wait)

    # enrollment ------------------------------------------------------------------------------
    def enroll(self, req: dict[str, Any]) -> dict[str, Any]:
        try:
            token = req["token"]
            if not isinstance(token, str) or not 0 < len(token) <= 512:
                raise TypeError("token must be text")
            public_key = p.b64d(_text(req["public_key"]))
            p.load_ed25519_public(public_key)
            seal_to = p.load_x25519_public(p.b64d(_text(req["seal_to"])))
        except KeyError as err:
            raise Refusal(400, "bad_request", f"enrollment request lacks {err}") from None
        except (TypeError, p.ProtocolError) as err:
            raise Refusal(400, "bad_request", f"enrollment request is malformed ({err})") from None
        device = self.repo.enroll_device(token_hash(token), public_key, time.time())
        if device is None:
            raise Refusal(
                401,
                "bad_token",
                "enrollment token is unknown, used or expired: ask the town office "
                "for a new one (fieldkit-server device add NAME)",
                key="srvhttp.bad_token",
            )
        eph, sealed = p.seal(seal_to, self.keys.index_key, b"enroll:" + device.device_id.encode())
        log.info("device %s (%s) enrolled", device.device_id, device.name)
        if self.insecure_http:
            log.warning(
                "device %s (%s) enrolled over plain HTTP (--insecure-http): its token and "
                "records crossed the network unencrypted; serve with TLS",
                device.device_id,
                device.name,
            )
        return p.sign_document(
            self.keys.ed25519,
            {
                "device_id": device.device_id,
                "name": device.name,
                "town_ed25519": p.b64e(self.keys.ed25519_public),
                "town_x25519": p.b64e(self.keys.x25519_public),
                "fingerprint": self.keys.fingerprint,
                "index_key_sealed": {"eph": p.b64e(eph), "blob": p.b64e(sealed)},
                "max_batch_records": self.settings.max_batch_records,
                "max_body_bytes": self.settings.max_body_bytes,
                "compression": list(p.COMPRESSIONS),
                "server_time": time.time(),
            },
        )

    def _active_device(self, device_id: str):
        device = self.repo.get_device(device_id) if 0 < len(device_id) <= 64 else None
        if device is None or device.status == "pending" or device.public_key is None:
            raise Refusal(
                401,
                "unknown_device",
                f"device {device_id[:64]!r} is not enrolled at this server: enroll it "
                "with a new token (fieldkit-server device add NAME)",
                key="srvhttp.unknown_device",
                device=device_id[:64],
            )
        if device.status == "revoked":
            raise Refusal(
                403,
                "device_revoked",
                f"device {device.name!r} was revoked by the town office: ask them to "
                "enroll it again",
                key="srvhttp.device_revoked",
                device=device.name,
            )
        return device

    # upload ----------------------------------------------------------------------------------
    def authenticate_batch(self, body: bytes, claimed_device: str | None) -> AuthenticatedBatch:
        """Envelope and signature only (cheap): nothing is decrypted or decompressed."""
        try:
            header, header_bytes, ciphertext, signed = p.read_batch_header(body)
        except p.ProtocolError as err:
            raise Refusal(400, err.code, str(err)) from None
        if claimed_device and claimed_device != header.device_id:
            raise Refusal(400, "bad_envelope", "device id of the request and the batch differ")
        device = self._active_device(header.device_id)
        try:
            p.verify_batch_signature(body, signed, p.load_ed25519_public(device.public_key))
        except p.ProtocolError as err:
            raise Refusal(401, err.code, str(err)) from None
        return AuthenticatedBatch(header, header_bytes, ciphertext, device)

    def ingest(self, body: bytes, claimed_device: str | None) -> dict[str, Any]:
        return self.ingest_verified(self.authenticate_batch(body, claimed_device))

    def ingest_verified(self, auth: AuthenticatedBatch) -> dict[str, Any]:
        header, device = auth.header, auth.device
        if header.count > self.settings.max_batch_records:
            raise Refusal(
                413,
                "batch_too_large",
                f"batch has {header.count} records, the server takes at most "
                f"{self.settings.max_batch_records}: lower sync.batch_size",
                key="srvhttp.batch_too_large",
                count=header.count,
                max=self.settings.max_batch_records,
            )
        previous = self.repo.batch_reply(header.batch_id)
        if previous is not None:
            log.warning(
                "batch %s from device %s sent again: answered from the record, nothing stored",
                header.batch_id,
                device.device_id,
            )
            return {**previous, "replayed": True}
        now = time.time()
        if not abs(now - header.created_at) <= self.settings.max_batch_age_s:
            raise Refusal(
                400,
                "stale_batch",
                f"batch was made at {_iso(header.created_at)}, too far from the server "
                f"time {_iso(now)} (a replay, or the device clock is wrong): check "
                "the device clock and sync again",
                key="srvhttp.stale_batch",
                made=_iso(header.created_at),
                now=_iso(now),
            )
        records: list[IngestRecord] = []
        rejected: dict[int, tuple[str, str]] = {}
        ids: dict[int, str | None] = {}
        edits: list[LedgerEdit] = []
        nonces = os.urandom(12 * header.count)  # one system call for the whole batch
        max_record = self.settings.max_record_bytes
        latest = now + MAX_RECORD_FUTURE_S
        allowed = self.scopes.checkpoints(device.device_id)
        lines = p.open_batch_stream(
            header,
            auth.header_bytes,
            auth.ciphertext,
            self.keys.x25519,
            max_plain_bytes=self.settings.max_plain_bytes,
            max_line_bytes=max_record,
        )
        try:
            for i, line in enumerate(lines):
                if line.__class__ is p.OversizedLine:
                    rejected[i] = (
                        p.REJECTED,
                        f"rejected: record is {line.size} bytes, the limit is {max_record}",
                    )
                    ids[i] = None
                    continue
                try:
                    rec = parse_record(
                        i, line, self.cipher, max_record, nonces[12 * i : 12 * i + 12], latest
                    )
                    if (
                        allowed is not None
                        and rec.checkpoint is not None
                        and rec.checkpoint not in allowed
                    ):
                        codes = ", ".join(sorted(allowed))
                        raise ValueError(
                            f"this device is enrolled for checkpoint(s) {codes}, "
                            f"not {rec.checkpoint!r}"
                        )
                    if rec.kind == LEDGER_KIND:
                        edits.append(
                            self.ledger_codec.parse(i, rec.record_id, _loads(line)["body"])
                        )
                except (ValueError, RecursionError) as err:
                    rejected[i] = (p.REJECTED, f"rejected: {_one_line(err)}")
                    ids[i] = _best_effort_id(line)
                    continue
                except Exception as err:  # noqa: BLE001 - one record never sinks its batch
                    log.exception("record %d of batch %s could not be read", i, header.batch_id)
                    rejected[i] = (
                        p.REJECTED,
                        f"rejected: the server could not read this record ({type(err).__name__})",
                    )
                    ids[i] = _best_effort_id(line)
                    continue
                records.append(rec)
                ids[i] = rec.record_id
        except p.ProtocolError as err:
            status = 413 if err.code == "batch_too_large" else 400
            raise Refusal(status, err.code, str(err)) from None

        def build_reply(outcome: IngestOutcome) -> dict[str, Any]:
            return {
                "batch_id": header.batch_id,
                "received": header.count,
                "counts": outcome.counts(header.count),
                # Records not listed here were stored.
                "fates": [
                    [i, ids.get(i), status, reason]
                    for i, (status, reason) in sorted(outcome.fates.items())
                ],
            }

        meta = BatchMeta(header.batch_id, device.device_id, header.created_at, header.count)
        try:
            reply = self.repo.ingest(
                meta, records, rejected, build_reply, now, ledger=edits or None
            )
        except BatchAlreadyIngested as again:
            return {**again.reply, "replayed": True}
        c = reply["counts"]
        log.info(
            "batch %s from %s: %d stored, %d duplicate, %d conflict, %d rejected",
            header.batch_id,
            device.name,
            c["stored"],
            c["duplicate"],
            c["conflict"],
            c["rejected"],
        )
        return reply

    # download --------------------------------------------------------------------------------
    def authenticate_request(
        self, headers: dict[str, str], path: str, query: str
    ) -> tuple[Any, float]:
        """A signed GET: (device, its claimed time), or a refusal."""
        device = self._active_device(headers.get("x-fieldkit-device", ""))
        try:
            claimed = p.verify_request(
                p.load_ed25519_public(device.public_key), headers, "GET", path, query
            )
        except p.ProtocolError as err:
            raise Refusal(401, err.code, str(err)) from None
        now = time.time()
        if not abs(now - claimed) <= self.settings.request_window_s:
            raise Refusal(
                401,
                "clock_skew",
                f"request time {_iso(claimed)} is too far from the server time "
                f"{_iso(now)}: set the device clock",
                key="srvhttp.clock_skew",
                time=_iso(claimed),
                now=_iso(now),
            )
        return device, claimed

    def updates(
        self, headers: dict[str, str], path: str, query: str, cursor: int
    ) -> dict[str, Any]:
        device, _ = self.authenticate_request(headers, path, query)
        return self.updates_for(device, headers, cursor)

    def updates_for(self, device: Any, headers: dict[str, str], cursor: int) -> dict[str, Any]:
        """The signed update. ``seq`` (the newest change it reaches: never lower than the
        cursor the device holds) and ``issued_at`` let a device refuse an older update;
        ``request_time`` echoes the signed request's time, so an update recorded on the way
        and replayed to a later request does not match it."""
        now = time.time()
        changes = self.repo.changes_since(cursor, self.settings.updates_page)
        keypersons: dict[str, dict[str, Any] | None] = {}
        revocations: list[str] = []
        rules = mode = None
        for ch in changes:
            if ch.kind == "keyperson":
                keypersons[ch.data["id_hash"]] = ch.data
            elif ch.kind == "keyperson_removed":
                keypersons[ch.data["id_hash"]] = None
            elif ch.kind == "revocation":
                revocations.append(ch.data["pass_id"])
            elif ch.kind == "rules":
                rules = ch.data
            elif ch.kind == "mode":
                mode = ch.data
        new_cursor = changes[-1].seq if changes else cursor
        return p.sign_document(
            self.keys.ed25519,
            {
                "device_id": device.device_id,
                "cursor_from": cursor,
                "cursor": new_cursor,
                "seq": new_cursor,
                "more": len(changes) >= self.settings.updates_page,
                "issued_at": now,
                "request_time": headers.get("x-fieldkit-time", "")[:32],
                "keypersons": [e for e in keypersons.values() if e is not None],
                "keypersons_removed": [h for h, e in keypersons.items() if e is None],
                "revocations": revocations,
                "rules": rules,
                "mode": mode,
                "compression": list(p.COMPRESSIONS),
            },
        )

    def info(self) -> dict[str, Any]:
        return {
            "protocol": p.PROTOCOL_VERSION,
            "fingerprint": self.keys.fingerprint,
            "max_batch_records": self.settings.max_batch_records,
            "max_body_bytes": self.settings.max_body_bytes,
            "compression": list(p.COMPRESSIONS),
            "server_time": time.time(),
        }


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def _best_effort_id(line: bytes) -> str | None:
    try:
        value = _loads(line).get("id")
        return value if isinstance(value, str) and len(value) <= 64 else None
    except (ValueError, AttributeError, UnicodeDecodeError, RecursionError):
        return None


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {type(value).__name__}")
    return value


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())[:300] or type(err).__name__


def _too_many(who: str, wait: float) -> Refusal:
    return Refusal(
        429,
        "rate_limited",
        f"too many requests from {who}: wait {wait:.1f} s",
        {"Retry-After": str(max(1, round(wait)))},
        key="srvhttp.rate_limited",
        wait=f"{wait:.1f}",
    )


MAX_CURSOR = (1 << 63) - 1


def _cursor(request: Request) -> int:
    text = request.query_params.get("cursor", "0")
    if not (text.isascii() and text.isdigit() and len(text) <= 19 and int(text) <= MAX_CURSOR):
        raise Refusal(
            400,
            "bad_cursor",
            f"cursor {text[:24]!r} is not a whole number from 0 to {MAX_CURSOR}: "
            "sync again from the cursor the last update gave",
            key="srvhttp.bad_cursor",
            value=text[:24],
            max=MAX_CURSOR,
        )
    return int(text)


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


def _server_failed() -> str:
    return Refusal(500, "server_error", "the town server failed: see its log").text()


def _refusal_response(err: Refusal, request: Request) -> JSONResponse:
    client = request.client.host if request.client else "?"
    log.warning(
        "refused %s %s from %s (device %s): %s %s",
        request.method,
        request.url.path,
        client,
        request.headers.get("x-fieldkit-device", "-"),
        err.code,
        err.message,
    )
    return JSONResponse(
        {"error": err.code, "message": err.text()}, status_code=err.status, headers=err.headers
    )


def create_app(
    keys: TownKeys,
    repo: Repository,
    settings: ServerSettings | None = None,
    *,
    scopes: DeviceScopes | None = None,
    insecure_http: bool = False,
) -> FastAPI:
    """The ASGI app. Storage calls run in worker threads; the event loop only moves bytes.

    At most ``settings.max_concurrent_batches`` uploads are read and opened at once (the others
    wait, unread, in the socket): whatever the batches expand to, the server's memory is
    bounded by that many batches of ``max_plain_bytes``."""
    town = TownServer(keys, repo, settings or ServerSettings(), scopes, insecure_http)
    app = FastAPI(title="FieldKit town server", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.town = town
    gates: dict[str, anyio.Semaphore] = {}

    def batch_gate() -> anyio.Semaphore:
        if "batches" not in gates:  # made on the event loop that serves the requests
            gates["batches"] = anyio.Semaphore(max(1, town.settings.max_concurrent_batches))
        return gates["batches"]

    @app.exception_handler(Refusal)
    async def _refused(request: Request, err: Refusal) -> JSONResponse:
        return _refusal_response(err, request)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        return _refusal_response(
            Refusal(400, "bad_request", "request parameters are not valid", key="srvhttp.params"),
            request,
        )

    @app.exception_handler(Exception)
    async def _failed(request: Request, err: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return JSONResponse(
            {"error": "server_error", "message": _server_failed()},
            status_code=500,
        )

    async def read_body(request: Request, limit: int) -> bytes:
        length = request.headers.get("content-length")
        too_big = Refusal(
            413,
            "too_large",
            f"request is larger than the server limit of {limit} bytes: lower sync.batch_size",
            key="srvhttp.too_large",
            limit=limit,
        )
        if length is not None and length.isdigit() and int(length) > limit:
            raise too_big
        chunks, size = [], 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise too_big
                chunks.append(chunk)
        except ClientDisconnect:
            raise Refusal(
                400,
                "disconnected",
                f"connection dropped after {size} bytes: nothing stored",
                key="srvhttp.disconnected",
                size=size,
            ) from None
        return b"".join(chunks)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(p.PATH_INFO)
    async def info() -> dict[str, Any]:
        return town.info()

    @app.post(p.PATH_ENROLL)
    async def enroll(request: Request) -> JSONResponse:
        # Nobody is known before enrollment: every attempt counts against the address.
        address = _client(request)
        town.gate_address(address)
        town.charge_address(address)
        body = await read_body(request, 64 * 1024)
        try:
            req = json.loads(body)
        except (ValueError, RecursionError):
            raise Refusal(400, "bad_request", "enrollment request is not JSON") from None
        if not isinstance(req, dict):
            raise Refusal(400, "bad_request", "enrollment request is not a JSON object")
        return JSONResponse(await anyio.to_thread.run_sync(town.enroll, req))

    @app.post(p.PATH_BATCHES)
    async def batches(request: Request) -> Response:
        address = _client(request)
        town.gate_address(address)
        async with batch_gate():
            try:
                body = await read_body(request, town.settings.max_body_bytes)
                auth = await anyio.to_thread.run_sync(
                    town.authenticate_batch, body, request.headers.get("x-fieldkit-device")
                )
            except Refusal:
                town.charge_address(address)
                raise
            del body
            town.charge_device(auth.device.device_id)
            reply = await anyio.to_thread.run_sync(town.ingest_verified, auth)
        return Response(
            json.dumps(reply, separators=(",", ":"), ensure_ascii=False).encode(),
            media_type="application/json",
        )

    @app.get(p.PATH_UPDATES)
    async def updates(request: Request) -> JSONResponse:
        address = _client(request)
        town.gate_address(address)
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            cursor = _cursor(request)
            device, _ = await anyio.to_thread.run_sync(
                town.authenticate_request, headers, request.url.path, request.url.query
            )
        except Refusal:
            town.charge_address(address)
            raise
        town.charge_device(device.device_id)
        doc = await anyio.to_thread.run_sync(town.updates_for, device, headers, cursor)
        return JSONResponse(doc)

    # Routers of other parts of the server (the town console ...) are mounted here:
    from .console import mount_console

    mount_console(app, town)

    from .anchors import mount_anchors  # audit-chain heads kept off the device

    mount_anchors(app, town)

    return app


def create_app_from_env() -> FastAPI:
    """App factory for ``uvicorn --factory`` and multi-worker ``serve``: reads the data
    directory from ``FIELDKIT_SERVER_DIR`` (and ``FIELDKIT_INSECURE_HTTP=1`` from
    ``serve --insecure-http``)."""
    from pathlib import Path

    from .repository import open_repository
    from .town import ServerSettings, TownKeys

    data_dir = Path(os.environ["FIELDKIT_SERVER_DIR"])
    settings = ServerSettings.load(data_dir)
    repo = open_repository(settings.database_url or None, str(data_dir), settings.db_schema or None)
    return create_app(
        TownKeys.load(data_dir),
        repo,
        settings,
        scopes=DeviceScopes(data_dir),
        insecure_http=os.environ.get("FIELDKIT_INSECURE_HTTP") == "1",
    )
