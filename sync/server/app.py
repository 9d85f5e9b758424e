"""The town server's HTTP API (FastAPI on uvicorn).

Endpoints (paths in :mod:`sync.protocol`):

- ``GET  /v1/info``     public keys' fingerprint, limits, server time;
- ``POST /v1/enroll``   a one-time token + the device's public key → its id and the town keys;
- ``POST /v1/batches``  a sealed, signed batch → each record's fate;
- ``GET  /v1/updates``  signed key-person, revocation, rule and mode changes since a cursor.

Every refusal is a JSON ``{"error": code, "message": one line}`` with a fitting status, is logged
on the ``fieldkit.server`` logger, and stores nothing.

The service behind it is :mod:`sync.server.service` (:class:`TownServer`), records at rest
in :mod:`sync.server.records`, refusals in :mod:`sync.server.refusal`; their names stay
importable from here.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect

from .. import protocol as p
from .device_scope import DeviceScopes
from .records import (
    _UUID,
    BODY_PREFIX,
    MAX_RECORD_FUTURE_S,
    MIN_RECORD_TIME,
    _is_hash,
    _loads,
    _short_text,
    decrypt_body,
    encrypt_body,
    parse_record,
)
from .refusal import (
    Refusal,
    _client,
    _too_many,
)
from .repository import Repository
from .service import (
    AuthenticatedBatch,
    RateLimiter,
    TownServer,
    _best_effort_id,
    _iso,
    _one_line,
    _text,
    token_hash,
)
from .town import ServerSettings, TownKeys

__all__ = [
    "AuthenticatedBatch",
    "BODY_PREFIX",
    "MAX_RECORD_FUTURE_S",
    "MIN_RECORD_TIME",
    "RateLimiter",
    "Refusal",
    "TownServer",
    "_UUID",
    "_best_effort_id",
    "_client",
    "_is_hash",
    "_iso",
    "_loads",
    "_one_line",
    "_short_text",
    "_text",
    "_too_many",
    "decrypt_body",
    "encrypt_body",
    "parse_record",
    "token_hash",
    "create_app",
    "create_app_from_env",
]

log = logging.getLogger("fieldkit.server")


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
    town = TownServer(
        keys, repo, settings or ServerSettings(), scopes or DeviceScopes(None), insecure_http
    )
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
