"""The gate operator loop (issue 13): a scripted operator drives the real app through a shift.

Entrants of a realistic mix — camera reads, USB-scanner bursts, IDs typed by hand, fevers (the
alert acknowledged with F10), exits, red codes — with human key timings (``--key-ms``, 150 ms a
key), a thermometer read of 1–2 s (``--thermometer-scale`` shortens it without changing any key
timing) and scanner bursts of 5 ms a key (sent from a thread, stamped as the terminal driver
stamps them). Per person: keys pressed (F4, the sticky direction toggle, counted apart: it is
pressed only when the flow turns) and the time the app adds beyond the operator's own (wall time
minus the scripted waits). The same script runs against a
no-op Textual app (one input field that takes the keys) in the same run, as the baseline. Every
stored record is checked against the script: direction, masked ID, temperature and decision.

Vehicles are not in the mix yet (the vehicle lane is a separate screen).
"""

from __future__ import annotations

import asyncio
import random
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

MIX = (  # case, share
    ("camera", 0.40),
    ("scanner", 0.22),
    ("typed", 0.12),
    ("fever", 0.08),
    ("exit", 0.12),
    ("red", 0.06),
)


@dataclass
class Entrant:
    case: str
    id_number: str
    temperature: str  # as typed: "365"
    thermometer_s: float


def script(n: int, seed: int, person_id) -> list[Entrant]:
    rng = random.Random(seed)
    cases = [c for c, _ in MIX]
    weights = [w for _, w in MIX]
    out = []
    for i in range(n):
        case = rng.choices(cases, weights)[0]
        temp = f"{rng.randint(381, 392)}" if case == "fever" else f"{rng.randint(360, 369)}"
        out.append(Entrant(case, person_id(i + 11), temp, rng.uniform(1.0, 2.0)))
    return out


def key(app, name: str) -> None:
    from textual import events

    char = {"enter": "\r", "tab": "\t"}.get(name, name if len(name) == 1 else None)
    ev = events.Key(name, char)
    ev.time = time.monotonic()
    app.post_message(ev)


def _burst(app, text: str, gap: float) -> None:
    from textual import events

    start = time.monotonic()
    for i, ch in enumerate([*text, "enter"]):
        ev = events.Key("enter", "\r") if ch == "enter" else events.Key(ch, ch)
        ev.time = start + i * gap  # stamped as the terminal driver's reader thread stamps them
        app.post_message(ev)
        time.sleep(gap)


async def burst(app, text: str, gap: float = 0.005) -> None:
    """A USB scanner: keys ``gap`` apart then Enter, from a thread of its own."""
    await asyncio.to_thread(_burst, app, text, gap)


class Operator:
    """Presses keys like a person; counts them and the time it spent on purpose."""

    def __init__(self, app, key_s: float, scale: float) -> None:
        self.app, self.key_s, self.scale = app, key_s, scale
        self.keys = 0  # keys for this person (the direction toggle counted apart)
        self.toggles = 0
        self.own = 0.0

    async def press(self, *names: str) -> None:
        for name in names:
            key(self.app, name)
            if name == "f4":
                self.toggles += 1
            else:
                self.keys += 1
            await asyncio.sleep(self.key_s)
            self.own += self.key_s

    async def wait(self, seconds: float) -> None:
        await asyncio.sleep(seconds * self.scale)
        self.own += seconds * self.scale


async def until(check, limit: float = 10.0) -> bool:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if check():
            return True
        await asyncio.sleep(0.002)
    return check()


async def one(op: Operator, app, e: Entrant, direction: str) -> None:
    """One person at the gate, as the operator handles them (the direction toggle stays where
    it was left: F4 only when this person goes the other way)."""
    from fieldkit.ui.messages import ScanRead
    from scanners.payloads import parse_payload

    if ("out" if e.case == "exit" else "in") != direction:
        await op.press("f4")
    if e.case == "red":
        await op.press("f7")
    if e.case == "typed":
        await op.press(*e.id_number, "enter")
    elif e.case == "scanner":
        await burst(app, e.id_number)
        op.own += 0.005 * (len(e.id_number) + 1)
    else:  # camera (also for exits, fevers, red codes)
        app.post_message(ScanRead(e.id_number, parse_payload(e.id_number), "scan", 0.0))
    await op.wait(e.thermometer_s)
    await op.press(*e.temperature, "enter")


