"""A real ``fieldkit-server serve`` process on loopback, and raw devices to attack it with."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sync import protocol as p
from sync.server.cli import main as server_main
from sync.server.town import ServerSettings, TownKeys
from sync.testing import free_port


def cli(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    code = server_main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def init_town(capsys, town_dir: Path, settings: dict | None = None, *extra) -> None:
    code, out, err = cli(capsys, "init", "--data-dir", town_dir, *extra)
    assert code == 0, out + err
    if settings:
        replace(ServerSettings.load(town_dir), **settings).save(town_dir)


def new_token(capsys, town_dir: Path, name: str, *extra) -> str:
    code, out, err = cli(
        capsys, "device", "add", name, "--json", "--no-qr", "--data-dir", town_dir, *extra
    )
    assert code == 0, err
    return json.loads(out)["token"]


class Served:
    """``fieldkit-server serve`` as its own process; stops when the test ends."""

    def __init__(self, town_dir: Path, *args: str, host: str = "127.0.0.1") -> None:
        self.town_dir, self.host, self.port = town_dir, host, free_port(host)
        self.log_path = town_dir / f"serve-{self.port}.out"
        self.out = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sync.server.cli",
                "serve",
                "--data-dir",
                str(town_dir),
                "--port",
                str(self.port),
                *(["--host", host] if host else []),
                *args,
            ],
            stdout=self.out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    @property
    def scheme(self) -> str:
        return "https" if "https://" in self.output() else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host or '127.0.0.1'}:{self.port}"

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, verify=False) -> Served:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server ended: {self.output()[-2000:]}")
            if f":{self.port}" in self.output():
                try:
                    httpx.get(f"{self.url}/healthz", timeout=1, verify=verify)
                    return self
                except httpx.HTTPError:
                    pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start: {self.output()[-2000:]}")

    def peak_rss_mb(self) -> float:
        """Peak resident memory of the server process so far (VmHWM), in MB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()


class RawDevice:
    """An enrolled device key without a store: it can sign anything, well-formed or not."""

    def __init__(self, http: httpx.Client, token: str, town_dir: Path) -> None:
        self.key = Ed25519PrivateKey.generate()
        resp = http.post(
            p.PATH_ENROLL,
            json={
                "token": token,
                "public_key": p.b64e(p.raw_public(self.key.public_key())),
                "seal_to": p.b64e(p.raw_public(X25519PrivateKey.generate().public_key())),
            },
        )
        assert resp.status_code == 200, resp.text
        self.device_id = p.document_payload_unverified(resp.json())["device_id"]
        self.town_x = TownKeys.load(town_dir).x25519.public_key()

    def seal(self, records: list[dict], **kw) -> bytes:
        return p.seal_batch(
            p.encode_records(records),
            device_id=self.device_id,
            device_key=self.key,
            town_x25519=self.town_x,
            compression="zlib",
            **kw,
        )[1]

    def seal_raw(
        self,
        compressed: bytes,
        count: int,
        *,
        compression: str = "zlib",
        created_at: float | None = None,
    ) -> bytes:
        """A batch around any compressed plaintext, with any header count and time."""
        batch_id = p.new_batch_id()
        eph = X25519PrivateKey.generate()
        eph_pub = p.raw_public(eph.public_key())
        header = p.BatchHeader(
            self.device_id,
            batch_id,
            time.time() if created_at is None else created_at,
            count,
            eph_pub,
            compression,
        )
        header_bytes = header.to_bytes()
        key = p._seal_key(
            eph.exchange(self.town_x), eph_pub, p.raw_public(self.town_x), batch_id.encode()
        )
        nonce = os.urandom(12)
        ciphertext = nonce + AESGCM(key).encrypt(nonce, compressed, header_bytes)
        signed = p.MAGIC + len(header_bytes).to_bytes(4, "big") + header_bytes + ciphertext
        return signed + self.key.sign(signed)

    def post(self, http: httpx.Client, body: bytes) -> httpx.Response:
        return http.post(
            p.PATH_BATCHES,
            content=body,
            headers={
                "Content-Type": "application/octet-stream",
                "X-Fieldkit-Device": self.device_id,
            },
        )

    def get_updates(self, http: httpx.Client, query: str, ts: str | None = None) -> httpx.Response:
        headers = p.sign_request(self.key, self.device_id, "GET", p.PATH_UPDATES, query)
        if ts is not None:  # a signed request claiming any time at all
            headers["X-Fieldkit-Time"] = ts
            headers["X-Fieldkit-Signature"] = p.b64e(
                self.key.sign(
                    p.request_signing_text("GET", p.PATH_UPDATES, query, self.device_id, ts)
                )
            )
        return http.get(f"{p.PATH_UPDATES}?{query}", headers=headers)


def one_sentence(resp: httpx.Response) -> str:
    """The refusal's message, checked to be one line of words, never a traceback."""
    data = resp.json()
    message = data["message"]
    assert isinstance(message, str) and message.strip()
    assert "\n" not in message and "Traceback" not in message
    return message
