"""Device side of sync: enroll once, then upload the outbox and download the town's updates.

The store is the lead's facade (:mod:`fieldkit.store`); this module only reads its outbox and
writes the fates back. What it keeps in the store:

- ``store.kv``: ``sync.device_id``, ``sync.server_url``, pinned ``sync.town_ed25519`` and
  ``sync.town_x25519`` (base64), ``sync.fingerprint``, ``sync.cursor``, ``sync.updates_at``,
  ``sync.last_sync``, ``sync.last_error``, ``sync.skew_s``, ``sync.max_batch_records``,
  ``sync.tls_ca_pem``, ``town_rules``, ``area_mode``;
- ``store.secrets``: ``device_ed25519`` (the device's signing key), ``town_index_key``.

Retries inside one run resend the *same bytes* (same batch id), so a batch that reached the server
before the connection dropped is answered from the server's record and stored once. Errors that
predict the rest of the run (network, authentication, clock) stop it with one line saying what
failed and what to do; a record the server refuses for its content is quarantined with the
server's reason and never blocks the queue.
"""

from __future__ import annotations

import functools
import gc
import logging
import math
import ssl
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Self

import httpx
import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from fieldkit.errors import ConfigError, SyncError
from fieldkit.i18n import has_key, word
from fieldkit.i18n import t as word_t

from . import protocol as p

if TYPE_CHECKING:  # the store's real type, for checkers: the client never imports it
    from fieldkit.store import Store
from .anchor_client import exchange_anchor

log = logging.getLogger("fieldkit.sync")

RETRIES = 2  # resends of one batch on a cut connection, a timeout or a 5xx
SYNCED_FATES = (p.STORED, p.DUPLICATE)


class NotEnrolledError(SyncError):
    pass


class SyncAuthError(SyncError):
    pass


class SyncTLSError(SyncAuthError):
    """The server's TLS certificate is not trusted: retrying cannot help, the CA file can."""


class SyncNetworkError(SyncError):
    pass


class SyncServerError(SyncError):
    pass


class _CompressionRefused(SyncServerError):
    """The server cannot read the batch's compression (it read it when it offered it)."""


# --- report -----------------------------------------------------------------------------------


@dataclass
class SyncReport:
    ok: bool = True
    sent: int = 0
    stored: int = 0
    duplicate: int = 0
    quarantined: int = 0
    batches: int = 0
    bytes_sent: int = 0
    pending: int = 0
    keypersons_added: int = 0
    keypersons_removed: int = 0
    revocations: int = 0
    mode: str | None = None
    rules_changed: bool = False  # the town sent its rules (again)
    rules_changed_keys: list[str] = field(default_factory=list)  # rules whose value changed
    cursor: int = 0
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    error_kind: str | None = None  # network | auth | server | clock | protocol | wiped
    wipe_ordered: bool = False  # the town ordered a wipe (sync.anchor_client): done at the end

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        if self.error:
            return f"sync failed: {self.error}"
        parts = [f"sent {self.sent} ({self.stored} new, {self.duplicate} already there)"]
        if self.quarantined:
            parts.append(f"{self.quarantined} quarantined")
        parts.append(f"{self.pending} pending")
        parts.append(f"key persons +{self.keypersons_added}/-{self.keypersons_removed}")
        if self.revocations:
            parts.append(f"{self.revocations} passes revoked")
        if self.mode:
            parts.append(f"mode {self.mode}")
        if self.rules_changed:
            parts.append(
                "town rules "
                + (
                    ", ".join(self.rules_changed_keys) + " changed"
                    if self.rules_changed_keys
                    else "unchanged"
                )
            )
        return "synced: " + ", ".join(parts)


# --- HTTP -------------------------------------------------------------------------------------


