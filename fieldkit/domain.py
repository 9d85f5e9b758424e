"""Domain values of gate work: what a passage is, what the rules decide. No I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum


class Direction(StrEnum):
    IN = "in"
    OUT = "out"


class Outcome(StrEnum):
    """Ordered from mildest to strongest; the strongest reason wins."""

    ADMIT = "admit"  # 放行
    TURN_BACK = "turn_back"  # 劝返
    DENY = "deny"  # 禁止进入/禁止外出
    REFER = "refer"  # 转诊: hold the person, temporary isolation, call 120


OUTCOME_RANK = {Outcome.ADMIT: 0, Outcome.TURN_BACK: 1, Outcome.DENY: 2, Outcome.REFER: 3}


class CodeColour(StrEnum):
    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"


class PersonCategory(StrEnum):
    RESIDENT = "resident"  # 本小区居民 (tenants included)
    OUTSIDER = "outsider"  # 外来人员
    WORKER = "worker"  # 防疫/保障工作人员 with a work certificate (凭单位工作证明)
    DELIVERY = "delivery"  # 快递外卖配送 (to the gate)
    REPAIR = "repair"  # 抢修 with an approval reference
    VISITOR = "visitor"  # 特殊事宜来访, needs an escort


class TestResult(StrEnum):
    __test__ = False  # not a pytest test class

    NEGATIVE = "negative"
    POSITIVE = "positive"
    PENDING = "pending"


@dataclass(frozen=True)
class Reason:
    """A machine code plus parameters; the UI and CLI render it in the chosen language."""

    code: str
    outcome: Outcome
    alert: bool = False  # needs acknowledgement at the gate, logged
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reasons: tuple[Reason, ...]

    @property
    def alerts(self) -> tuple[Reason, ...]:
        return tuple(r for r in self.reasons if r.alert)


@dataclass(frozen=True)
class GateSituation:
    """Everything the rules look at for one person at the gate."""

    direction: Direction
    mode: str
    temperature: float | None = None
    temperature_skipped_reason: str | None = None  # "not measured" needs a reason
    code_colour: CodeColour | None = None
    test_date: date | None = None
    test_result: TestResult | None = None
    category: PersonCategory = PersonCategory.RESIDENT
    keyperson_category: str | None = None  # the watch-list hit, if any
    under_home_isolation: bool = False
    pass_problem: str | None = None  # invalid / revoked / expired pass
    # A health certificate (EU DCC) shown as the proof, that did not verify (expired, bad
    # signature …): what is wrong, in words; None when none was shown or it verified.
    certificate_problem: str | None = None
    has_escort: bool = False
    approval_ref: str | None = None  # repair crews
    trip_reason: str | None = None
    identified: bool = True  # an ID number or at least a name was given (实名登记)
    now: datetime | None = None
    # The gate worker's own decision (劝返 / 禁止通行) and why: a catalogue key
    # (``fixturnback.why.no_mask``) or the words typed. It only makes the decision stricter.
    worker_outcome: Outcome | None = None
    worker_reason: str | None = None


@dataclass(frozen=True)
class VehicleSituation:
    direction: Direction
    mode: str
    plate: str
    kind: str  # resident | outside | supply
    pass_problem: str | None = None
    occupants: tuple[Decision, ...] = ()
