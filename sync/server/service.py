"""The town server's service, without HTTP: :class:`TownServer` holds keys, settings, storage
and limits, and does enrollment, batch ingest and updates. :mod:`sync.server.app` puts it
behind FastAPI; tests and the console call it directly.

One piece (~400 lines): every method shares the same keys, repository and limiters, and the
ingest path (authenticate, parse, classify, store, reply) reads best top to bottom.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .. import protocol as p
from .device_scope import DeviceScopes, checkpoint_code
from .ledger import KIND as LEDGER_KIND
from .ledger import LedgerCodec, LedgerEdit
from .records import MAX_RECORD_FUTURE_S, _loads, parse_record
from .refusal import Refusal, _too_many
from .repository import (
    BatchAlreadyIngested,
    BatchMeta,
    IngestOutcome,
    IngestRecord,
    Repository,
)
from .town import ServerSettings, TownKeys

log = logging.getLogger("fieldkit.server")


def token_hash(token: str) -> str:
    secret = token.split(".", 1)[0].strip().upper()
    return hashlib.sha256(b"fieldkit/token/v1" + secret.encode()).hexdigest()


class RateLimiter:
    """Token bucket per key (device id, or client address before enrollment).

    Kept rather than the ``limits`` package (issue 17 item 5): this is the whole of it, in one
    process with no storage to configure. ``limits`` has ``peek`` (its ``test``: an address is
    charged only once its request failed to prove a device) but counts requests in windows
    (fixed, moving, sliding counter), not a bucket with a burst refilled at a steady rate, the
    behaviour the server's settings (``rate_per_second``, ``rate_burst``) describe."""

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
    scopes: DeviceScopes = field(default_factory=lambda: DeviceScopes(None))
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
                if isinstance(line, p.OversizedLine):
                    rejected[i] = (
                        p.REJECTED,
                        rejection(
                            "record_too_large",
                            f"record is {line.size} bytes, the limit is {max_record}",
                            size=line.size,
                            limit=max_record,
                        ),
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
                        and checkpoint_code(rec.checkpoint) not in allowed
                    ):
                        codes = ", ".join(sorted(allowed))
                        raise RecordRefused(
                            "checkpoint_scope",
                            f"this device is enrolled for checkpoint(s) {codes}, "
                            f"not {rec.checkpoint!r}",
                            allowed=codes,
                            got=rec.checkpoint,
                        )
                    if rec.kind == LEDGER_KIND:
                        edits.append(
                            self.ledger_codec.parse(i, rec.record_id, _loads(line)["body"])
                        )
                except RecordRefused as err:
                    rejected[i] = (p.REJECTED, err.reason())
                    ids[i] = _best_effort_id(line)
                    continue
                except (ValueError, RecursionError) as err:
                    detail = _one_line(err)
                    rejected[i] = (p.REJECTED, rejection("record_invalid", detail, detail=detail))
                    ids[i] = _best_effort_id(line)
                    continue
                except Exception as err:  # noqa: BLE001 - one record never sinks its batch
                    log.exception("record %d of batch %s could not be read", i, header.batch_id)
                    rejected[i] = (
                        p.REJECTED,
                        rejection(
                            "record_unreadable",
                            f"the server could not read this record ({type(err).__name__})",
                            error=type(err).__name__,
                        ),
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
        self.repo.mark_seen(device.device_id, now)  # a contact, even with nothing to upload
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
        scoped: list[dict[str, Any]] = []  # for some checkpoints only, oldest first
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
            elif ch.kind == "scoped":
                scoped.append(ch.data)
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
            }
            | ({"scoped": scoped} if scoped else {}),
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


def rejection(code: str, english: str, **params: Any) -> str:
    """A record's refusal as the fate's reason: ``rejected [code?params]: English sentence``.
    The bracket is for the device, which says it in its own words
    (:func:`sync.client.rejection_text`); the sentence is for logs and older devices."""
    query = urlencode({k: str(v) for k, v in params.items()})
    return f"rejected [{code}{'?' + query if query else ''}]: {english}"


class RecordRefused(ValueError):
    """One record refused for a reason the device has words for (see :func:`rejection`)."""

    def __init__(self, code: str, english: str, **params: Any) -> None:
        super().__init__(english)
        self.code, self.english, self.params = code, english, params

    def reason(self) -> str:
        return rejection(self.code, _one_line(self), **self.params)


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