def _server_message(resp: httpx.Response) -> tuple[str, str]:
    """The refusal's code, and what to tell the person: by the code in this device's language
    when the catalogue knows it (``http.<code>``), else the server's own line."""
    try:
        data = resp.json()
        code = str(data.get("error", ""))
        if code and has_key("http." + code):
            return code, word_t("http." + code)
        return code, str(data.get("message", resp.text[:200]))
    except (ValueError, AttributeError):
        return "", (resp.text[:200].strip() or resp.reason_phrase)


class TownClient:
    """Thin HTTP layer: one method per endpoint, typed errors with one-line messages."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 20.0,
        transport: httpx.BaseTransport | None = None,
        ca_pem: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        verify: Any = _tls_context(ca_pem) if self.base_url.startswith("https:") else False
        self.http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport,
            verify=verify,
            headers={"User-Agent": "fieldkit-sync/1"},
        )
        self.timeout = timeout

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            return self.http.request(method, path, **kw)
        except httpx.ConnectError as err:
            if _tls_failure(err):
                raise SyncTLSError(
                    "syncerr.tls_untrusted", url=self.base_url, reason=_reason(err)
                ) from None
            raise SyncNetworkError(
                "syncerr.unreachable", url=self.base_url, reason=_reason(err)
            ) from None
        except httpx.TimeoutException:
            raise SyncNetworkError(
                "syncerr.timeout", url=self.base_url, seconds=f"{self.timeout:g}"
            ) from None
        except (httpx.TransportError, httpx.DecodingError) as err:
            raise SyncNetworkError(
                "syncerr.broken", url=self.base_url, reason=_reason(err)
            ) from None


@functools.lru_cache(maxsize=4)
def _tls_context(ca_pem: str | None) -> ssl.SSLContext:
    """The TLS context for an https town server, made once per process (loading the system's
    CA bundle takes a tenth of a second; background sync runs every few minutes). With the
    town's CA file only that CA is trusted: the town's certificate is pinned. A plain http URL
    needs none (nothing follows redirects)."""
    if not ca_pem:
        return httpx.create_ssl_context()
    try:
        return ssl.create_default_context(cadata=ca_pem)
    except (ssl.SSLError, ValueError) as err:
        raise SyncError("syncerr.ca_not_pem", why=err.__class__.__name__) from None


def _tls_failure(err: Exception) -> bool:
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return True
        cause = cause.__cause__ or cause.__context__
    return "certificate verify failed" in str(err)


def _reason(err: Exception) -> str:
    text = str(err).strip()
    for marker in (
        "IP address mismatch",
        "Hostname mismatch",
        "self-signed certificate",
        "unable to get local issuer certificate",
        "certificate has expired",
        "certificate verify failed",
        "Connection refused",
        "Name or service not known",
        "timed out",
        "No route to host",
        "Network is unreachable",
    ):
        if marker.lower() in text.lower():
            return marker.lower()
    return text.splitlines()[0][:80] if text else type(err).__name__


def _raise_for(resp: httpx.Response, what: str) -> None:
    if resp.status_code < 400:
        return
    code, message = _server_message(resp)
    what_shown = word(what)
    if resp.status_code in (401, 403):
        refused = SyncAuthError("syncerr.refused_device", message=message)
        refused.server_code = code  # e.g. device_revoked: see sync.anchor_client.revoked
        raise refused
    if resp.status_code == 413:
        raise SyncServerError("syncerr.too_large", what=what_shown, message=message)
    if resp.status_code >= 500:
        raise SyncServerError("syncerr.server_failed_on", status=resp.status_code, what=what_shown)
    raise SyncServerError(
        "syncerr.refused", what=what_shown, code=code or resp.status_code, message=message
    )


# --- enrollment -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Enrollment:
    device_id: str
    name: str
    server_url: str
    fingerprint: str


def enroll(
    store: Store,
    url: str,
    token: str,
    *,
    transport: httpx.BaseTransport | None = None,
    timeout: float = 20.0,
    ca_pem: str | None = None,
    force: bool = False,
) -> Enrollment:
    """Register this device with the town server. The store must be unlocked (supervisor)."""
    if store.kv.get("sync.device_id") and not force:
        raise SyncError(
            "syncerr.already_enrolled",
            device=store.kv.get("sync.device_id"),
            url=store.kv.get("sync.server_url"),
        )
    token = token.strip()
    secret, _, expected_fp = token.partition(".")
    expected_fp, _, cert_pin = expected_fp.partition(".")
    if not secret or len(expected_fp) != 16:
        raise SyncError("syncerr.token_shape")
    if cert_pin:  # the town's own certificate: fetched, checked against the token, trusted
        ca_pem = pinned_certificate(url, cert_pin, timeout)
    device_key = Ed25519PrivateKey.generate()
    seal_key = X25519PrivateKey.generate()
    with TownClient(url, timeout=timeout, transport=transport, ca_pem=ca_pem) as town:
        resp = town.request(
            "POST",
            p.PATH_ENROLL,
            json={
                "token": token,
                "public_key": p.b64e(p.raw_public(device_key.public_key())),
                "seal_to": p.b64e(p.raw_public(seal_key.public_key())),
            },
        )
        _raise_for(resp, "the enrollment")
    try:
        doc = resp.json()
        payload = p.verify_document(
            doc, p.load_ed25519_public(p.b64d(p.document_payload_unverified(doc)["town_ed25519"]))
        )
        town_ed, town_x = p.b64d(payload["town_ed25519"]), p.b64d(payload["town_x25519"])
    except (ValueError, KeyError, p.ProtocolError) as err:
        raise SyncError("syncerr.enroll_reply", why=str(err)[:120]) from None
    if p.key_fingerprint(town_ed, town_x) != expected_fp:
        raise SyncError("syncerr.fingerprint")
    sealed = payload["index_key_sealed"]
    index_key = p.open_sealed(
        seal_key,
        p.b64d(sealed["eph"]),
        p.b64d(sealed["blob"]),
        b"enroll:" + payload["device_id"].encode(),
    )
    store.secrets.set("device_ed25519", p.raw_private(device_key))
    store.secrets.set("town_index_key", index_key)
    kv = store.kv
    kv.set("sync.device_id", payload["device_id"])
    kv.set("sync.device_name", payload["name"])
    kv.set("sync.server_url", url.rstrip("/"))
    kv.set("sync.town_ed25519", payload["town_ed25519"])
    kv.set("sync.town_x25519", payload["town_x25519"])
    kv.set("sync.fingerprint", expected_fp)
    kv.set("sync.max_batch_records", int(payload["max_batch_records"]))
    kv.set("sync.compression", p.choose_compression(payload.get("compression")))
    kv.set("sync.cursor", 0)
    if ca_pem:
        kv.set("sync.tls_ca_pem", ca_pem)
    operator = store.operator.name if store.operator else None
    store.audit.append(
        "sync_enroll",
        operator,
        {"device_id": payload["device_id"], "server": url, "fingerprint": expected_fp},
    )
    return Enrollment(payload["device_id"], payload["name"], url.rstrip("/"), expected_fp)


def pinned_certificate(url: str, pin: str, timeout: float = 20.0) -> str:
    """The town server's TLS certificate (PEM) when its SHA-256 is ``pin`` (from the token,
    made by ``fieldkit-server init --tls-self-signed``); a refusal, before anything is sent,
    when it is not. The device then trusts this certificate alone for the town."""
    from fieldkit.i18n import t

    pin = pin.strip().lower()
    if len(pin) != 64 or pin.strip("0123456789abcdef"):
        raise SyncError(t("server_security.client.token_bad_pin"))
    parsed = httpx.URL(url)
    if parsed.scheme != "https":
        raise SyncError(t("server_security.client.pin_needs_https", url=url))
    try:
        pem = ssl.get_server_certificate((parsed.host, parsed.port or 443), timeout=timeout)
        got = p.sha256_hex(ssl.PEM_cert_to_DER_cert(pem))
    except (OSError, ValueError) as err:
        raise SyncTLSError(
            t("server_security.client.cert_unreachable", url=url, reason=_reason(err))
        ) from None
    if got != pin:
        raise SyncTLSError(
            t("server_security.client.cert_mismatch", url=url, got=got[:16], want=pin[:16])
        )
    return pem


# --- one sync run -----------------------------------------------------------------------------


@dataclass
class _Identity:
    device_id: str
    url: str
    key: Ed25519PrivateKey
    town_ed25519: Any
    town_x25519: Any
    compression: str = "zlib"  # the best both sides read, as the server last said


def _identity(store: Store, settings: Any) -> _Identity:
    device_id = store.kv.get("sync.device_id")
    if not device_id:
        raise NotEnrolledError("syncerr.not_enrolled")
    url = getattr(getattr(settings, "sync", None), "server_url", "") or store.kv.get(
        "sync.server_url"
    )
    raw_key = store.secrets.get("device_ed25519")
    if raw_key is None:
        raise NotEnrolledError("syncerr.device_key_missing")
    return _Identity(
        device_id,
        url,
        Ed25519PrivateKey.from_private_bytes(raw_key),
        p.load_ed25519_public(p.b64d(store.kv.get("sync.town_ed25519"))),
        p.load_x25519_public(p.b64d(store.kv.get("sync.town_x25519"))),
        p.choose_compression([store.kv.get("sync.compression", "zlib")]),
    )


def wire_record(item: Any) -> dict[str, Any]:
    """An outbox item as the server reads it. The server indexes what the body holds (time,
    checkpoint, direction, town ID hash, masked name and ID); nothing is sent twice."""
    return {"id": item.record_id, "kind": item.kind, "hash": item.content_hash, "body": item.body}


def wire_line(item: Any) -> bytes:
    """The wire record as one JSON line. The body's canonical bytes from the outbox (the bytes
    its content hash was taken over) are spliced in rather than encoded a second time; the
    line itself need not be canonical (the server reads it, nobody hashes it)."""
    canonical = item.canonical
    if not canonical:
        return p.canonical_json(wire_record(item))
    head = {"id": item.record_id, "kind": item.kind, "hash": item.content_hash}
    try:
        head_bytes = orjson.dumps(head)
    except TypeError:  # a value orjson does not take (never from the store): the slow way
        head_bytes = p.canonical_json(head)
    return head_bytes[:-1] + b',"body":' + canonical + b"}"


class _Uploader:
    def __init__(
        self, town: TownClient, ident: _Identity, report: SyncReport, sleep: Any = time.sleep
    ) -> None:
        self.town, self.ident, self.report, self.sleep = town, ident, report, sleep

    def seal(self, lines: list[bytes]) -> tuple[str, bytes]:
        return p.seal_batch(
            lines,
            device_id=self.ident.device_id,
            device_key=self.ident.key,
            town_x25519=self.ident.town_x25519,
            compression=self.ident.compression,
        )

    def post(self, batch_id: str, body: bytes) -> tuple[str, dict[str, Any]]:
        """Send one sealed batch (the same bytes again on a retry) and return its reply."""
        last: Exception | None = None
        for attempt in range(RETRIES + 1):
            if attempt:
                self.sleep(min(4.0, 0.5 * 2 ** (attempt - 1)))
            try:
                resp = self.town.request(
                    "POST",
                    p.PATH_BATCHES,
                    content=body,
                    headers={
                        "Content-Type": "application/octet-stream",
                        "X-Fieldkit-Device": self.ident.device_id,
                    },
                )
            except SyncNetworkError as err:
                if err.code == "syncerr.unreachable":  # refused: no server there, stop now
                    raise
                last = err
                continue
            self.report.bytes_sent += len(body)
            if resp.status_code == 429:
                wait = float(resp.headers.get("Retry-After", "1") or 1)
                self.sleep(min(wait, 10.0))
                last = SyncServerError("syncerr.busy")
                continue
            if resp.status_code >= 500:
                last = SyncServerError("syncerr.server_failed", status=resp.status_code)
                continue
            if (
                resp.status_code == 400
                and self.ident.compression != "zlib"
                and (_server_message(resp)[0] == "unsupported_compression")
            ):
                raise _CompressionRefused(self.ident.compression)
            _raise_for(resp, "the batch")
            try:
                return batch_id, resp.json()
            except ValueError:
                last = SyncServerError("syncerr.unreadable_reply")
        assert last is not None
        raise last


def _apply_reply(
    store: Store, items: list[Any], reply: dict[str, Any], batch_id: str, report: SyncReport
) -> None:
    fates = {int(f[0]): (f[2], f[3]) for f in reply.get("fates", [])}
    synced: dict[str, list[Any]] = {}
    for i, item in enumerate(items):
        status, reason = fates.get(i, (p.STORED, None))
        if status in SYNCED_FATES:
            synced.setdefault(item.kind, []).append(item)
            if status == p.DUPLICATE:
                report.duplicate += 1
            else:
                report.stored += 1
        else:
            store.outbox.mark_quarantined(
                item.record_id, f"server: {reason or status}", kind=item.kind
            )
            report.quarantined += 1
    for kind, done in synced.items():
        store.outbox.mark_synced(
            [item.record_id for item in done],
            batch_id,
            kind=kind,
            rowids=[getattr(item, "rowid", 0) for item in done],
        )


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while batches are built: thousands of short-lived
    dicts per batch would set it off over and over (a third of the client's time), and none of
    them form cycles, so reference counting frees them all the same."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class _Pipeline:
    """Uploads batches while the next one is read, encoded and sealed and the fates of the
    ones before are written.

    Up to :attr:`DEPTH` batches are in flight at once, once the server has answered one (a
    run against a server that is down or failing stops after the first batch). Two in flight
    hide the round trip on a slow mobile link and let the server open one batch while it
    stores the other. A batch holding a kind the server merges in arrival order (ledger edits)
    goes alone: everything before it is answered first. The sender threads only wait on the
    network; reading, sealing and every store access stay on the caller's thread. When a batch
    fails, the ones in flight beside it are still answered and settled, the batch prepared
    behind it is dropped unsent, and its records stay pending for the next run.
    """

    DEPTH = 2

    def __init__(self, store: Store, uploader: _Uploader, report: SyncReport, size: int) -> None:
        self.store, self.uploader, self.report = store, uploader, report
        self.size = size  # records per request; halved when the server says it is too large
        self.sender = ThreadPoolExecutor(self.DEPTH, thread_name_prefix="fieldkit-sync-send")
        self.depth = 1  # one at a time until the server has answered once in this run
        # (reply, lines, items, ordered), oldest first
        self.in_flight: deque[
            tuple[Future[tuple[str, dict[str, Any]]], list[bytes], list[Any], bool]
        ] = deque()

    def close(self) -> None:
        self.sender.shutdown(wait=True, cancel_futures=True)

    def submit(self, lines: list[bytes], items: list[Any]) -> None:
        """Send this batch when there is room for it; write the fates of the batches answered
        meanwhile while it is on its way."""
        ordered = any(item.kind in p.ORDERED_KINDS for item in items)
        compression = self.uploader.ident.compression
        sealed = self.uploader.seal(lines)
        answered = []
        with self._salvage_on_error():
            while self.in_flight and (ordered or len(self.in_flight) >= self.depth):
                answered += self._answer_oldest()
        if self.uploader.ident.compression != compression:  # the server refused it meanwhile
            sealed = self.uploader.seal(lines)
        self.in_flight.append(
            (self.sender.submit(self.uploader.post, *sealed), lines, items, ordered)
        )
        for batch in answered:
            self._settle(*batch)

    def finish(self) -> None:
        """Every batch answered and its fates written."""
        with self._salvage_on_error():
            while self.in_flight:
                for batch in self._answer_oldest():
                    self._settle(*batch)

    @contextmanager
    def _salvage_on_error(self) -> Iterator[None]:
        """On a failure, the batches still in flight are waited for and those the server took
        are settled (nothing it stored stays pending here), then the failure goes on."""
        try:
            yield
        except BaseException:
            while self.in_flight:
                future, _, items, _ = self.in_flight.popleft()
                try:
                    batch_id, reply = future.result()
                except Exception as err:  # noqa: BLE001 - the first failure is the one reported
                    log.info("a batch beside the failed one failed too: %s", err)
                    continue
                self._settle(batch_id, reply, items)
            raise

    def _answer_oldest(self) -> list[tuple[str, dict[str, Any], list[Any]]]:
        """Wait for the oldest batch in flight: [(batch id, reply, its items)], or [] when it
        went again (in smaller batches, or in zlib) and was settled that way."""
        future, lines, items, _ = self.in_flight.popleft()
        try:
            batch_id, reply = future.result()
        except _CompressionRefused:
            # The server no longer reads what it once offered (a reinstall without zstandard):
            # zlib from now on, and this batch again.
            self.uploader.ident.compression = "zlib"
            self.store.kv.set("sync.compression", "zlib")
            self.submit(lines, items)
            self.finish()
            return []
        except SyncServerError as err:
            if err.code != "syncerr.too_large" or len(items) <= 1:
                raise
            # The server's limits are lower than ours: send these again in halves, and halve
            # the batches from now on.
            self.size = size = max(1, len(items) // 2)
            for k in range(0, len(items), size):
                self.submit(lines[k : k + size], items[k : k + size])
            self.finish()
            return []
        self.depth = self.DEPTH
        return [(batch_id, reply, items)]

    def _settle(self, batch_id: str, reply: dict[str, Any], items: list[Any]) -> None:
        _apply_reply(self.store, items, reply, batch_id, self.report)
        self.report.batches += 1
        self.report.sent += len(items)


def _encode(store: Store, items: list[Any], report: SyncReport) -> tuple[list[bytes], list[Any]]:
    lines, sendable = [], []
    for item in items:
        try:
            line = wire_line(item)
        except (TypeError, ValueError) as err:
            store.outbox.mark_quarantined(
                item.record_id, f"local: cannot encode ({err})", kind=item.kind
            )
            report.quarantined += 1
            continue
        lines.append(line)
        sendable.append(item)
    return lines, sendable


def _upload(
    store: Store,
    town: TownClient,
    ident: _Identity,
    batch_size: int,
    report: SyncReport,
    sleep: Any,
) -> None:
    limit = max(1, min(batch_size, int(store.kv.get("sync.max_batch_records", batch_size))))
    pipeline = _Pipeline(store, _Uploader(town, ident, report, sleep), report, limit)
    try:
        with _collector_paused():
            for items in store.outbox.batches(limit):
                lines, sendable = _encode(store, items, report)
                k = 0
                while k < len(sendable):
                    n = pipeline.size
                    pipeline.submit(lines[k : k + n], sendable[k : k + n])
                    k += n
            pipeline.finish()
    finally:
        pipeline.close()


def _download(store: Store, town: TownClient, ident: _Identity, report: SyncReport) -> None:
    cursor = int(store.kv.get("sync.cursor", 0) or 0)
    for _ in range(1000):  # pages; a bound so a misbehaving server cannot loop us forever
        query = f"cursor={cursor}"
        headers = p.sign_request(ident.key, ident.device_id, "GET", p.PATH_UPDATES, query)
        resp = town.request("GET", f"{p.PATH_UPDATES}?{query}", headers=headers)
        _raise_for(resp, "the update request")
        try:
            doc = p.verify_document(resp.json(), ident.town_ed25519)
        except (ValueError, p.ProtocolError) as err:
            raise SyncServerError("syncerr.update_invalid", why=str(err)[:120]) from None
        if doc.get("device_id") != ident.device_id or doc.get("cursor_from") != cursor:
            raise SyncServerError("syncerr.update_other_request")
        _refuse_stale_update(store, doc, headers["X-Fieldkit-Time"])
        added, removed = doc.get("keypersons", []), doc.get("keypersons_removed", [])
        if added or removed:
            store.keypersons.apply(added, removed)
        if doc.get("revocations"):
            store.revocations.apply(doc["revocations"])
        if doc.get("rules") is not None:
            _apply_town_rules(store, doc["rules"], report)
        if doc.get("mode") is not None:
            mode = doc["mode"].get("mode")
            store.kv.set("area_mode", mode)
            if hasattr(store, "apply_kv_overrides"):
                store.apply_kv_overrides()
            store.audit.append(
                "setting_change",
                "town",
                {"key": "checkpoint.area_mode", "to": mode, "by": "town server"},
            )
            report.mode = mode
        report.keypersons_added += len(added)
        report.keypersons_removed += len(removed)
        report.revocations += len(doc.get("revocations", []))
        if doc.get("compression") is not None:
            store.kv.set("sync.compression", p.choose_compression(doc["compression"]))
        cursor = int(doc["cursor"])
        store.kv.set("sync.cursor", cursor)
        store.kv.set("sync.updates_at", float(doc["issued_at"]))
        if "seq" in doc:
            store.kv.set("sync.update_seq", int(doc["seq"]))
        skew = float(doc["issued_at"]) - time.time()
        store.kv.set("sync.skew_s", skew)
        if not doc.get("more"):
            break
    report.cursor = cursor


UPDATE_CLOCK_SLACK_S = 300.0  # the town's clock may step back this much between updates


def _refuse_stale_update(store: Store, doc: dict[str, Any], request_time: str) -> None:
    """An update older than the one this device holds is refused (a replay by someone on the
    way, withholding the town's newer changes): it must answer this very request (its
    ``request_time``), reach at least the sequence already held, and not be issued before
    the update already applied. A town server from before sequences (no ``seq``) is taken
    as before, until the device has once seen one that has it."""
    held_seq = store.kv.get("sync.update_seq")
    if "seq" not in doc and held_seq is None:
        return
    from fieldkit.i18n import t

    try:
        seq, issued = int(doc["seq"]), float(doc["issued_at"])
    except (KeyError, TypeError, ValueError):
        raise SyncServerError(t("server_security.client.update_unsequenced")) from None
    held_at = store.kv.get("sync.updates_at")
    if (
        doc.get("request_time") != request_time
        or (held_seq is not None and seq < int(held_seq))
        or not math.isfinite(issued)
        or (held_at is not None and issued < float(held_at) - UPDATE_CLOCK_SLACK_S)
    ):
        log.warning("refused a stale or replayed update (seq %s, issued %s)", seq, issued)
        raise SyncServerError(t("server_security.client.update_stale"))


def _apply_town_rules(store: Store, rules: Any, report: SyncReport) -> None:
    """The town's rules take effect at once; keys this device's checks refuse are skipped."""
    try:
        changes, skipped = store.set_town_rules(rules)
    except ConfigError as err:
        report.warnings.append(word_t("syncerr.warn.rules_not_applied", err=err))
        return
    report.warnings.extend(word_t("syncerr.warn.rule_skipped", line=line) for line in skipped)
    report.rules_changed = True
    report.rules_changed_keys += [k for k in changes if k not in report.rules_changed_keys]


def freshness(store: Store, settings: Any, now: float | None = None) -> dict[str, Any]:
    """How old the town's updates are on this device, and whether to warn (for the status bar)."""
    now = time.time() if now is None else now
    sync_settings = getattr(settings, "sync", None)
    stale_h = float(getattr(sync_settings, "stale_after_hours", 24.0))
    max_skew = float(getattr(sync_settings, "max_clock_skew_s", 300.0))
    updated = store.kv.get("sync.updates_at")
    skew = store.kv.get("sync.skew_s")
    age = None if updated is None else max(0.0, now - float(updated))
    warnings = []
    if not store.kv.get("sync.device_id"):
        warnings.append(word_t("syncerr.warn.not_enrolled"))
    elif age is None:
        warnings.append(word_t("syncerr.warn.no_update"))
    elif age > stale_h * 3600:
        warnings.append(
            word_t("syncerr.warn.stale", hours=f"{age / 3600:.0f}", limit=f"{stale_h:g}")
        )
    if skew is not None and abs(float(skew)) > max_skew:
        warnings.append(word_t("syncerr.warn.skew", minutes=f"{abs(skew) / 60:.0f}"))
    return {
        "updated_at": updated,
        "age_s": age,
        "skew_s": skew,
        "stale": bool(warnings),
        "warnings": warnings,
    }


