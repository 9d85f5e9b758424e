"""New-user trial (/work/notes/trial_gate.md) item 9: in the vehicle lane, when one occupant has
a fever and the others are held (rule fever_companion_held), every occupant's line carried only
"第 n 位乘车人：禁止通行/转诊": no "发热 37.8 °C" for the feverish one and no "同车人员发热转诊"
for the held driver. Each occupant's line is now followed by that occupant's own reasons, worded
as at the single-person gate (``decision_lines``), in the alert and on the banner after F10."""

# ruff: noqa: F811  (the ready_store fixture is imported from test_ui_app)
from __future__ import annotations

from textual.widgets import Input

from fieldkit.ui.widgets.dialogs import AlertScreen
from tests.test_ui_app import SIZE, app_for, ready_store, settle  # noqa: F401
from tests.test_ui_gate_vehicle import ID, ID_B, add_person, open_vehicle

FEVER = "发热 37.8 °C"
HELD = "同车人员发热转诊"


def after(lines: list[str], first: str, then: str) -> bool:
    """``then`` is said in the lines that follow the one with ``first``, before the next
    occupant's line."""
    for i, line in enumerate(lines):
        if first in line:
            rest = []
            for x in lines[i + 1 :]:
                if "乘车人" in x:
                    break
                rest.append(x)
            return any(then in x for x in rest)
    return False


async def test_each_occupant_line_carries_its_reasons(settings, ready_store):
    app = app_for(settings, ready_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_vehicle(pilot)
        screen.query_one("#v-plate", Input).value = "粤B12345"
        await add_person(pilot, screen, ID, "365", scanned=False)  # the driver, 36.5, green
        await add_person(pilot, screen, ID_B, "378", scanned=False)  # 37.8, green
        await pilot.press("ctrl+s")
        await settle(pilot)
        alert = app.screen
        assert isinstance(alert, AlertScreen)
        shown = str(alert.query_one("#alert-lines").render()).splitlines()
        assert after(shown, "第 1 位乘车人", HELD), shown
        assert after(shown, "第 2 位乘车人", FEVER), shown
        await pilot.press("f10")
        await settle(pilot)
        assert app.screen is screen
        banner = screen.query_one("#banner")
        lines = banner.lines
        assert after(lines, "第 1 位乘车人", HELD), lines
        assert after(lines, "第 2 位乘车人", FEVER), lines
        painted = str(banner.render())
        assert HELD in painted and FEVER in painted
        assert not after(lines, "第 1 位乘车人", FEVER)  # the driver has no fever
