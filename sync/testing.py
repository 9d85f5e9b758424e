"""Test and benchmark helpers: in-process transport, loopback server, a connection-cutting proxy.

Not imported by the app; used by ``tests/test_sync_*.py`` and ``bench/sync.py``.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any, Self

import anyio.from_thread
import httpx


class SyncASGITransport(httpx.BaseTransport):
    """Drive an ASGI app from the synchronous client, in-process, through
    ``httpx.ASGITransport``."""

    def __init__(self, app: Any) -> None:
        self._inner = httpx.ASGITransport(app=app)
        self._cm = anyio.from_thread.start_blocking_portal()
        self._portal = self._cm.__enter__()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()

        async def call() -> httpx.Response:
            req = httpx.Request(request.method, request.url, headers=request.headers, content=body)
            resp = await self._inner.handle_async_request(req)
            content = await resp.aread()
            return httpx.Response(resp.status_code, headers=resp.headers, content=content)

        return self._portal.call(call)

    def close(self) -> None:
        """httpx closes its transport with each client; the portal lives until shutdown()."""

    def shutdown(self) -> None:
        self._cm.__exit__(None, None, None)


class LoopbackServer:
    """uvicorn on 127.0.0.1 (a free port) in a thread: real sockets, real HTTP."""

    def __init__(self, app: Any, **config: Any) -> None:
        import uvicorn

        self.config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            log_level="warning",
            access_log=False,
            lifespan="off",
            **config,
        )
        self.server = uvicorn.Server(self.config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("loopback server did not start")
            time.sleep(0.02)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        scheme = "https" if self.config.ssl_certfile else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class CutProxy:
    """TCP proxy on loopback that cuts the next ``cuts`` connections after some bytes.

    ``up_bytes``: cut after this many bytes from client to server (mid-upload);
    ``down_bytes``: or after this many bytes back (the server ingested, the reply is lost).
    Later connections pass through untouched.
    """

    def __init__(
        self,
        target_port: int,
        *,
        up_bytes: int | None = None,
        down_bytes: int | None = None,
        cuts: int = 1,
    ) -> None:
        self.target_port = target_port
        self.up_bytes, self.down_bytes, self.cuts = up_bytes, down_bytes, cuts
        self.cut_count = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._stop = False
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                cut = self.cut_count < self.cuts
                if cut:
                    self.cut_count += 1
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            pair = _Pair(client, upstream)
            threading.Thread(
                target=self._pump,
                daemon=True,
                args=(client, upstream, self.up_bytes if cut else None, pair),
            ).start()
            threading.Thread(
                target=self._pump,
                daemon=True,
                args=(upstream, client, self.down_bytes if cut else None, pair),
            ).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket, limit: int | None, pair: _Pair) -> None:
        sent = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if limit is not None and sent + len(data) >= limit:
                    dst.sendall(data[: max(0, limit - sent)])
                    break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        pair.close()

    def close(self) -> None:
        self._stop = True
        self.listener.close()


class _Pair:
    def __init__(self, a: socket.socket, b: socket.socket) -> None:
        self.a, self.b = a, b

    def close(self) -> None:
        for s in (self.a, self.b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


class StallServer:
    """Accepts connections, reads, never answers: the client's timeout must fire."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self._conns.append(conn)

    def close(self) -> None:
        self.listener.close()
        for c in self._conns:
            c.close()


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on ``host`` now. Ask on the address the server will bind: a port taken on
    127.0.0.2 by another test server is still free on 127.0.0.1, and handing it out again made
    an "impostor" server start as a second copy of the first (one flaky TLS test)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def pg_url() -> str:
    return os.environ.get("FIELDKIT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def pg_available() -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        import psycopg

        with psycopg.connect(pg_url(), connect_timeout=3) as con:
            con.execute("SELECT 1")
        return None
    except Exception as err:  # noqa: BLE001 - any failure means: not available
        return f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err) else ''}"


def new_pg_schema() -> str:
    import secrets

    return f"fk_test_{os.getpid()}_{secrets.token_hex(4)}"


