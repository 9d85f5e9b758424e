"""Settings: TOML read by ``tomllib`` into typed, validated dataclasses.

Every key has a built-in default, so no file is needed on first run. ``config.example.toml``
documents every key; a test keeps the two in step. A bad file gives one ``ConfigError`` line
naming the file, the key, what was expected and what was found.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import paths
from .errors import ConfigError

AREA_MODES = ("normal", "low", "medium", "high", "sealed")
LANGUAGES = ("zh", "en")
LEVELS = ("village", "community", "town", "county")
_WINDOW = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")


def _meta(
    doc: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    choices: tuple[str, ...] | None = None,
    pattern: re.Pattern[str] | None = None,
    expected: str | None = None,
) -> dict[str, Any]:
    return {
        "doc": doc,
        "lo": lo,
        "hi": hi,
        "choices": choices,
        "pattern": pattern,
        "expected": expected,
    }


@dataclass
class CheckpointSettings:
    name: str = field(default="卡口", metadata=_meta("Checkpoint name shown on every screen"))
    code: str = field(default="CP-0001", metadata=_meta("Checkpoint code, unique in the town"))
    level: str = field(default="community", metadata=_meta("Administrative level", choices=LEVELS))
    area_mode: str = field(
        default="normal",
        metadata=_meta(
            "Risk mode of the area: normal 常态化, low 低风险, medium 中风险, high 高风险, sealed 封控",
            choices=AREA_MODES,
        ),
    )


@dataclass
class RuleSettings:
    fever_threshold: float = field(
        default=37.3,
        metadata=_meta("Temperature (°C) at or above which a person is referred", lo=36.0, hi=40.0),
    )
    temperature_min: float = field(
        default=34.0,
        metadata=_meta(
            "Lowest plausible reading (°C); below it the operator is asked to re-measure",
            lo=25.0,
            hi=36.0,
        ),
    )
    temperature_max: float = field(
        default=43.0,
        metadata=_meta(
            "Highest plausible reading (°C); above it the operator is asked to re-measure",
            lo=38.0,
            hi=45.0,
        ),
    )
    test_validity_days: int = field(
        default=7,
        metadata=_meta(
            "A nucleic-acid test is valid this many days (7日内核酸检测阴性证明)", lo=1, hi=30
        ),
    )
    isolation_days: int = field(
        default=14, metadata=_meta("Days of home isolation (居家隔离医学观察)", lo=1, hi=60)
    )
    health_monitoring_days: int = field(
        default=7, metadata=_meta("Days of home health monitoring (居家健康监测)", lo=1, hi=60)
    )
    test_required_in: list[str] = field(
        default_factory=lambda: ["medium", "high", "sealed"],
        metadata=_meta("Modes in which entering needs a valid test", expected="list of area modes"),
    )
    test_required_out: list[str] = field(
        default_factory=lambda: ["high", "sealed"],
        metadata=_meta("Modes in which leaving needs a valid test", expected="list of area modes"),
    )
    supply_whitelist: list[str] = field(
        default_factory=list,
        metadata=_meta(
            "Plates of supply vehicles allowed in every mode (保供车辆白名单)",
            expected="list of plates",
        ),
    )
    emergency_number: str = field(
        default="120", metadata=_meta("Number to call for a fever referral (转送定点医院)")
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


def _type_name(tp: Any) -> str:
    return {
        "str": "a string",
        "int": "a whole number",
        "float": "a number",
        "list[str]": "a list of strings",
    }.get(str(tp), str(tp))


def _check(file: str, key: str, f: dataclasses.Field[Any], value: Any) -> Any:
    meta = f.metadata
    tp = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))

    def bad(expected: str) -> ConfigError:
        return ConfigError(f"{file}: key {key}: expected {expected}, found {value!r}")

    if tp == "str":
        if not isinstance(value, str):
            raise bad(meta.get("expected") or "a string")
        if meta.get("choices") and value not in meta["choices"]:
            raise bad("one of " + ", ".join(meta["choices"]))
        if meta.get("pattern") and not meta["pattern"].match(value):
            raise bad(meta.get("expected") or "a matching string")
    elif tp in ("int", "float"):
        lo, hi = meta.get("lo"), meta.get("hi")
        expected = _type_name(tp) + (f" from {lo} to {hi}" if lo is not None else "")
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or (tp == "int" and not isinstance(value, int))
        ):
            raise bad(expected)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise bad(expected)
        value = float(value) if tp == "float" else value
    elif tp == "list[str]":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise bad(meta.get("expected") or "a list of strings")
        if key.startswith("rules.test_required") and any(v not in AREA_MODES for v in value):
            raise bad("a list of area modes (" + ", ".join(AREA_MODES) + ")")
        if key.endswith("health_code_patterns"):
            for pattern in value:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise bad(f"valid regular expressions ({exc})") from None
    return value


def _check_key(
    file: str, section: str, known: dict[str, dataclasses.Field[Any]], key: str, value: Any
) -> Any:
    if key not in known:
        raise ConfigError(
            f"{file}: unknown key {section}.{key}; expected one of " + ", ".join(known)
        )
    return _check(file, f"{section}.{key}", known[key], value)


def _check_temperature_bounds(file: str, r: RuleSettings) -> None:
    if r.temperature_min >= r.temperature_max:
        raise ConfigError(
            f"{file}: key rules.temperature_min: expected below "
            f"rules.temperature_max ({r.temperature_max}), found {r.temperature_min}"
        )


def validate_rules(
    mapping: Any,
    source: str,
    base: RuleSettings | None = None,
    *,
    problems: list[str] | None = None,
) -> dict[str, Any]:
    """``[rules]`` keys from elsewhere than the config file (the town's overrides), checked
    exactly as the file's are; the cross-checks see them over ``base`` (default: the defaults).
    Returns the checked values.

    Raises ``ConfigError`` at the first bad key. With a ``problems`` list a bad key is left out
    and its one line appended there instead, so a device keeps the good keys from a town server
    that is older or wrong. A mapping that is not a table is always an error.
    """
    if not isinstance(mapping, dict):
        raise ConfigError(
            f"{source}: key rules: expected a table of rule settings, found {mapping!r}"
        )
    known = {f.name: f for f in dataclasses.fields(RuleSettings)}
    checked: dict[str, Any] = {}
    for key, value in mapping.items():
        try:
            checked[key] = _check_key(source, "rules", known, key, value)
        except ConfigError as err:
            if problems is None:
                raise
            problems.append(str(err))
    try:
        _check_temperature_bounds(source, dataclasses.replace(base or RuleSettings(), **checked))
    except ConfigError as err:
        if problems is None:
            raise
        problems.append(str(err))
        for key in ("temperature_min", "temperature_max"):
            checked.pop(key, None)
    return checked


def settings_from_mapping(data: dict[str, Any], file: str = "<config>") -> Settings:
    settings = Settings()
    for section, table in data.items():
        if section not in SECTIONS:
            raise ConfigError(
                f"{file}: unknown section [{section}]; expected one of " + ", ".join(SECTIONS)
            )
        if not isinstance(table, dict):
            raise ConfigError(
                f"{file}: key {section}: expected a table [{section}], found {table!r}"
            )
        target = getattr(settings, section)
        known = {f.name: f for f in dataclasses.fields(target)}
        for key, value in table.items():
            setattr(target, key, _check_key(file, section, known, key, value))
    _check_temperature_bounds(file, settings.rules)
    n = settings.security.scrypt_n
    if n & (n - 1):
        raise ConfigError(f"{file}: key security.scrypt_n: expected a power of two, found {n}")
    return settings


def load_settings(
    config: str | os.PathLike[str] | None = None, data_dir: str | os.PathLike[str] | None = None
) -> Settings:
    """Defaults, overlaid by the chosen TOML file; ``data_dir`` from the flag or environment."""
    path = paths.config_file(config)
    data: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(
                f"{path}: config file not found; check --config or FIELDKIT_CONFIG"
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(
                f"{path}: not valid TOML ({exc}); fix the file or start without it"
            ) from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from None
    settings = settings_from_mapping(data, str(path) if path else "<defaults>")
    settings.data_dir = paths.data_dir(data_dir)
    settings.source = path
    return settings


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
