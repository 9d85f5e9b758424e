"""The town server's transport (issue 15), against real ``fieldkit-server serve`` processes: where
it listens by default, plain HTTP refused beyond this machine unless insisted on (and then warned
about), the town's own certificate pinned from the token, and an update replayed by someone on
the way refused by the device."""

from __future__ import annotations

import time

import httpx
import pytest

import sync.client as sc
from sync import protocol as p
from sync.server.cli import build_parser

from .server_attack_support import RawDevice, Served, cli, init_town, new_token
from .sync_support import add_passages, device_store


def test_serve_listens_on_loopback_by_default(tmp_path, capsys):
    assert build_parser().parse_args(["serve"]).host == "127.0.0.1"
    town = tmp_path / "town"
    init_town(capsys, town)
    server = Served(town, host="").wait_ready()  # no --host at all
    try:
        assert httpx.get(f"http://127.0.0.1:{server.port}/healthz").status_code == 200
        assert f"http://127.0.0.1:{server.port}" in server.output()
    finally:
        server.stop()


def test_plain_http_elsewhere_is_refused_or_warned(tmp_path, capsys):
    town = tmp_path / "town"
    init_town(capsys, town)
    # 127.0.0.2 stands for any address beyond 127.0.0.1 / ::1 / localhost.
    refused = Served(town, host="127.0.0.2")
    try:
        refused.proc.wait(30)  # it ends by itself; an old server would keep serving
    except Exception:
        refused.stop()
        raise
    assert refused.proc.returncode == 2
    assert "--insecure-http" in refused.output() and "Traceback" not in refused.output()
    refused.stop()

    server = Served(town, "--insecure-http", host="127.0.0.2").wait_ready()
    try:
        started = server.output()
        assert "WARNING" in started and "--insecure-http" in started
        with httpx.Client(base_url=server.url, timeout=10) as http:
            RawDevice(http, new_token(capsys, town, "gate-east"), town)
            RawDevice(http, new_token(capsys, town, "gate-west"), town)
        log = (town / "server.log").read_text()
        assert log.count("enrolled over plain HTTP") == 2
    finally:
        server.stop()


def test_self_signed_town_certificate_is_pinned_from_the_token(tmp_path, capsys):
    town = tmp_path / "town"
    init_town(capsys, town, None, "--tls-self-signed", "--tls-host", "127.0.0.2")
    other = tmp_path / "other"  # another town (or an interceptor) with its own certificate
    init_town(capsys, other, None, "--tls-self-signed", "--tls-host", "127.0.0.2")
    token = new_token(capsys, town, "gate-east")
    secret, key_fp, cert_pin = token.split(".")
    assert len(key_fp) == 16 and len(cert_pin) == 64
    server = Served(town, host="127.0.0.2").wait_ready()
    impostor = Served(other, host="127.0.0.2").wait_ready()
    store = device_store(tmp_path / "device", 50)
    try:
        assert server.url.startswith("https://")
        # The same token presented to a server with another certificate: refused before a
        # byte of it is sent.
        with pytest.raises(sc.SyncTLSError) as refused:
            sc.enroll(store, impostor.url, token)
        assert cert_pin[:16] in str(refused.value)
        assert "enroll" not in (other / "server.log").read_text()
        assert store.kv.get("sync.device_id") is None

        sc.enroll(store, server.url, token)
        assert store.kv.get("sync.tls_ca_pem", "").startswith("-----BEGIN CERTIFICATE")
        add_passages(store, 20)
        report = sc.run_sync(store, store.settings)
        assert report.ok, report.error
        assert report.stored == 20
        # Redirected to the impostor afterwards, the pinned device refuses it.
        store.kv.set("sync.server_url", impostor.url)
        add_passages(store, 1)
        report = sc.run_sync(store, store.settings)
        assert not report.ok and report.error_kind == "auth"
        assert store.outbox.counts()["pending"] == 1
    finally:
        store.close()
        server.stop()
        impostor.stop()


class ReplayingProxy(httpx.HTTPTransport):
    """A man in the middle: passes everything on, keeps the first update it sees, and answers
    every later update request with it while ``replay`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.kept: tuple[int, bytes, dict] | None = None
        self.replay = False
        self.replayed = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == p.PATH_UPDATES and self.replay and self.kept:
            self.replayed += 1
            status, content, headers = self.kept
            return httpx.Response(status, content=content, headers=headers)
        response = super().handle_request(request)
        if request.url.path == p.PATH_UPDATES and self.kept is None:
            content = response.read()
            self.kept = (response.status_code, content, {"content-type": "application/json"})
            return httpx.Response(response.status_code, content=content, headers=response.headers)
        return response


def test_replayed_update_is_refused_and_reported(tmp_path, capsys):
    town = tmp_path / "town"
    init_town(capsys, town)
    server = Served(town).wait_ready()
    store = device_store(tmp_path / "device", 50)
    mitm = ReplayingProxy()
    try:
        sc.enroll(store, server.url, new_token(capsys, town, "gate-east"))
        first = sc.run_sync(store, store.settings, transport=mitm)
        assert first.ok, first.error
        assert mitm.kept is not None
        # The town raises the mode and revokes nothing else; the man in the middle replays
        # the old (signed, genuine) update to hide it.
        assert cli(capsys, "mode", "high", "--data-dir", town)[0] == 0
        time.sleep(0.01)
        mitm.replay = True
        second = sc.run_sync(store, store.settings, transport=mitm)
        assert mitm.replayed == 1
        assert not second.ok  # never "ok" while the town's changes are withheld
        assert "not applied" in second.error or "未应用" in second.error
        assert store.kv.get("area_mode") != "high"
        # Past the configured age without a fresh update, the device warns.
        stale_after = store.settings.sync.stale_after_hours * 3600
        later = sc.freshness(store, store.settings, now=time.time() + stale_after + 60)
        assert later["stale"] and later["warnings"]
        # The genuine update, straight from the server, goes through.
        third = sc.run_sync(store, store.settings)
        assert third.ok, third.error
        assert store.kv.get("area_mode") == "high" and third.mode == "high"
    finally:
        store.close()
        server.stop()