def make_repo(backend: str, tmp_dir: str) -> Any:
    """A fresh, empty repository: SQLite file in ``tmp_dir`` or a new PostgreSQL schema."""
    from .server.repository import open_repository

    if backend == "postgresql":
        repo = open_repository(pg_url(), schema=new_pg_schema())
    else:
        repo = open_repository(None, tmp_dir)
    repo.create_schema()
    return repo


def drop_repo(repo: Any) -> None:
    if getattr(repo, "backend", "") == "postgresql":
        repo.drop_schema()
    repo.close()


class TestTown:
    """A town server in memory: keys, a repository, the ASGI app, and helpers to enroll."""

    __test__ = False  # not a pytest class

    def __init__(self, repo: Any, settings: Any = None) -> None:
        from .server.app import create_app
        from .server.town import ServerSettings, TownKeys

        self.keys = TownKeys.generate()
        self.repo = repo
        self.settings = settings or ServerSettings()
        self.app = create_app(self.keys, repo, self.settings)

    def new_token(self, name: str, ttl: float = 3600) -> str:
        import base64
        import secrets

        from .server.app import token_hash

        token = f"{base64.b32encode(secrets.token_bytes(15)).decode()}.{self.keys.fingerprint}"
        now = time.time()
        self.repo.add_device(name, token_hash(token), now + ttl, now)
        return token

    def enroll_raw(self, http: httpx.Client, name: str) -> tuple[str, Any]:
        """Enroll a bare device key (no store): returns (device id, Ed25519 private key)."""
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

        from . import protocol as p

        key = Ed25519PrivateKey.generate()
        resp = http.post(
            p.PATH_ENROLL,
            json={
                "token": self.new_token(name),
                "public_key": p.b64e(p.raw_public(key.public_key())),
                "seal_to": p.b64e(p.raw_public(X25519PrivateKey.generate().public_key())),
            },
        )
        resp.raise_for_status()
        doc = p.verify_document(resp.json(), self.keys.ed25519.public_key())
        return doc["device_id"], key

    def seal(self, device_id: str, key: Any, records: list[dict], **kw: Any) -> tuple[str, bytes]:
        from . import protocol as p

        return p.seal_batch(
            p.encode_records(records),
            device_id=device_id,
            device_key=key,
            town_x25519=self.keys.x25519.public_key(),
            **kw,
        )


def fake_record(
    i: int,
    *,
    checkpoint: str = "CP-1",
    day: str = "2022-04-01",
    id_hash: str | None = None,
    record_id: str | None = None,
    extra: dict | None = None,
    legacy: bool = False,
) -> dict[str, Any]:
    """A gate passage as a device sends it (the body is what the server keeps sealed).
    ``legacy``: in the form devices before 2026-12 sent, the indexed fields beside the body."""
    import hashlib
    import json
    import uuid

    hour, minute = divmod(i % 1440, 60)
    at = f"{day}T{hour:02d}:{minute:02d}:{i % 60:02d}.000+08:00"
    town_hash = id_hash or hashlib.sha256(f"person{i % 5000}".encode()).hexdigest()
    body = {
        "id": record_id or str(uuid.uuid4()),
        "ts": at,
        "day": day,
        "checkpoint": checkpoint,
        "direction": "in" if i % 2 == 0 else "out",
        "decision": "admit",
        "temperature": 36.5,
        "code_colour": "green",
        "category": "resident",
        "name": "张三",
        "name_masked": "张*",
        "id_number": "11010519491231002X",
        "id_masked": "110105********002X",
        "operator": "gate-a",
        "id_hash_town": town_hash,
        **(extra or {}),
    }
    content_hash = hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()
    record = {"id": body["id"], "kind": "passage", "hash": content_hash, "body": body}
    if legacy:
        record.update(
            {
                "at": body["ts"],
                "checkpoint": checkpoint,
                "direction": body["direction"],
                "id_hash": town_hash,
                "name_masked": "张*",
                "id_masked": "110105********002X",
            }
        )
    return record
