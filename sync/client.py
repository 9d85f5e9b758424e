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

The run is split along its seams: :mod:`sync.transport` (HTTP, typed errors, the signing
identity), :mod:`sync.upload` (outbox to sealed batches, fates back), :mod:`sync.download` (the
town's signed updates), :mod:`sync.report` (:class:`SyncReport`) and :mod:`sync.anchor_client`
(the audit head, remote wipe). This module enrolls, runs them in order and keeps the names
callers import from here.
"""

from __future__ import annotations

import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from fieldkit.errors import SyncError
from fieldkit.i18n import has_key
from fieldkit.i18n import t as word_t

from . import protocol as p
from .anchor_client import exchange_anchor, wipe_revoked
from .download import (
    UPDATE_CLOCK_SLACK_S,
    _apply_town_rules,
    _download,
    _refuse_stale_update,
)
from .report import SyncReport
from .transport import (
    NotEnrolledError,
    SyncAuthError,
    SyncNetworkError,
    SyncServerError,
    SyncTLSError,
    TownClient,
    _CompressionRefused,
    _Identity,
    _identity,
    _raise_for,
    _reason,
    _server_message,
    _tls_context,
    _tls_failure,
)
from .upload import (
    RETRIES,
    SYNCED_FATES,
    _apply_reply,
    _collector_paused,
    _encode,
    _Pipeline,
    _upload,
    _Uploader,
    wire_line,
    wire_record,
)

if TYPE_CHECKING:  # the store's real type, for checkers: the client never imports it
    from fieldkit.store import Store

__all__ = [
    "RETRIES",
    "SYNCED_FATES",
    "UPDATE_CLOCK_SLACK_S",
    "AutoSync",
    "Enrollment",
    "NotEnrolledError",
    "SyncAuthError",
    "SyncError",
    "SyncNetworkError",
    "SyncReport",
    "SyncServerError",
    "SyncTLSError",
    "TownClient",
    "_CompressionRefused",
    "_Identity",
    "_Pipeline",
    "_Uploader",
    "_apply_reply",
    "_apply_town_rules",
    "_collector_paused",
    "_download",
    "_encode",
    "_identity",
    "_raise_for",
    "_reason",
    "_refuse_stale_update",
    "_server_message",
    "_tls_context",
    "_tls_failure",
    "_upload",
    "enroll",
    "freshness",
    "pinned_certificate",
    "rejection_text",
    "run_sync",
    "wire_line",
    "wire_record",
]


# A record's stored sync reason: "server: rejected [code?params]: English" (the town server's
# sync.server.service.rejection), "server: rejected: English" (an older server),
# or "local: cannot encode (detail)". ("server: conflict: …" is shown as the server gave it.)
_CODED = re.compile(r"server: rejected \[([a-z_]+)(?:\?([^\]]*))?\]: ?(.*)", re.S)
_OLD_SCOPE = re.compile(
    r"server: rejected: this device is enrolled for checkpoint\(s\) (.*), not '(.*)'", re.S
)


def rejection_text(reason: str | None, t: Callable[..., str] | None = None) -> str:
    """Why a record was rejected, in the user's language (``t``: the screen's own, else the
    run's): the server's code in catalogue words; text without a code as the server gave it."""
    from urllib.parse import parse_qsl

    say: Callable[..., str] = t or word_t
    text = (reason or "").strip()
    m = _CODED.fullmatch(text)
    if m:
        code, query, english = m.groups()
        params = dict(parse_qsl(query or "", keep_blank_values=True))
        if has_key(f"fixscope.reject.{code}"):
            try:
                return say(f"fixscope.reject.{code}", **params)
            except (KeyError, IndexError, ValueError):
                pass
        return say("fixscope.reject.server_other", text=english.strip())
    old = _OLD_SCOPE.fullmatch(text)  # kept by a device from a server before the codes
    if old:
        return say("fixscope.reject.checkpoint_scope", allowed=old[1], got=old[2])
    for prefix, key in (
        ("server: rejected:", "fixscope.reject.server_other"),
        ("local: cannot encode", "fixscope.reject.local_encode"),
    ):
        if text.startswith(prefix):
            return say(key, text=text[len(prefix) :].strip(" :()"))
    return text


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
            NotEnrolledError: "enrol",  # not a failed identity: no identity yet
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
        wipe_revoked(store, report)
    return report


class AutoSync:
    """Background sync policy for the app: call :meth:`due` from a timer, run in a worker.

    Runs every ``sync.interval_s`` while the server answers; after a failure it backs off
    (doubling up to the interval) so an unreachable server costs almost nothing.

    Not ``tenacity`` (issue 17 item 5): nothing here retries a call in a loop; the app's timer
    asks :meth:`due`, and a failed sync is simply the next one later, which resends the same
    sealed batch (the server takes each batch once).
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