def run_sync(
    store: Store,
    settings: Any,
    *,
    transport: httpx.BaseTransport | None = None,
    operator: str | None = None,
    sleep: Any = time.sleep,
    download: bool = True,
) -> SyncReport:
    """Upload every pending record, then download updates. Never raises for network or server
    trouble: the report says what failed (``report.error``) and what to do."""
    report = SyncReport()
    sync_settings = getattr(settings, "sync", None)
    timeout = float(getattr(sync_settings, "timeout_s", 20.0))
    batch_size = int(getattr(sync_settings, "batch_size", 500))
    started = time.time()
    try:
        ident = _identity(store, settings)
        with TownClient(
            ident.url, timeout=timeout, transport=transport, ca_pem=store.kv.get("sync.tls_ca_pem")
        ) as town:
            _upload(store, town, ident, batch_size, report, sleep)
            if download:
                _download(store, town, ident, report)
            exchange_anchor(store, town, ident, report)  # the audit head, kept by the town
    except SyncError as err:
        report.ok = False
        report.error = str(err)
        report.error_kind = {
            SyncNetworkError: "network",
            SyncAuthError: "auth",
            SyncTLSError: "auth",
            NotEnrolledError: "auth",
        }.get(type(err), "server")
    counts = store.outbox.counts()
    report.pending = counts.get("pending", 0)
    report.warnings += freshness(store, settings)["warnings"]
    store.kv.set("sync.last_attempt", started)
    if report.ok:
        store.kv.set("sync.last_sync", started)
        store.kv.set("sync.last_error", None)
    else:
        store.kv.set("sync.last_error", report.error)
    store.audit.append(
        "sync",
        operator,
        {
            "ok": report.ok,
            "sent": report.sent,
            "stored": report.stored,
            "duplicate": report.duplicate,
            "quarantined": report.quarantined,
            "batches": report.batches,
            "keypersons_added": report.keypersons_added,
            "keypersons_removed": report.keypersons_removed,
            "revocations": report.revocations,
            "cursor": report.cursor,
            "error": report.error,
        },
    )
    if report.wipe_ordered:  # the town ordered this device wiped: crypto-erase it
        from fieldkit.wipe import wipe_revoked

        wipe_revoked(store, report)
    return report


class AutoSync:
    """Background sync policy for the app: call :meth:`due` from a timer, run in a worker.

    Runs every ``sync.interval_s`` while the server answers; after a failure it backs off
    (doubling up to the interval) so an unreachable server costs almost nothing.
    """

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.next_at = 0.0
        self.backoff = min(30.0, interval_s)

    def due(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) >= self.next_at

    def done(self, report: SyncReport, now: float | None = None) -> None:
        now = time.time() if now is None else now
        if report.ok:
            self.backoff = min(30.0, self.interval_s)
            self.next_at = now + self.interval_s
        else:
            self.next_at = now + self.backoff
            self.backoff = min(self.interval_s, self.backoff * 2)
