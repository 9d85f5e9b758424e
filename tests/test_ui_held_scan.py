"""A code read while no open screen takes scans is kept for the gate, not lost."""

from __future__ import annotations

import time

from textual.widgets import Input

from fieldkit.ui.app import make_app
from fieldkit.ui.gate import GateScreen
from fieldkit.ui.messages import ScanRead
from fieldkit.ui.registry import screen_entries
from scanners.payloads import PayloadConfig, parse_payload
from tests.conftest import SUPERVISOR, SUPERVISOR_PIN
from tests.test_ui_app import SIZE, login, ready_store, settle  # noqa: F401

ID = "11010519491231002X"


async def test_scan_on_the_supervisor_console_is_used_when_the_gate_opens(
    settings,
    ready_store,  # noqa: F811  (the fixture imported above)
):
    modules = ("fieldkit.ui.gate", "fieldkit.ui.vehicle", "fieldkit.ui.supervisor")
    app = make_app(settings, ready_store, entries=screen_entries(modules))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await login(pilot, SUPERVISOR, SUPERVISOR_PIN)
        assert not isinstance(app.screen, GateScreen)  # the supervisor lands on the console
        result = parse_payload(ID, PayloadConfig())
        app.post_message(ScanRead(ID, result, "scan", time.perf_counter()))
        await settle(pilot)
        assert any("F2" in str(n.message) for n in app._notifications)
        await pilot.press("f2")
        await settle(pilot)
        gate = app.screen
        assert isinstance(gate, GateScreen)
        assert gate.query_one("#f-id", Input).value.endswith("002X")
        # Taken once: going away and back does not fill it again.
        gate.query_one("#f-id", Input).value = ""
        await pilot.press("f12")
        await settle(pilot)
        await pilot.press("f2")
        await settle(pilot)
        assert app.screen.query_one("#f-id", Input).value == ""
