"""The town's own TLS certificate, made by ``fieldkit-server init --tls-self-signed``.

No certificate authority is needed: the certificate's SHA-256 fingerprint rides in every
enrollment token (``SECRET.KEYFP.CERTSHA256``); the device fetches the certificate at enrollment,
checks it against the token, and from then on trusts that certificate alone (it is kept as the
device's ``sync.tls_ca_pem``). ``serve`` uses it when no ``--tls-cert`` is given.

Files in the data directory: ``tls-cert.pem`` and ``tls-key.pem`` (mode 0600).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import socket
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CERT_FILE = "tls-cert.pem"
KEY_FILE = "tls-key.pem"
VALID_DAYS = 3650


def cert_paths(data_dir: Path) -> tuple[Path, Path]:
    return data_dir / CERT_FILE, data_dir / KEY_FILE


def certificate_fingerprint(pem: bytes) -> str:
    """SHA-256 of the certificate's DER bytes, 64 lower-case hex digits (what devices pin)."""
    cert = x509.load_pem_x509_certificate(pem)
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def town_certificate_fingerprint(data_dir: Path) -> str | None:
    """The fingerprint of the town's own certificate, or None when it has none."""
    cert, _ = cert_paths(data_dir)
    try:
        return certificate_fingerprint(cert.read_bytes())
    except (OSError, ValueError):
        return None


def _names(hosts: list[str]) -> list[x509.GeneralName]:
    wanted = ["localhost", "127.0.0.1", "::1", socket.gethostname(), *hosts]
    names: list[x509.GeneralName] = []
    seen: set[str] = set()
    for host in wanted:
        host = host.strip()
        if not host or host in seen:
            continue
        seen.add(host)
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def make_self_signed(data_dir: Path, hosts: list[str]) -> tuple[Path, str, list[str]]:
    """Write a new certificate and key: (certificate path, fingerprint, names it carries)."""
    now = dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "FieldKit town server")])
    names = _names(hosts)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = cert_paths(data_dir)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    cert_path.write_bytes(pem)
    shown = [str(getattr(n, "value", n)) for n in names]
    return cert_path, certificate_fingerprint(pem), shown
