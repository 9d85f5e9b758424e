"""The gate worker's own 劝返 / 禁止通行 with a reason (trial of the gate, item 11), and the
keys a new worker needs at 80×24 (item 14).

REQUIREMENTS §2: "Decision: admit / turn back / deny / refer … Every decision is logged with its
reason; turn-backs and denials too." Ctrl+N opens a small dialog: Tab switches 劝返 ⇄ 禁止通行,
a digit picks the reason (5 其他 asks for the words); the person in the form is recorded with
the worker's decision as one of its reasons. The strongest outcome still wins, so the worker
can only make a decision stricter.
"""

# ruff: noqa: F811  (the ready_store fixture is imported from test_ui_app)
from __future__ import annotations

import json

import pytest
from rich.cells import cell_len
from textual.widgets import DataTable, Input

from fieldkit.config import RuleSettings
from fieldkit.domain import Direction, GateSituation, Outcome
from fieldkit.errors import InputError
from fieldkit.i18n import reason_text, t
from fieldkit.reports.document import _passage_values
from fieldkit.rules import decide
from fieldkit.ui.gate_dialogs import WorkerDecisionDialog
from fieldkit.ui.widgets.dialogs import AlertScreen
from tests.test_language_trial_defects import screen_lines
from tests.test_ui_app import (  # noqa: F401
    GATE,
    GATE_PIN,
    SIZE,
    app_for,
    login,
    ready_store,
    settle,
    wedge,
)
from tests.test_ui_gate import open_gate, passages, scan

ID = "11010519491231002X"


# -- the rule: a worker's decision is a reason among the rules' reasons -----------------------

BASE = GateSituation(direction=Direction.IN, mode="normal", temperature=36.5, code_colour=None)


def test_the_worker_can_turn_back_someone_the_rules_admit():
    from dataclasses import replace

    d = decide(
        replace(BASE, worker_outcome=Outcome.TURN_BACK, worker_reason="fixturnback.why.no_mask"),
        RuleSettings(),
    )
    assert d.outcome == Outcome.TURN_BACK
    assert d.reasons[0].code == "worker_turn_back"
    assert d.reasons[0].params == {"why": "fixturnback.why.no_mask"}
    assert "ok" not in [r.code for r in d.reasons]


def test_a_worker_denial_never_makes_a_referral_milder_and_a_turn_back_never_a_denial():
    from dataclasses import replace

    fever = replace(BASE, temperature=38.5, worker_outcome=Outcome.DENY, worker_reason="x")
    d = decide(fever, RuleSettings())
    assert d.outcome == Outcome.REFER
    assert {"fever", "worker_deny"} <= {r.code for r in d.reasons}
    red = replace(BASE, code_colour="red", worker_outcome=Outcome.TURN_BACK, worker_reason="x")
    assert decide(red, RuleSettings()).outcome == Outcome.DENY


def test_the_worker_cannot_admit_or_refer_and_must_say_why():
    from dataclasses import replace

    for outcome in (Outcome.ADMIT, Outcome.REFER):
        with pytest.raises(InputError):
            decide(replace(BASE, worker_outcome=outcome, worker_reason="x"), RuleSettings())
    with pytest.raises(InputError):
        decide(replace(BASE, worker_outcome=Outcome.DENY, worker_reason=" "), RuleSettings())


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_worker_reasons_are_words_in_either_language(lang):
    for code in ("worker_turn_back", "worker_deny"):
        text = reason_text(code, {"why": "fixturnback.why.no_mask"}, lang)
        assert t("fixturnback.why.no_mask", lang) in text and "fixturnback" not in text
        assert t(f"report.alert.{code}", lang) != f"report.alert.{code}"
    typed = reason_text("worker_deny", {"why": "不配合"}, lang)
    assert typed.endswith("不配合")


# -- the gate screen --------------------------------------------------------------------------


