"""Table-driven: every area mode × every gate situation → the expected decision."""

from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest

from fieldkit.config import AREA_MODES, RuleSettings
from fieldkit.domain import (
    CodeColour,
    Direction,
    GateSituation,
    Outcome,
    PersonCategory,
    TestResult,
    VehicleSituation,
)
from fieldkit.errors import InputError
from fieldkit.rules import decide, decide_vehicle

pytestmark = pytest.mark.usefixtures("english")  # asserts the English messages

NOW = datetime(2026, 11, 23, 9, 30)
FRESH = NOW.date() - timedelta(days=2)
STALE = NOW.date() - timedelta(days=10)
A, T, D, R = Outcome.ADMIT, Outcome.TURN_BACK, Outcome.DENY, Outcome.REFER

BASE = GateSituation(
    direction=Direction.IN,
    mode="normal",
    temperature=36.5,
    code_colour=CodeColour.GREEN,
    test_date=FRESH,
    test_result=TestResult.NEGATIVE,
    category=PersonCategory.RESIDENT,
    now=NOW,
)
OUT = replace(BASE, direction=Direction.OUT, trip_reason="就医")

# situation name → (situation, expected outcomes for normal, low, medium, high, sealed, a reason
# code that must be among the reasons in every mode or None)
TABLE = {
    "resident in, all fine": (BASE, (A, A, A, A, D), None),
    "resident out with reason": (OUT, (A, A, A, A, D), None),
    "resident out, no reason": (replace(OUT, trip_reason=None), (A, A, A, T, D), None),
    "fever in": (replace(BASE, temperature=38.2), (R, R, R, R, R), "fever"),
    "fever out": (replace(OUT, temperature=37.3), (R, R, R, R, R), "fever"),
    "red code in": (replace(BASE, code_colour=CodeColour.RED), (D, D, D, D, D), "code_red"),
    "yellow code in": (
        replace(BASE, code_colour=CodeColour.YELLOW),
        (T, T, T, T, D),
        "code_yellow",
    ),
    "no code in": (replace(BASE, code_colour=None), (A, A, T, T, D), None),
    "outsider in": (replace(BASE, category=PersonCategory.OUTSIDER), (A, A, D, D, D), None),
    "outsider out": (replace(OUT, category=PersonCategory.OUTSIDER), (A, A, A, T, D), None),
    "worker in, no test": (
        replace(BASE, category=PersonCategory.WORKER, test_date=None),
        (A, A, A, A, A),
        None,
    ),
    "worker out, no test": (
        replace(OUT, category=PersonCategory.WORKER, test_date=None),
        (A, A, A, A, A),
        None,
    ),
    "delivery in": (replace(BASE, category=PersonCategory.DELIVERY), (A, A, T, T, T), None),
    "stale test in": (replace(BASE, test_date=STALE), (A, A, T, T, D), None),
    "no test in": (replace(BASE, test_date=None, test_result=None), (A, A, T, T, D), None),
    "no test out": (replace(OUT, test_date=None, test_result=None), (A, A, A, T, D), None),
    "stale test out": (replace(OUT, test_date=STALE), (A, A, A, T, D), None),
    "positive test": (
        replace(BASE, test_result=TestResult.POSITIVE),
        (R, R, R, R, R),
        "test_positive",
    ),
    "key person in": (replace(BASE, keyperson_category="密接"), (R, R, R, R, R), "keyperson_hit"),
    "key person out": (replace(OUT, keyperson_category="次密接"), (R, R, R, R, R), "keyperson_hit"),
    "home isolation leaving": (
        replace(OUT, under_home_isolation=True),
        (D, D, D, D, D),
        "home_isolation_leaving",
    ),
    "home isolation returning": (replace(BASE, under_home_isolation=True), (A, A, A, A, D), None),
    "revoked pass": (replace(BASE, pass_problem="revoked"), (D, D, D, D, D), "pass_invalid"),
    "visitor, no escort": (replace(BASE, category=PersonCategory.VISITOR), (A, A, T, T, D), None),
    "visitor with escort": (
        replace(BASE, category=PersonCategory.VISITOR, has_escort=True),
        (A, A, A, T, D),
        None,
    ),
    "repair, no approval": (replace(BASE, category=PersonCategory.REPAIR), (T, T, T, T, D), None),
    "repair with approval": (
        replace(BASE, category=PersonCategory.REPAIR, approval_ref="QX-1"),
        (A, A, A, T, D),
        None,
    ),
    "not measured, with reason": (
        replace(BASE, temperature=None, temperature_skipped_reason="no thermometer"),
        (A, A, A, A, D),
        "temperature_not_measured",
    ),
    "anonymous resident": (replace(BASE, identified=False), (A, A, T, T, D), None),
    "anonymous outsider": (
        replace(BASE, identified=False, category=PersonCategory.OUTSIDER),
        (T, T, D, D, D),
        "identity_missing",
    ),
    "fever and red code": (
        replace(BASE, temperature=39.0, code_colour=CodeColour.RED),
        (R, R, R, R, R),
        "code_red",
    ),
}


