"""Settings: TOML read by ``tomllib`` into typed, validated dataclasses.

Every key has a built-in default, so no file is needed on first run. ``config.example.toml``
documents every key; a test keeps the two in step. A bad file gives one ``ConfigError`` line
naming the file, the key, what was expected and what was found.
"""

from __future__ import annotations

import codecs
import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import paths
from .errors import ConfigError
from .i18n import syntax_position
from .shared.rulecheck import AREA_MODES, RuleSettings, validate_rules  # noqa: F401
from .shared.rulecheck import check_key as _check_key
from .shared.rulecheck import check_temperature_bounds as _check_temperature_bounds
from .shared.rulecheck import meta as _meta

LANGUAGES = ("zh", "en")
LEVELS = ("village", "community", "town", "county")
_WINDOW = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")


@dataclass
class CheckpointSettings:
    name: str = field(default="卡口", metadata=_meta("Checkpoint name shown on every screen"))
    code: str = field(default="CP-0001", metadata=_meta("Checkpoint code, unique in the town"))
    level: str = field(default="community", metadata=_meta("Administrative level", choices=LEVELS))
    area_mode: str = field(
        default="normal",
        metadata=_meta(
            "Risk mode of the area: normal 常态化, low 低风险, medium 中风险, high 高风险, "
            "sealed 封控",
            choices=AREA_MODES,
        ),
    )


@dataclass
class MonitoringSettings:
    morning_window: str = field(
        default="06:00-10:00",
        metadata=_meta("Morning reading window (早测)", pattern=_WINDOW, expected="HH:MM-HH:MM"),
    )
    evening_window: str = field(
        default="17:00-21:00",
        metadata=_meta("Evening reading window (晚测)", pattern=_WINDOW, expected="HH:MM-HH:MM"),
    )


@dataclass
class PrivacySettings:
    retention_days: int = field(
        default=30,
        metadata=_meta(
            "Synced events older than this are purged; unsynced ones never are", lo=1, hi=3650
        ),
    )


@dataclass
class UiSettings:
    language: str = field(default="zh", metadata=_meta("Screen language", choices=LANGUAGES))
    idle_lock_minutes: float = field(
        default=5.0, metadata=_meta("Lock the screen after this many idle minutes", lo=0.5, hi=240)
    )


@dataclass
class SecuritySettings:
    scrypt_n: int = field(
        default=2**15,
        metadata=_meta(
            "scrypt cost N for PIN keys (power of two; 2**15 ≈ 0.25 s on a Raspberry Pi 4)",
            lo=2**10,
            hi=2**22,
        ),
    )
    scrypt_r: int = field(default=8, metadata=_meta("scrypt block size r", lo=1, hi=32))
    scrypt_p: int = field(default=1, metadata=_meta("scrypt parallelism p", lo=1, hi=16))
    kdf: str = field(
        default="argon2id",
        metadata=_meta(
            "PIN key derivation for new and re-set PINs (scrypt-wrapped keys still open and are"
            " rewrapped at the next login)",
            choices=("argon2id", "scrypt"),
        ),
    )
    argon2_time_cost: int = field(
        default=2,
        metadata=_meta(
            "Argon2id passes (2 passes over 64 MiB with 4 lanes ≈ 0.25 s on a Raspberry Pi 4)",
            lo=1,
            hi=64,
        ),
    )
    argon2_memory_kib: int = field(
        default=65536,
        metadata=_meta("Argon2id memory per PIN guess in KiB (65536 = 64 MiB)", lo=8, hi=4194304),
    )
    argon2_parallelism: int = field(
        default=4,
        metadata=_meta("Argon2id lanes (threads; the Pi 4 has 4 cores)", lo=1, hi=16),
    )
    min_pin_length: int = field(
        default=6,
        metadata=_meta("Fewest characters of a new or re-set PIN", lo=4, hi=64),
    )
    lock_unsynced_days: float = field(
        default=0,
        metadata=_meta(
            "Lock the device to the supervisor after this many days without a sync (0: never)",
            lo=0,
            hi=3650,
        ),
    )
    max_pin_failures: int = field(
        default=5,
        metadata=_meta(
            "Wrong PINs before the operator is locked out (the lock-out then doubles)", lo=1, hi=20
        ),
    )
    lockout_seconds: int = field(
        default=60,
        metadata=_meta(
            "First lock-out length; each further wrong PIN doubles it (max one day)", lo=1, hi=86400
        ),
    )


