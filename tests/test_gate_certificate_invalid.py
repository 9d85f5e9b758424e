"""An EU health certificate (DCC) shown at the gate that does not verify (expired, bad
signature) is not admitted as "health code not checked": the decision is 劝返 with the
certificate's problem, until the worker checks the health code and presses its colour (trial of
stop 21: an expired certificate was admitted with no warning)."""

import json
import time
from dataclasses import replace

import pytest

from fieldkit.config import RuleSettings
from fieldkit.domain import CodeColour, Direction, GateSituation, Outcome
from fieldkit.rules import decide
from scanners.payloads import parse_payload
from tests.conftest import CORPUS
from tests.test_ui_app import ready_store as ready_store  # the fixture

AT_1 = CORPUS / "dcc" / "AT" / "2DCode" / "raw" / "1.json"
BASE = GateSituation(direction=Direction.IN, mode="normal", temperature=36.5)


def test_a_certificate_that_did_not_verify_turns_back_with_its_problem():
    d = decide(replace(BASE, certificate_problem="已于 2021-11-02 过期"), RuleSettings())
    assert d.outcome == Outcome.TURN_BACK
    assert [(r.code, r.params.get("why")) for r in d.reasons] == [
        ("certificate_invalid", "已于 2021-11-02 过期")
    ]


def test_the_health_code_checked_clears_it():
    s = replace(BASE, certificate_problem="已于 2021-11-02 过期", code_colour=CodeColour.GREEN)
    assert decide(s, RuleSettings()).outcome == Outcome.ADMIT


@pytest.mark.skipif(not AT_1.is_file(), reason="shared corpus absent")
async def test_the_gate_turns_back_an_expired_certificate_and_says_why(settings, ready_store):
    from textual.widgets import Static

    from fieldkit.ui.gate import GateScreen
    from fieldkit.ui.messages import ScanRead
    from tests.test_ui_app import GATE, GATE_PIN, SIZE, app_for, login, settle

    payload = json.loads(AT_1.read_text(encoding="utf-8"))["PREFIX"]
    result = parse_payload(payload)
    assert result.kind == "dcc" and not result.ok  # expired long ago
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await login(pilot, GATE, GATE_PIN)
        assert isinstance(app.screen, GateScreen)
        app.post_message(ScanRead(payload, result, "scan", time.perf_counter()))
        await settle(pilot)
        await pilot.press(*"365", "enter")
        await settle(pilot)
        rows = ready_store.g.query("SELECT decision FROM passages")
        assert [r["decision"] for r in rows] == ["turn_back"]
        # an alerting reason: the worker is stopped by the alert, which says why
        shown = " ".join(str(w.render()) for w in app.screen.query(Static))
        assert "健康证明无效" in shown and "过期" in shown, shown