@pytest.mark.parametrize("mode_index, mode", list(enumerate(AREA_MODES)))
@pytest.mark.parametrize("name", list(TABLE))
def test_mode_by_situation(name, mode_index, mode):
    situation, expected, must_have = TABLE[name]
    decision = decide(replace(situation, mode=mode), RuleSettings())
    codes = [r.code for r in decision.reasons]
    assert decision.outcome == expected[mode_index], f"{name} in {mode}: {codes}"
    assert decision.reasons, "every decision carries its reasons"
    if must_have:
        assert must_have in codes
    # Every reason that is an alert must be one the gate has to acknowledge.
    assert all(r.alert for r in decision.alerts)


def test_thresholds_come_from_config():
    rules = RuleSettings(fever_threshold=37.0, test_validity_days=3)
    assert decide(replace(BASE, temperature=37.1), rules).outcome == R
    assert decide(replace(BASE, temperature=37.1), RuleSettings()).outcome == A
    four_days = replace(BASE, mode="medium", test_date=NOW.date() - timedelta(days=4))
    assert decide(four_days, rules).outcome == T
    assert decide(four_days, RuleSettings()).outcome == A
    only_high = RuleSettings(test_required_in=["high"])
    assert decide(replace(BASE, mode="medium", test_date=None), only_high).outcome == A


@pytest.mark.parametrize("temp", [30.0, 33.9, 43.1, 50.0])
def test_implausible_temperature_asks_to_remeasure(temp):
    with pytest.raises(InputError, match="re-measure"):
        decide(replace(BASE, temperature=temp), RuleSettings())


def test_missing_temperature_needs_a_reason():
    with pytest.raises(InputError, match="not measured with a reason"):
        decide(replace(BASE, temperature=None), RuleSettings())


def test_future_test_date_is_refused():
    with pytest.raises(InputError, match="in the future"):
        decide(replace(BASE, mode="medium", test_date=date(2026, 12, 30)), RuleSettings())


def test_strongest_outcome_wins_and_all_reasons_are_kept():
    d = decide(
        replace(
            OUT,
            mode="high",
            temperature=38.0,
            code_colour=CodeColour.YELLOW,
            test_date=STALE,
            under_home_isolation=True,
        ),
        RuleSettings(),
    )
    assert d.outcome == R
    assert {"fever", "code_yellow", "home_isolation_leaving", "test_too_old"} <= {
        r.code for r in d.reasons
    }


ADMITTED = decide(BASE, RuleSettings())
FEVER = decide(replace(BASE, temperature=38.5), RuleSettings())


@pytest.mark.parametrize(
    "mode, kind, plate, occupants, expected",
    [
        ("normal", "resident", "京A1", (ADMITTED,), A),
        ("normal", "outside", "京B2", (ADMITTED,), A),
        ("medium", "outside", "京B2", (ADMITTED,), D),
        ("high", "outside", "京B2", (ADMITTED,), D),
        ("medium", "supply", "京C3", (ADMITTED,), D),
        ("medium", "supply", "京S 001", (ADMITTED,), A),
        ("sealed", "supply", "京S001", (ADMITTED,), A),
        ("sealed", "resident", "京A1", (ADMITTED,), D),
        ("normal", "resident", "京A1", (ADMITTED, FEVER), R),
        ("normal", "resident", "京A1", (), T),
    ],
)
def test_vehicles(mode, kind, plate, occupants, expected):
    rules = RuleSettings(supply_whitelist=["京S001"])
    d = decide_vehicle(VehicleSituation(Direction.IN, mode, plate, kind, None, occupants), rules)
    assert d.outcome == expected, [r.code for r in d.reasons]