@dataclass
class CameraSettings:
    source: str = field(
        default="0",
        metadata=_meta("Camera index (0), device path (/dev/video0), video file or image folder"),
    )
    width: int = field(default=1280, metadata=_meta("Capture width in pixels", lo=160, hi=4096))
    height: int = field(default=720, metadata=_meta("Capture height in pixels", lo=120, hi=4096))
    fps: int = field(default=15, metadata=_meta("Capture frames per second", lo=1, hi=60))
    dedupe_seconds: float = field(
        default=3.0,
        metadata=_meta("The same code seen again within this many seconds is ignored", lo=0, hi=60),
    )
    frame_budget_ms: float = field(
        default=80.0,
        metadata=_meta(
            "Time the decoder may spend on one frame before it gives up on it", lo=5, hi=2000
        ),
    )
    health_code_patterns: list[str] = field(
        default_factory=lambda: [
            r"^https?://[^/]*jkm[^/]*/.*[?&](?:token|code)=(?P<token>[A-Za-z0-9_-]+)",
            r"^https?://[^/]*health[^/]*/.*[?&](?:token|code)=(?P<token>[A-Za-z0-9_-]+)",
        ],
        metadata=_meta(
            "Regexes recognising health-code links; group 'token' is kept",
            expected="list of regular expressions",
        ),
    )


@dataclass
class SyncSettings:
    server_url: str = field(
        default="", metadata=_meta("Town server URL (set by `fieldkit enroll`)")
    )
    interval_s: int = field(
        default=300,
        metadata=_meta(
            "Background sync interval in seconds when the server is reachable", lo=10, hi=86400
        ),
    )
    batch_size: int = field(default=500, metadata=_meta("Records per upload batch", lo=1, hi=10000))
    timeout_s: float = field(
        default=20.0, metadata=_meta("Network timeout in seconds", lo=1, hi=600)
    )
    stale_after_hours: float = field(
        default=24.0,
        metadata=_meta("Warn when the key-person list is older than this", lo=0.1, hi=720),
    )
    max_clock_skew_s: float = field(
        default=300.0,
        metadata=_meta(
            "Warn when this device's clock differs from the server's by more", lo=1, hi=86400
        ),
    )


@dataclass
class Settings:
    checkpoint: CheckpointSettings = field(default_factory=CheckpointSettings)
    rules: RuleSettings = field(default_factory=RuleSettings)
    monitoring: MonitoringSettings = field(default_factory=MonitoringSettings)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    ui: UiSettings = field(default_factory=UiSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    camera: CameraSettings = field(default_factory=CameraSettings)
    sync: SyncSettings = field(default_factory=SyncSettings)
    # Not from the file: where this run keeps its data, and which file it was read from.
    data_dir: Path = field(default_factory=paths.data_dir)
    source: Path | None = None
    # The [rules] as the file gave them, before the town's overrides: copied by the store when
    # it first opens, so a key the town stops overriding goes back to this value.
    config_rules: RuleSettings | None = None

    @property
    def store_path(self) -> Path:
        return paths.store_file(self.data_dir)


SECTIONS = [
    f.name
    for f in dataclasses.fields(Settings)
    if f.name not in ("data_dir", "source", "config_rules")
]


def settings_from_mapping(data: dict[str, Any], file: str = "<config>") -> Settings:
    settings = Settings()
    for section, table in data.items():
        if section not in SECTIONS:
            raise ConfigError(
                "config.err.unknown_section",
                file=file,
                section=section,
                known=", ".join(SECTIONS),
            )
        if not isinstance(table, dict):
            raise ConfigError("config.err.not_table", file=file, section=section, found=repr(table))
        target = getattr(settings, section)
        known = {f.name: f for f in dataclasses.fields(target)}
        for key, value in table.items():
            setattr(target, key, _check_key(file, section, known, key, value))
    _check_temperature_bounds(file, settings.rules)
    n = settings.security.scrypt_n
    if n & (n - 1):
        raise ConfigError("config.err.power_of_two", file=file, found=n)
    return settings


def load_settings(
    config: str | os.PathLike[str] | None = None, data_dir: str | os.PathLike[str] | None = None
) -> Settings:
    """Defaults, overlaid by the chosen TOML file; ``data_dir`` from the flag or environment."""
    path = paths.config_file(config)
    data: dict[str, Any] = {}
    if path is not None:
        data = read_config_file(path)
    try:
        settings = settings_from_mapping(data, str(path) if path else "<defaults>")
    except ConfigError as exc:
        # Said in the language the file asks for, if it names a valid one.
        table = data.get("ui")
        asked = table.get("language") if isinstance(table, dict) else None
        exc.language = asked if asked in LANGUAGES else None
        raise
    settings.data_dir = paths.data_dir(data_dir)
    settings.source = path
    return settings


def read_config_file(path: Path) -> dict[str, Any]:
    """The TOML table of a config file: UTF-8, with or without a byte-order mark (Notepad
    writes one). Any other encoding (GBK …) is one line naming the file, never a traceback."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError("config.err.not_found", path=str(path)) from None
    except OSError as exc:
        raise ConfigError("config.err.unreadable", path=str(path), why=exc.strerror) from None
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError("config.err.encoding", path=str(path)) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config.err.toml", path=str(path), why=syntax_position(exc)) from None


def documented_keys() -> list[tuple[str, str, Any, str]]:
    """(section, key, default, doc) for every setting: the example file and tests use it."""
    out = []
    defaults = Settings()
    for section in SECTIONS:
        for f in dataclasses.fields(getattr(defaults, section)):
            out.append(
                (section, f.name, getattr(getattr(defaults, section), f.name), f.metadata["doc"])
            )
    return out
