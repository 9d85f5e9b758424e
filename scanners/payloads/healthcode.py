"""Health-code links (健康码): matched by configurable patterns, each naming its system.

A pattern is a regular expression with a named group ``token`` (the code's identifier in the
link); it may also have a group ``id`` holding a resident ID number. Patterns come from config,
because every province's system uses its own host and query layout.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from ..idnumber import find_resident_id, mask_id


@dataclass(frozen=True)
class HealthCodePattern:
    system: str  # name shown to the operator, e.g. "粤康码"
    pattern: str  # regex with a named group "token"

    @cached_property
    def regex(self) -> re.Pattern[str]:
        compiled = re.compile(self.pattern)
        if "token" not in compiled.groupindex:
            raise ValueError(
                f"health-code pattern for {self.system!r} needs a (?P<token>...) group"
            )
        return compiled


# Examples of the link shapes seen in the field; real deployments set their own in config.
DEFAULT_PATTERNS: tuple[HealthCodePattern, ...] = (
    HealthCodePattern(
        "health-code (generic)",
        r"^https?://[\w.-]+/(?:[\w./-]*/)?(?:hc|healthcode|jkm)[\w./-]*"
        r"[?&](?:token|code|c)=(?P<token>[\w\-.~%]{6,256})",
    ),
)


@dataclass(frozen=True)
class HealthCodeMatch:
    system: str
    token: str
    url: str
    resident_id_masked: str | None = None

    def to_dict(self) -> dict:
        return {
            "system": self.system,
            "token": self.token,
            "url": self.url,
            "resident_id": self.resident_id_masked,
        }


def match_health_code(text: str, patterns=DEFAULT_PATTERNS) -> HealthCodeMatch | None:
    if len(text) > 4096:
        return None
    for pattern in patterns:
        m = pattern.regex.search(text)
        if m:
            id_text = m.groupdict().get("id") or text
            resident = find_resident_id(id_text)
            return HealthCodeMatch(
                pattern.system,
                m.group("token"),
                text.strip(),
                mask_id(resident) if resident else None,
            )
    return None