async def test_ctrl_n_records_a_turn_back_with_the_chosen_reason(settings, ready_store):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate(pilot)
        await scan(pilot, ID)
        await pilot.press("3", "6", "5", "f5")
        await settle(pilot)
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert isinstance(app.screen, WorkerDecisionDialog)
        assert passages(ready_store) == []  # nothing yet: the dialog asks first
        await pilot.press("1")  # 未戴口罩
        await settle(pilot)
        assert app.screen is gate
        rows = passages(ready_store)
        assert len(rows) == 1
        row = rows[0]
        assert row["decision"] == "turn_back"
        reasons = json.loads(row["reasons"]) if isinstance(row["reasons"], str) else row["reasons"]
        assert reasons[0]["code"] == "worker_turn_back"
        assert reasons[0]["params"] == {"why": "fixturnback.why.no_mask"}
        assert row["temperature"] == 36.5 and row["code_colour"] == "green"
        # in the gate's table, its banner and its counters, as a rule-made turn-back is
        table = gate.query_one("#recent", DataTable)
        assert "劝返" in [str(c) for c in table.get_row_at(0)]
        assert "值守人员劝返：未戴口罩" in str(gate.query_one("#banner").render())
        assert "劝返1" in str(gate.query_one("#counters").render())
        # and in the exports, in either language
        zh = _passage_values(row, "zh", False)
        assert zh["decision"] == "劝返" and "值守人员劝返：未戴口罩" in zh["reasons"]
        en = _passage_values(row, "en", False)
        assert "Turned back by the gate worker: no mask" in en["reasons"]


async def test_a_denial_with_a_typed_reason_and_no_reading(settings, ready_store):
    """Tab: 禁止通行; 5 其他: the words typed. A person sent away before a reading is recorded
    without one (the record says it was not measured, and why)."""
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate(pilot)
        await scan(pilot, ID)
        await pilot.press("ctrl+n")
        await settle(pilot)
        await pilot.press("tab", "5")
        await settle(pilot)
        other = app.screen.query_one("#worker-other", Input)
        assert other.display and other.has_focus and other.value == ""  # the 5 is not typed
        await pilot.press("enter")  # no words: asked again, nothing recorded
        await settle(pilot)
        assert isinstance(app.screen, WorkerDecisionDialog) and passages(ready_store) == []
        other.value = "冒用他人证件"
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is gate
        row = passages(ready_store)[0]
        assert row["decision"] == "deny" and row["temperature"] is None
        assert row["temperature_skipped"] is None  # the form's field held nothing
        zh = _passage_values(row, "zh", False)
        assert "值守人员禁止通行：冒用他人证件" in zh["reasons"]
        assert "未测体温：未测（值守人员未放行）" in zh["reasons"]
        assert gate.query_one("#temp-label").render().plain == "体温"  # form as it was


async def test_esc_in_the_dialog_records_nothing(settings, ready_store):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        gate = await open_gate(pilot)
        await scan(pilot, ID)
        await pilot.press("3", "6", "5", "ctrl+n")
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is gate and passages(ready_store) == []
        assert gate.query_one("#f-temp", Input).value == "365"  # the person is still there


async def test_a_worker_denial_of_a_referral_stays_a_referral(settings, ready_store):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        await open_gate(pilot)
        await scan(pilot, ID)
        await pilot.press("3", "8", "5", "f5", "ctrl+n")
        await settle(pilot)
        await pilot.press("tab", "2")  # 禁止通行, 无正当事由
        await settle(pilot)
        assert isinstance(app.screen, AlertScreen)  # the fever alert holds the gate as ever
        row = passages(ready_store)[0]
        assert row["decision"] == "refer"
        reasons = json.loads(row["reasons"]) if isinstance(row["reasons"], str) else row["reasons"]
        codes = [r["code"] for r in reasons]
        assert "fever" in codes and "worker_deny" in codes
        await pilot.press("f10")
        await settle(pilot)


# -- 80×24: the keys a new worker needs -------------------------------------------------------


@pytest.mark.parametrize("lang", ["zh", "en"])
async def test_the_correction_and_other_hidden_keys_show_at_80x24(settings, ready_store, lang):
    settings.ui.language = lang
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        await open_gate(pilot)
        await settle(pilot)
        lines = screen_lines(app)
        bottom = "\n".join(lines[-2:])
        for key in ("keys.worker_decision", "keys.correct", "keys.not_measured"):
            assert t(key, lang) in bottom, (key, bottom)
        assert t("keys.confirm_digit", lang) in bottom
        for key in ("^n", "^r", "^t", "^y", "^p"):
            assert key in bottom
        # the footer's own keys whole, none cut off half-way by the keys to other screens
        for key in ("keys.direction", "keys.green", "keys.category", "keys.clear"):
            assert t(key, lang) in lines[-1]
        assert t("gate.title", lang)[:2] not in lines[-1]
        assert all(cell_len(line.rstrip()) <= SIZE[0] for line in lines[-2:])
