"""The gate rules engine: a decision plus every reason for it.

Table of the defaults (REQUIREMENTS §3–§4; every threshold comes from ``RuleSettings``):

- fever (≥ threshold) → refer, alert; a positive test → refer, alert
- key-person list hit → refer, alert (hold and report to the command office)
- red code → deny, alert; yellow code → turn back, alert
- a person under home isolation trying to leave → deny, alert
- invalid or revoked pass → deny, alert
- test required in this mode and direction but missing or too old → turn back, alert
- medium / high / sealed: outsiders barred (deny, alert); visitors need an escort
- high: leaving needs a reason (essential trips only)
- sealed: nobody out, nobody in, except authorised workers
- medium and above: deliveries are handed over at the gate
- code not shown where the mode requires it (medium and above) → turn back
- no identity (no ID number, no name): residents may pass in normal and low modes (temperature
  and code only); everyone else, and everyone in medium and above, must register (实名登记)
- otherwise admit; outsiders in normal/low modes admitted with "registered"

The strongest outcome wins (refer > deny > turn back > admit); all reasons are kept.
"""

from __future__ import annotations

from datetime import datetime

from .config import RuleSettings
from .domain import (
    OUTCOME_RANK,
    CodeColour,
    Decision,
    Direction,
    GateSituation,
    Outcome,
    PersonCategory,
    Reason,
    TestResult,
    VehicleSituation,
)
from .errors import InputError

STRICT_MODES = ("medium", "high", "sealed")


def check_temperature(value: float | None, rules: RuleSettings) -> None:
    """Implausible readings are a measuring problem, not a decision: ask to re-measure."""
    if value is None:
        return
    if not (rules.temperature_min <= value <= rules.temperature_max):
        raise InputError(
            "err.temp_range",
            value=f"{value:.1f}",
            min=f"{rules.temperature_min:.1f}",
            max=f"{rules.temperature_max:.1f}",
        )


def _combine(reasons: list[Reason]) -> Decision:
    if not reasons:
        reasons = [Reason("ok", Outcome.ADMIT)]
    outcome = max((r.outcome for r in reasons), key=OUTCOME_RANK.__getitem__)
    return Decision(outcome, tuple(reasons))


def decide(s: GateSituation, rules: RuleSettings) -> Decision:
    check_temperature(s.temperature, rules)
    r: list[Reason] = []
    today = (s.now or datetime.now()).date()
    strict = s.mode in STRICT_MODES
    entering = s.direction == Direction.IN

    # Health first: a person with fever must not be let go (不得让患者自行离开).
    if s.temperature is not None and s.temperature >= rules.fever_threshold:
        r.append(
            Reason(
                "fever",
                Outcome.REFER,
                True,
                {
                    "temperature": f"{s.temperature:.1f}",
                    "threshold": f"{rules.fever_threshold:.1f}",
                    "call": rules.emergency_number,
                },
            )
        )
    elif s.temperature is None:
        if not s.temperature_skipped_reason:
            raise InputError("err.temp_missing_reason")
        r.append(
            Reason(
                "temperature_not_measured",
                Outcome.ADMIT,
                False,
                {"why": s.temperature_skipped_reason},
            )
        )
    if s.test_result == TestResult.POSITIVE:
        r.append(Reason("test_positive", Outcome.REFER, True, {"call": rules.emergency_number}))
    if s.keyperson_category:
        r.append(Reason("keyperson_hit", Outcome.REFER, True, {"category": s.keyperson_category}))

    if s.code_colour == CodeColour.RED:
        r.append(Reason("code_red", Outcome.DENY, True))
    elif s.code_colour == CodeColour.YELLOW:
        r.append(Reason("code_yellow", Outcome.TURN_BACK, True))
    elif s.code_colour is None and s.certificate_problem:
        # The proof shown does not hold (an expired certificate was admitted as "code not
        # checked": trial of stop 21). A colour key after checking the health code clears it.
        r.append(
            Reason("certificate_invalid", Outcome.TURN_BACK, True, {"why": s.certificate_problem})
        )
    elif s.code_colour is None and strict:
        r.append(Reason("code_missing", Outcome.TURN_BACK, False))
    elif s.code_colour is None:
        r.append(Reason("code_not_checked", Outcome.ADMIT, False))

    if s.under_home_isolation and not entering:
        r.append(Reason("home_isolation_leaving", Outcome.DENY, True))
    if s.pass_problem:
        r.append(Reason("pass_invalid", Outcome.DENY, True, {"why": s.pass_problem}))

    required = rules.test_required_in if entering else rules.test_required_out
    if s.mode in required and s.category != PersonCategory.WORKER:
        if s.test_date is None:
            r.append(
                Reason(
                    "test_missing", Outcome.TURN_BACK, True, {"days": str(rules.test_validity_days)}
                )
            )
        else:
            age = (today - s.test_date).days
            if age < 0:
                raise InputError("err.test_future", value=s.test_date.isoformat())
            if age > rules.test_validity_days:
                r.append(
                    Reason(
                        "test_too_old",
                        Outcome.TURN_BACK,
                        True,
                        {"age": str(age), "days": str(rules.test_validity_days)},
                    )
                )

    cat = s.category
    if s.mode == "sealed":
        if cat == PersonCategory.WORKER:
            r.append(Reason("authorised_worker", Outcome.ADMIT))
        elif cat == PersonCategory.DELIVERY:
            r.append(Reason("delivery_to_gate", Outcome.TURN_BACK))
        else:
            r.append(Reason("sealed_no_passage", Outcome.DENY, cat == PersonCategory.OUTSIDER))
    elif strict and entering and cat == PersonCategory.DELIVERY:
        r.append(Reason("delivery_to_gate", Outcome.TURN_BACK))
    elif strict and entering and cat == PersonCategory.OUTSIDER:
        r.append(Reason("outsider_barred", Outcome.DENY, True, {"mode": s.mode}))
    elif s.mode == "high" and cat not in (PersonCategory.WORKER, PersonCategory.RESIDENT):
        r.append(Reason("non_essential", Outcome.TURN_BACK, False))
    elif s.mode == "high" and not entering and not s.trip_reason and cat != PersonCategory.WORKER:
        r.append(Reason("reason_needed", Outcome.TURN_BACK, False))
    elif cat == PersonCategory.OUTSIDER and entering:
        r.append(Reason("outsider_registered", Outcome.ADMIT))

    if not s.identified and (strict or cat != PersonCategory.RESIDENT):
        r.append(Reason("identity_missing", Outcome.TURN_BACK, False))
    if strict and entering and cat == PersonCategory.VISITOR and not s.has_escort:
        r.append(Reason("escort_needed", Outcome.TURN_BACK, False))
    if cat == PersonCategory.REPAIR and not s.approval_ref and s.mode != "sealed":
        r.append(Reason("approval_needed", Outcome.TURN_BACK, False))
    worker = worker_reason(s.worker_outcome, s.worker_reason)
    if worker is not None:  # said first: it is why this person was stopped
        r.insert(0, worker)
    return _combine(r)


