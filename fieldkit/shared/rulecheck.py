"""The checks of settings keys, and the town's rule settings they are first used for.

A device checks its config file with these, and the town server checks the rules it sends to
devices (``fieldkit-server rules FILE``) with the very same code, so a value one side accepts
the other accepts too. :mod:`fieldkit.config` builds the other sections on :func:`meta` and
:func:`check_key`.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..i18n import Msg, has_key

AREA_MODES = ("normal", "low", "medium", "high", "sealed")


def meta(
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
class RuleSettings:
    fever_threshold: float = field(
        default=37.3,
        metadata=meta("Temperature (°C) at or above which a person is referred", lo=36.0, hi=40.0),
    )
    temperature_min: float = field(
        default=34.0,
        metadata=meta(
            "Lowest plausible reading (°C); below it the operator is asked to re-measure",
            lo=25.0,
            hi=36.0,
        ),
    )
    temperature_max: float = field(
        default=43.0,
        metadata=meta(
            "Highest plausible reading (°C); above it the operator is asked to re-measure",
            lo=38.0,
            hi=45.0,
        ),
    )
    test_validity_days: int = field(
        default=7,
        metadata=meta(
            "A nucleic-acid test is valid this many days (7日内核酸检测阴性证明)", lo=1, hi=30
        ),
    )
    isolation_days: int = field(
        default=14, metadata=meta("Days of home isolation (居家隔离医学观察)", lo=1, hi=60)
    )
    health_monitoring_days: int = field(
        default=7, metadata=meta("Days of home health monitoring (居家健康监测)", lo=1, hi=60)
    )
    test_required_in: list[str] = field(
        default_factory=lambda: ["medium", "high", "sealed"],
        metadata=meta("Modes in which entering needs a valid test", expected="list of area modes"),
    )
    test_required_out: list[str] = field(
        default_factory=lambda: ["high", "sealed"],
        metadata=meta("Modes in which leaving needs a valid test", expected="list of area modes"),
    )
    supply_whitelist: list[str] = field(
        default_factory=list,
        metadata=meta(
            "Plates of supply vehicles allowed in every mode (保供车辆白名单)",
            expected="list of plates",
        ),
    )
    emergency_number: str = field(
        default="120", metadata=meta("Number to call for a fever referral (转送定点医院)")
    )
    fever_companions: str = field(
        default="hold",
        metadata=meta(
            "People in a vehicle with a feverish occupant: 'hold' them at the gate with the "
            "referral (same-vehicle close contacts, 密接) or judge 'each' on their own",
            choices=("hold", "each"),
        ),
    )


def _type_name(tp: Any) -> Msg | str:
    name = {"str": "string", "int": "whole", "float": "number", "list[str]": "strings"}.get(str(tp))
    return Msg("config.expect." + name) if name else str(tp)


def _expected(text: str | None, default: str) -> Msg | str:
    """A field's own ``expected`` text (``list of area modes``) as a catalogue word if it has
    one; formats such as ``HH:MM-HH:MM`` stay as they are. No text: the default word."""
    if not text:
        return Msg("config.expect." + default)
    key = "config.expect." + re.sub(r"[^a-z]+", "_", text.lower()).strip("_")
    return Msg(key) if has_key(key) else text


def _check(file: str, key: str, f: dataclasses.Field[Any], value: Any) -> Any:
    meta = f.metadata
    tp = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))

    def bad(expected: Msg | str) -> ConfigError:
        return ConfigError(
            "config.err.key", file=file, key=key, expected=expected, found=repr(value)
        )

    if tp == "str":
        if not isinstance(value, str):
            raise bad(_expected(meta.get("expected"), "string"))
        if meta.get("choices") and value not in meta["choices"]:
            raise bad(Msg("config.expect.one_of", values=", ".join(meta["choices"])))
        if meta.get("pattern") and not meta["pattern"].match(value):
            raise bad(_expected(meta.get("expected"), "matching"))
    elif tp in ("int", "float"):
        lo, hi = meta.get("lo"), meta.get("hi")
        kind = _type_name(tp)
        expected = Msg("config.expect.range", what=kind, lo=lo, hi=hi) if lo is not None else kind
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
            raise bad(_expected(meta.get("expected"), "strings"))
        if key.startswith("rules.test_required") and any(v not in AREA_MODES for v in value):
            raise bad(Msg("config.expect.area_modes", modes=", ".join(AREA_MODES)))
        if key.endswith("health_code_patterns"):
            for pattern in value:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise bad(Msg("config.expect.regex", why=exc)) from None
    return value


def check_key(
    file: str, section: str, known: dict[str, dataclasses.Field[Any]], key: str, value: Any
) -> Any:
    if key not in known:
        raise ConfigError(
            "config.err.unknown_key", file=file, key=f"{section}.{key}", known=", ".join(known)
        )
    return _check(file, f"{section}.{key}", known[key], value)


def check_temperature_bounds(file: str, r: RuleSettings) -> None:
    if r.temperature_min >= r.temperature_max:
        raise ConfigError(
            "config.err.temp_bounds", file=file, max=r.temperature_max, min=r.temperature_min
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
        raise ConfigError("config.err.rules_table", file=source, found=repr(mapping))
    known = {f.name: f for f in dataclasses.fields(RuleSettings)}
    checked: dict[str, Any] = {}
    for key, value in mapping.items():
        try:
            checked[key] = check_key(source, "rules", known, key, value)
        except ConfigError as err:
            if problems is None:
                raise
            problems.append(str(err))
    try:
        check_temperature_bounds(source, dataclasses.replace(base or RuleSettings(), **checked))
    except ConfigError as err:
        if problems is None:
            raise
        problems.append(str(err))
        for key in ("temperature_min", "temperature_max"):
            checked.pop(key, None)
    return checked