async def run_app(entrants: list[Entrant], key_s: float, scale: float, settings, store):
    from fieldkit.ui.app import make_app
    from fieldkit.ui.gate import GateScreen
    from fieldkit.ui.registry import screen_entries
    from fieldkit.ui.widgets.dialogs import AlertScreen

    app = make_app(settings, store, entries=screen_entries(("fieldkit.ui.gate",)))
    per: list[tuple[str, int, float]] = []
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.screen.query_one("#login-operator").value = "bench"
        app.screen.query_one("#login-pin").value = "2468"
        app.screen.query_one("#login-pin").focus()
        await pilot.press("enter")
        assert await until(lambda: isinstance(app.screen, GateScreen), 20)
        gate = app.screen
        for e in entrants:
            op = Operator(app, key_s, scale)
            before = len(gate.timings)
            t0 = time.monotonic()
            await one(op, app, e, gate.direction)
            await until(lambda b=before: any("shown" in t for t in gate.timings[b:]))
            if e.case in ("fever", "red"):
                await until(lambda: isinstance(app.screen, AlertScreen))
                await op.press("f10")
                await until(lambda: isinstance(app.screen, GateScreen) and not gate.holding)
            per.append((e.case, op.keys, time.monotonic() - t0 - op.own))
    return per


async def run_noop(entrants: list[Entrant], key_s: float, scale: float):
    from textual.app import App
    from textual.widgets import Input

    class Noop(App):
        def compose(self):
            yield Input(id="x")

        def on_input_submitted(self, event) -> None:
            event.input.value = ""
            self.done = getattr(self, "done", 0) + 1

    app = Noop()
    per = []
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        for e in entrants:
            op = Operator(app, key_s, scale)
            before = getattr(app, "done", 0)
            t0 = time.monotonic()
            goes = "out" if e.case == "exit" else "in"
            if goes != getattr(app, "direction", "in"):
                app.direction = goes
                await op.press("f4")
            if e.case == "red":
                await op.press("f7")
            if e.case == "typed":
                await op.press(*e.id_number, "enter")
            elif e.case == "scanner":
                await burst(app, e.id_number)
                op.own += 0.005 * (len(e.id_number) + 1)
            await op.wait(e.thermometer_s)
            await op.press(*e.temperature, "enter")
            target = before + (2 if e.case in ("typed", "scanner") else 1)
            await until(lambda t=target: getattr(app, "done", 0) >= t, 2)
            if e.case in ("fever", "red"):
                await op.press("f10")
            per.append((e.case, op.keys, time.monotonic() - t0 - op.own))
    return per


def expected_decision(e: Entrant) -> str:
    return {"fever": "refer", "red": "deny"}.get(e.case, "admit")


def check(store, entrants: list[Entrant]) -> list[str]:
    """Every record against the script, in order: what is wrong, one line each."""
    from scanners.idnumber import mask_id

    rows = store.g.query("SELECT * FROM passages WHERE superseded = 0 ORDER BY ts, rowid")
    problems = []
    if len(rows) != len(entrants):
        problems.append(f"{len(rows)} records for {len(entrants)} people")
    for i, (r, e) in enumerate(zip(rows, entrants, strict=False)):
        want = {
            "direction": "out" if e.case == "exit" else "in",
            "id_masked": mask_id(e.id_number),
            "temperature": int(e.temperature) / 10,
            "decision": expected_decision(e),
        }
        got = {k: r[k] for k in want}
        if got != want:
            problems.append(f"person {i} ({e.case}): {got} != {want}")
    return problems


def summary(per: list[tuple[str, int, float]]) -> dict[str, dict[str, float]]:
    out = {}
    for case in [c for c, _ in MIX] + ["all"]:
        rows = [p for p in per if case == "all" or p[0] == case]
        if not rows:
            continue
        added = sorted(p[2] for p in rows)
        out[case] = {
            "n": len(rows),
            "keys": max(p[1] for p in rows),
            "p50": statistics.median(added) * 1000,
            "p95": added[min(len(added) - 1, round(0.95 * (len(added) - 1)))] * 1000,
        }
    return out


def operator_part(people: int, key_ms: float, scale: float, seed: int, make_settings, person_id):
    from fieldkit.store import open_store

    entrants = script(people, seed, person_id)
    with tempfile.TemporaryDirectory() as tmp:
        settings = make_settings(Path(tmp))
        store = open_store(settings, create=True)
        store.setup("bench", "2468", checkpoint_name="东门卡口", checkpoint_code="CP-0101")
        from fieldkit.reports.shiftwork import open_shift

        open_shift(store, "bench", by=store.operator)
        store.lock("bench")
        started = time.monotonic()
        real = asyncio.run(run_app(entrants, key_ms / 1000, scale, settings, store))
        real_s = time.monotonic() - started
        problems = check(store, entrants)
        store.close()
    started = time.monotonic()
    noop = asyncio.run(run_noop(entrants, key_ms / 1000, scale))
    noop_s = time.monotonic() - started
    return summary(real), summary(noop), real_s, noop_s, problems