WORKER_OUTCOMES = (Outcome.TURN_BACK, Outcome.DENY)


def worker_reason(outcome: Outcome | str | None, why: str | None) -> Reason | None:
    """The gate worker's own 劝返 / 禁止通行 as one more reason (``worker_turn_back``,
    ``worker_deny``). It joins the rules' reasons and the strongest still wins, so a worker can
    make a decision stricter, never milder: a denial of someone the rules refer stays a
    referral, and nobody the rules stop is let through by it."""
    if outcome is None or outcome == "":
        return None
    if outcome not in {o.value for o in WORKER_OUTCOMES}:
        raise InputError("fixturnback.err_outcome")
    if not why or not why.strip():
        raise InputError("fixturnback.other_missing")
    chosen = Outcome(outcome)
    return Reason(f"worker_{chosen.value}", chosen, False, {"why": why.strip()})


def hold_fever_companions(decisions: list[Decision], rules: RuleSettings) -> list[Decision]:
    """Occupants of one vehicle: when one is referred for fever and the rule
    ``fever_companions`` is "hold" (the default: people who shared the vehicle are close
    contacts, and a referral is not let go, 不得让患者自行离开), the others are held too."""
    feverish = [any(r.code == "fever" for r in d.reasons) for d in decisions]
    if rules.fever_companions != "hold" or not any(feverish):
        return decisions
    held = Reason("fever_companion_held", Outcome.DENY, True)
    return [
        d if fever else _combine([r for r in d.reasons if r.code != "ok"] + [held])
        for d, fever in zip(decisions, feverish, strict=True)
    ]


def with_vehicle_reasons(occupant: Decision, vehicle: Decision) -> Decision:
    """An occupant passes only if the vehicle does: the vehicle's own reasons against it
    (barred, no pass, sealed …) join the occupant's. Another occupant's outcome does not: a
    companion of a feverish person is held by :func:`hold_fever_companions`, not referred."""
    own = [
        r
        for r in vehicle.reasons
        if r.outcome != Outcome.ADMIT and r.code != "occupant_not_admitted"
    ]
    if not own:
        return occupant
    return _combine([r for r in occupant.reasons if r.code != "ok"] + own)


def decide_vehicle(v: VehicleSituation, rules: RuleSettings) -> Decision:
    """A vehicle passes only if its own rule and every occupant's decision admit it."""
    r: list[Reason] = []
    plate = v.plate.replace(" ", "").upper()
    whitelisted = plate in {p.replace(" ", "").upper() for p in rules.supply_whitelist}
    if v.kind == "supply":
        if whitelisted:
            r.append(Reason("supply_whitelisted", Outcome.ADMIT))
        elif v.mode in STRICT_MODES:
            r.append(Reason("supply_not_whitelisted", Outcome.DENY, True, {"plate": plate}))
    elif v.kind == "outside" and v.mode in STRICT_MODES and not whitelisted:
        r.append(Reason("outside_vehicle_barred", Outcome.DENY, True, {"mode": v.mode}))
    if v.mode == "sealed" and v.kind != "supply":
        r.append(Reason("sealed_no_passage", Outcome.DENY, False))
    if v.pass_problem:
        r.append(Reason("pass_invalid", Outcome.DENY, True, {"why": v.pass_problem}))
    if not v.occupants:
        r.append(Reason("occupants_missing", Outcome.TURN_BACK, False))
    for i, occupant in enumerate(v.occupants, 1):
        if occupant.outcome != Outcome.ADMIT:
            r.append(
                Reason(
                    "occupant_not_admitted",
                    occupant.outcome,
                    any(x.alert for x in occupant.reasons),
                    {"n": str(i), "outcome": occupant.outcome.value},
                )
            )
    # What was not checked or is worth a word about an admitted occupant (code not checked,
    # temperature not taken …) is said of the vehicle too, once: never "绿码" by default.
    seen = {x.code for x in r}
    for occupant in v.occupants:
        for x in occupant.reasons:
            if x.outcome == Outcome.ADMIT and x.code != "ok" and x.code not in seen:
                seen.add(x.code)
                r.append(x)
    return _combine(r)
