"""Sync transport: the HTTP client for the town server, its typed errors (one sentence each,
from the catalogue) and the device's signing identity.

Everything that touches the network goes through :class:`TownClient`; a refusal becomes one of
the errors below by the server's code (:func:`_raise_for`), never by its text.
"""

from __future__ import annotations

import functools
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fieldkit.errors import SyncError
from fieldkit.i18n import has_key, word
from fieldkit.i18n import t as word_t

from . import protocol as p

if TYPE_CHECKING:  # the store's real type, for checkers: the client never imports it
    from fieldkit.store import Store


class NotEnrolledError(SyncError):
    pass


class SyncAuthError(SyncError):
    server_code: str | None = None  # the server's refusal code (e.g. device_revoked)


class SyncTLSError(SyncAuthError):
    """The server's TLS certificate is not trusted: retrying cannot help, the CA file can."""


class SyncNetworkError(SyncError):
    pass


class SyncServerError(SyncError):
    pass


class _CompressionRefused(SyncServerError):
    """The server cannot read the batch's compression (it read it when it offered it)."""


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
