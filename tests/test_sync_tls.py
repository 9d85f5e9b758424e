"""TLS on loopback: ``fieldkit-server serve --tls-cert/--tls-key`` as a real process, devices
enrolled and synced through the real ``fieldkit enroll --ca-file`` / ``fieldkit sync`` commands.

The town's certificate comes from its own small CA (made here with ``cryptography.x509``); a
device that pins the CA file enrolls and syncs, a device without it is refused with one line
that says what to do, and nothing of it reaches the server.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import ssl
import subprocess
import sys
import time

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fieldkit.cli import main as fieldkit_main
from fieldkit.config import load_settings
from fieldkit.domain import Decision, Outcome
from fieldkit.store import PassageInput, init_store
from sync.server.cli import main as server_main
from sync.server.repository import open_repository
from sync.testing import free_port

pytestmark = pytest.mark.usefixtures("english")  # asserts the English messages

ADMIT = Decision(Outcome.ADMIT, ())


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca_and_server_cert(tmp_path):
    """A town CA and a server certificate for 127.0.0.1 signed by it: (ca.pem, cert, key)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("FieldKit test town CA"))
        .issuer_name(_name("FieldKit test town CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = tmp_path / "ca.pem"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_pem = tmp_path / "server.pem"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem = tmp_path / "server.key"
    key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_pem, cert_pem, key_pem


def server_cli(capsys, *argv) -> str:
    code = server_main([str(a) for a in argv])
    out = capsys.readouterr().out
    assert code == 0, out
    return out


def device_store(tmp_path, name: str, passages: int):
    data_dir = tmp_path / name
    settings = load_settings(None, data_dir)
    settings.security.scrypt_n = 2**10
    settings.security.argon2_memory_kib, settings.security.argon2_time_cost = 1024, 1
    settings.security.argon2_parallelism, settings.security.min_pin_length = 1, 4
    store = init_store(settings)
    store.setup("sup", "1234", checkpoint_name="East gate", checkpoint_code="CP-E")
    store.passages.record_many(
        (
            PassageInput(
                direction="in",
                id_kind="resident_id",
                id_number="11010519491231002X",
                name="李四",
                temperature=36.4,
                source="cli",
            ),
            ADMIT,
        )
        for _ in range(passages)
    )
    store.close()
    return data_dir


def fieldkit(capsys, data_dir, *argv) -> tuple[int, str, str]:
    code = fieldkit_main(["--data-dir", str(data_dir), *[str(a) for a in argv]])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def tls_town(tmp_path, capsys):
    town_dir = tmp_path / "town"
    server_cli(capsys, "init", "--data-dir", town_dir)
    ca_pem, cert_pem, key_pem = make_ca_and_server_cert(tmp_path)
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sync.server.cli",
            "serve",
            "--data-dir",
            str(town_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--tls-cert",
            str(cert_pem),
            "--tls-key",
            str(key_pem),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    url = f"https://127.0.0.1:{port}"
    trust = ssl.create_default_context(cafile=str(ca_pem))
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                if httpx.get(f"{url}/healthz", verify=trust, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    proc.kill()
                    raise RuntimeError(
                        "TLS server did not start: " + proc.stdout.read().decode()[-2000:]
                    ) from None
                time.sleep(0.1)
        yield town_dir, url, ca_pem
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def test_tls_enroll_and_sync_pinning_the_ca(tls_town, tmp_path, capsys, monkeypatch):
    town_dir, url, ca_pem = tls_town
    monkeypatch.setenv("FIELDKIT_PIN", "1234")
    assert url.startswith("https://")

    # Plain HTTP to the TLS port gets nowhere: the server really speaks TLS.
    with pytest.raises(httpx.HTTPError):
        httpx.get(url.replace("https://", "http://") + "/healthz", timeout=3)

    token = json.loads(
        server_cli(
            capsys, "device", "add", "gate-east", "--json", "--no-qr", "--data-dir", town_dir
        )
    )["token"]
    device = device_store(tmp_path, "device", passages=25)
    code, out, err = fieldkit(capsys, device, "enroll", url, token, "--ca-file", ca_pem)
    assert code == 0, err
    assert "Enrolled as 'gate-east'" in out

    code, out, err = fieldkit(capsys, device, "sync", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["ok"] is True and report["stored"] == 25 and report["pending"] == 0

    repo = open_repository(None, str(town_dir))
    try:
        assert repo.record_count() == 25
    finally:
        repo.close()


def test_tls_device_without_the_ca_is_refused_in_one_line(tls_town, tmp_path, capsys, monkeypatch):
    town_dir, url, ca_pem = tls_town
    monkeypatch.setenv("FIELDKIT_PIN", "1234")
    token = json.loads(
        server_cli(
            capsys, "device", "add", "gate-west", "--json", "--no-qr", "--data-dir", town_dir
        )
    )["token"]
    device = device_store(tmp_path, "device", passages=3)

    code, out, err = fieldkit(capsys, device, "enroll", url, token)
    assert code != 0 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "TLS certificate" in lines[0] and "--ca-file" in lines[0]
    assert (
        "certificate verify failed" in lines[0]
        or "self-signed" in lines[0]
        or "local issuer" in lines[0]
    )

    # A file that is not a certificate: said as such, before any connection.
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    code, _, err = fieldkit(capsys, device, "enroll", url, token, "--ca-file", junk)
    assert code != 0 and len(err.strip().splitlines()) == 1
    assert "not a PEM certificate" in err

    # The refused attempts enrolled nothing: the token is still good with the CA pinned.
    repo = open_repository(None, str(town_dir))
    try:
        assert [d.status for d in repo.list_devices()] == ["pending"]
    finally:
        repo.close()
    code, _, err = fieldkit(capsys, device, "enroll", url, token, "--ca-file", ca_pem)
    assert code == 0, err
