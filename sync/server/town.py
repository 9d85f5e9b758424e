"""The town's keys and the server settings, both kept in the data directory.

``town-keys.json`` (mode 0600) holds four secrets made by ``fieldkit-server init``:

- ``x25519``: devices seal their batches to its public half;
- ``ed25519``: signs updates, enrollment replies and passes; devices pin its public half;
- ``index_key``: the blind-index key, ``blind_index(index_key, id_number)``; devices receive it at
  enrollment so that gate hits and server-side tracing use the same hash;
- ``data_key``: encrypts record bodies at rest on the server (AES-256-GCM, record id as AAD).

``server.toml`` holds the settings below; every field has a default.
"""

from __future__ import annotations

import json
import os
import secrets
import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from fieldkit.i18n import t

from ..protocol import b64d, b64e, key_fingerprint, raw_private, raw_public

KEYS_FILE = "town-keys.json"
SETTINGS_FILE = "server.toml"


class TownSetupError(Exception):
    """The data directory is missing or incomplete: the message says which command fixes it."""


@dataclass(frozen=True)
class TownKeys:
    x25519: X25519PrivateKey
    ed25519: Ed25519PrivateKey
    index_key: bytes
    data_key: bytes

    @classmethod
    def generate(cls) -> TownKeys:
        return cls(
            X25519PrivateKey.generate(),
            Ed25519PrivateKey.generate(),
            secrets.token_bytes(32),
            secrets.token_bytes(32),
        )

    @property
    def x25519_public(self) -> bytes:
        return raw_public(self.x25519.public_key())

    @property
    def ed25519_public(self) -> bytes:
        return raw_public(self.ed25519.public_key())

    @property
    def fingerprint(self) -> str:
        return key_fingerprint(self.ed25519_public, self.x25519_public)

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": 1,
                "x25519": b64e(raw_private(self.x25519)),
                "ed25519": b64e(raw_private(self.ed25519)),
                "index_key": b64e(self.index_key),
                "data_key": b64e(self.data_key),
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> TownKeys:
        d = json.loads(text)
        return cls(
            X25519PrivateKey.from_private_bytes(b64d(d["x25519"])),
            Ed25519PrivateKey.from_private_bytes(b64d(d["ed25519"])),
            b64d(d["index_key"]),
            b64d(d["data_key"]),
        )

    def save(self, data_dir: Path) -> Path:
        path = data_dir / KEYS_FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.to_json())
        return path

    @classmethod
    def load(cls, data_dir: Path) -> TownKeys:
        path = data_dir / KEYS_FILE
        try:
            return cls.from_json(path.read_text())
        except FileNotFoundError:
            raise TownSetupError(t("server.err.no_keys", path=str(data_dir))) from None
        except (ValueError, KeyError) as err:
            raise TownSetupError(t("server.err.damaged", path=str(path), why=err)) from None


@dataclass(frozen=True)
class ServerSettings:
    database_url: str = ""  # empty: SQLite file town.sqlite3 in the data directory
    db_schema: str = ""  # PostgreSQL schema ("" = public)
    max_body_bytes: int = 8 * 1024 * 1024  # larger requests get 413 before they are read
    max_batch_records: int = 2000  # advertised to devices; bigger batches are refused
    max_plain_bytes: int = 16 * 1024 * 1024  # decompressed size limit of one batch
    max_record_bytes: int = 64 * 1024  # one record larger than this is rejected alone
    max_concurrent_batches: int = 4  # uploads read and opened at once (bounds memory)
    rate_per_second: float = 20.0  # per device, counted once its signature verified
    rate_burst: int = 60
    address_rate_per_second: float = 20.0  # per client address: enrollments and requests
    address_burst: int = 60  # that failed to prove a device (junk, bad signatures ...)
    max_batch_age_s: float = 30 * 86400  # an unseen batch older than this is refused (replay)
    request_window_s: float = 86400  # accepted clock difference for signed GET requests
    token_ttl_s: float = 72 * 3600  # enrollment tokens expire after this
    updates_page: int = 5000  # changes per download reply
    language: str = ""  # messages of fieldkit-server: zh or en ("" = FIELDKIT_LANG, else zh)

    @classmethod
    def load(cls, data_dir: Path) -> ServerSettings:
        path = data_dir / SETTINGS_FILE
        if not path.exists():
            return cls()
        with path.open("rb") as f:
            raw = tomllib.load(f)
        known = {f.name: f for f in fields(cls)}
        values = {}
        for key, value in raw.items():
            if key not in known:
                raise TownSetupError(t("server.err.unknown_setting", path=str(path), key=key))
            expected = type(getattr(cls(), key))
            if expected is float and isinstance(value, int):
                value = float(value)
            if not isinstance(value, expected):
                raise TownSetupError(
                    t(
                        "server.err.setting_type",
                        path=str(path),
                        key=key,
                        expected=t("server.type." + expected.__name__),
                        value=repr(value),
                    )
                )
            values[key] = value
        return cls(**values)

    def save(self, data_dir: Path) -> None:
        lines = ["# FieldKit town server settings (fieldkit-server init wrote this file)"]
        for key, value in asdict(self).items():
            lines.append(f"{key} = {json.dumps(value)}")
        (data_dir / SETTINGS_FILE).write_text("\n".join(lines) + "\n")
