"""The gate operator loop (issue 13): a scripted operator drives the real app through a shift.

Entrants of a realistic mix — camera reads, USB-scanner bursts, IDs typed by hand, fevers (the
alert acknowledged with F10), exits, red codes and vehicles (the vehicle lane, F3: plate, kind,
disinfection, each occupant scanned or typed with a temperature, Enter on an empty reading
records the vehicle; F2 back to the gate) — with human key timings (``--key-ms``, 150 ms a
key), a thermometer read of 1–2 s (``--thermometer-scale`` shortens it without changing any key
timing) and scanner bursts of 5 ms a key (sent from a thread, stamped as the terminal driver
stamps them). The device is enrolled as in the field: the town's index key and a key-person
list are in the store, so every person costs the slow key-person hash.

Per person (per vehicle for vehicles): keys pressed (F4, the sticky direction toggle, counted
apart: it is pressed only when the flow turns) and the time the app adds beyond the operator's
own (wall time minus the scripted waits). The same script runs against a no-op Textual app (one
input field that takes the keys) in the same run, as the baseline. Every stored record is
checked against the script: direction, masked ID, temperature and decision of each person, and
plate, kind, disinfection, occupants and decision of each vehicle.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

MIX = (  # case, share
    ("camera", 0.36),
    ("scanner", 0.20),
    ("typed", 0.12),
    ("fever", 0.07),
    ("exit", 0.12),
    ("red", 0.05),
    ("vehicle", 0.08),
)
KEYPERSONS = 3000  # rows in the key-person list (hashes of other people)
PLATE_CHARS = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"


@dataclass
class Occupant:
    id_number: str
    temperature: str  # as typed: "365"
    thermometer_s: float
    typed: bool  # the ID typed by hand (no phone, no card read)


@dataclass
class Entrant:
    case: str
    id_number: str
    temperature: str  # as typed: "365"
    thermometer_s: float
    # vehicles only
    plate: str = ""
    kind: str = "resident"
    disinfected: bool = False
    direction: str = "in"
    occupants: list[Occupant] = field(default_factory=list)

    @property
    def goes(self) -> str:
        if self.case == "vehicle":
            return self.direction
        return "out" if self.case == "exit" else "in"


def script(n: int, seed: int, person_id) -> list[Entrant]:
    rng = random.Random(seed)
    cases = [c for c, _ in MIX]
    weights = [w for _, w in MIX]
    out = []
    serial = 11
    for _ in range(n):
        case = rng.choices(cases, weights)[0]
        temp = f"{rng.randint(381, 392)}" if case == "fever" else f"{rng.randint(360, 369)}"
        e = Entrant(case, person_id(serial), temp, rng.uniform(1.0, 2.0))
        serial += 1
        if case == "vehicle":
            e.id_number, e.temperature = "", ""
            e.plate = rng.choice("京津沪粤") + "".join(rng.choices(PLATE_CHARS, k=6))
            e.kind = rng.choices(("resident", "outside", "supply"), (0.6, 0.25, 0.15))[0]
            e.disinfected = rng.random() < 0.7
            e.direction = "out" if rng.random() < 0.3 else "in"
            feverish = rng.random() < 1 / 6
            count = rng.choice((1, 1, 2, 2, 3, 4))
            for j in range(count):
                hot = feverish and j == count - 1
                t = f"{rng.randint(381, 392)}" if hot else f"{rng.randint(360, 369)}"
                typed = rng.random() < 0.2
                e.occupants.append(Occupant(person_id(serial), t, rng.uniform(1.0, 2.0), typed))
                serial += 1
        out.append(e)
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


class Operator:
    """Presses keys like a person; counts them and the time it spent on purpose."""

    def __init__(self, app, key_s: float, scale: float, probe=None) -> None:
        self.app, self.key_s, self.scale, self.probe = app, key_s, scale, probe
        self.keys = 0  # keys for this person (the direction toggle counted apart)
        self.toggles = 0
        self.enters = 0  # Enter keys sent (the scanner's too): the no-op app counts them
        self.own = 0.0
        self.occupant_keys: list[int] = []  # vehicles: keys per occupant

    async def press(self, *names: str) -> None:
        for name in names:
            key(self.app, name)
            if name == "f4":
                self.toggles += 1
            else:
                self.keys += 1
            self.enters += name == "enter"
            await asyncio.sleep(self.key_s)
            self.own += self.key_s

    async def last_enter(self) -> None:
        """The Enter that records: the probe measures from here."""
        if self.probe is not None:
            self.probe.last_enter()
        await self.press("enter")

    async def burst(self, text: str, gap: float = 0.005) -> None:
        """A USB scanner: keys ``gap`` apart then Enter, from a thread of its own."""
        await asyncio.to_thread(_burst, self.app, text, gap)
        self.own += gap * (len(text) + 1)
        self.enters += 1

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


class RealApp:
    """What the operator waits for in the real app (nothing else is waited for)."""

    def __init__(self, app) -> None:
        self.app = app

    def camera(self, number: str) -> None:
        from fieldkit.ui.messages import ScanRead
        from scanners.payloads import parse_payload

        self.app.post_message(ScanRead(number, parse_payload(number), "scan", 0.0))

    def screen(self, name: str):
        from fieldkit.ui.gate import GateScreen
        from fieldkit.ui.vehicle import VehicleScreen

        return {"gate": GateScreen, "vehicle": VehicleScreen}[name]

    async def on(self, name: str) -> None:
        cls = self.screen(name)
        assert await until(lambda: isinstance(self.app.screen, cls), 20), self.app.screen

    def direction(self, name: str) -> str:
        return self.app.get_screen(name).direction

    def vehicle(self):
        return self.app.get_screen("vehicle")

    async def recorded(self, gate, before: int) -> None:
        await until(lambda: any("shown" in t for t in gate.timings[before:]))

    async def alert(self, op: Operator, released) -> None:
        from fieldkit.ui.widgets.dialogs import AlertScreen

        await until(lambda: isinstance(self.app.screen, AlertScreen))
        await op.press("f10")
        await until(released)


async def one(op: Operator, drv: RealApp, e: Entrant) -> None:
    """One person at the gate, as the operator handles them (the direction toggle stays where
    it was left: F4 only when this person goes the other way)."""
    gate = drv.app.get_screen("gate")
    before = len(gate.timings)
    if e.goes != gate.direction:
        await op.press("f4")
    if e.case == "red":
        await op.press("f7")
    if e.case == "typed":
        await op.press(*e.id_number, "enter")
    elif e.case == "scanner":
        await op.burst(e.id_number)
    else:  # camera (also for exits, fevers, red codes)
        drv.camera(e.id_number)
    await op.wait(e.thermometer_s)
    await op.press(*e.temperature)
    await op.last_enter()
    await drv.recorded(gate, before)
    if e.case in ("fever", "red"):
        await drv.alert(op, lambda: drv.app.screen is gate and not gate.holding)


async def one_vehicle(op: Operator, drv: RealApp, e: Entrant) -> None:
    """A vehicle: F3, direction, kind (F9 until it shows), disinfection (F8), plate, Enter
    past the pass number, each occupant (scan or typed ID, reading, Enter), Enter on the empty
    reading records it all; F10 for an alert; F2 back to the gate."""
    from fieldkit.ui.vehicle import KINDS

    await op.press("f3")
    await drv.on("vehicle")
    vs = drv.vehicle()
    if e.direction != vs.direction:
        await op.press("f4")
    steps = (KINDS.index(e.kind) - KINDS.index(vs.kind)) % len(KINDS)
    await op.press(*["f9"] * steps)
    if e.disinfected != vs.disinfected:
        await op.press("f8")
    await op.press(*e.plate, "enter", "enter")
    for n, o in enumerate(e.occupants, 1):
        keys = op.keys
        if o.typed:
            await op.press(*o.id_number, "enter")
        else:
            drv.camera(o.id_number)
        await op.wait(o.thermometer_s)
        await op.press(*o.temperature, "enter")
        op.occupant_keys.append(op.keys - keys)
        await until(lambda n=n: len(vs.occupants) >= n)
    await op.last_enter()  # on the empty reading: the vehicle and everyone in it
    await until(lambda: not vs.occupants and not vs.busy)
    if any(int(o.temperature) >= 373 for o in e.occupants):
        await drv.alert(op, lambda: drv.app.screen is vs and not vs.holding)
    await op.press("f2")
    await drv.on("gate")


async def run_app(entrants, key_s: float, scale: float, settings, store, probe=None):
    from fieldkit.ui.app import make_app
    from fieldkit.ui.registry import screen_entries

    entries = screen_entries(("fieldkit.ui.gate", "fieldkit.ui.vehicle"))
    app = make_app(settings, store, entries=entries)
    per: list[tuple[str, int, float, list[int]]] = []
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.screen.query_one("#login-operator").value = "bench"
        app.screen.query_one("#login-pin").value = "2468"
        app.screen.query_one("#login-pin").focus()
        await pilot.press("enter")
        drv = RealApp(app)
        await drv.on("gate")
        for e in entrants:
            op = Operator(app, key_s, scale, probe)
            if probe is not None:
                probe.start(e.case)
            t0 = time.monotonic()
            await (one_vehicle if e.case == "vehicle" else one)(op, drv, e)
            per.append((e.case, op.keys, time.monotonic() - t0 - op.own, op.occupant_keys))
            if probe is not None:
                probe.end()
    return per


async def run_noop(entrants: list[Entrant], key_s: float, scale: float):
    """The same keys and waits against an app that only takes them: one input field that
    empties itself on Enter; the operator waits until it has taken every Enter sent."""
    from textual.app import App
    from textual.widgets import Input

    class Noop(App):
        done = 0

        def compose(self):
            yield Input(id="x")

        def on_input_submitted(self, event) -> None:
            event.input.value = ""
            self.done += 1

    app = Noop()
    per = []

    async def taken(op: Operator, before: int) -> None:
        await until(lambda: app.done >= before + op.enters, 2)

    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        direction = {"gate": "in", "vehicle": "in"}
        for e in entrants:
            op = Operator(app, key_s, scale)
            before = app.done
            t0 = time.monotonic()
            lane = "vehicle" if e.case == "vehicle" else "gate"
            if lane == "vehicle":
                await op.press("f3")
            if e.goes != direction[lane]:
                direction[lane] = e.goes
                await op.press("f4")
            if e.case == "vehicle":
                await op.press(*["f9"] * {"resident": 0, "outside": 1, "supply": 2}[e.kind])
                await op.press(*["f8"] * e.disinfected)
                await op.press(*e.plate, "enter", "enter")
                for o in e.occupants:
                    keys = op.keys
                    if o.typed:
                        await op.press(*o.id_number, "enter")
                    await op.wait(o.thermometer_s)
                    await op.press(*o.temperature, "enter")
                    op.occupant_keys.append(op.keys - keys)
                    await taken(op, before)
                await op.press("enter")
                await taken(op, before)
                if any(int(o.temperature) >= 373 for o in e.occupants):
                    await op.press("f10")
                await op.press("f2")
            else:
                if e.case == "red":
                    await op.press("f7")
                if e.case == "typed":
                    await op.press(*e.id_number, "enter")
                elif e.case == "scanner":
                    await op.burst(e.id_number)
                await op.wait(e.thermometer_s)
                await op.press(*e.temperature, "enter")
                await taken(op, before)
                if e.case in ("fever", "red"):
                    await op.press("f10")
            per.append((e.case, op.keys, time.monotonic() - t0 - op.own, op.occupant_keys))
    return per


def expected_decision(e: Entrant) -> str:
    return {"fever": "refer", "red": "deny"}.get(e.case, "admit")


def expected_vehicle(e: Entrant, rules) -> tuple[str, list[str]]:
    """The vehicle's decision and each occupant's, in the default (normal) mode: a fever is
    referred, the companions held (``rules.fever_companions``), the vehicle takes the worst."""
    from fieldkit.domain import OUTCOME_RANK, Outcome

    fever = [int(o.temperature) >= 373 for o in e.occupants]
    held = any(fever) and rules.fever_companions == "hold"
    each = ["refer" if f else ("deny" if held else "admit") for f in fever]
    worst = max((Outcome(x) for x in each), key=OUTCOME_RANK.__getitem__)
    return worst.value, each


def check(store, entrants: list[Entrant]) -> list[str]:
    """Every record against the script, in order: what is wrong, one line each."""
    from scanners.idnumber import mask_id

    rules = store.settings.rules

    def opened(part, row) -> dict:  # sealed values (masked ID, reading, plate) opened
        unseal = getattr(part, "unseal", None)
        return unseal(dict(row)) if unseal is not None else dict(row)

    rows = [
        opened(store.passages, r)
        for r in store.g.query("SELECT * FROM passages WHERE superseded = 0 ORDER BY ts, rowid")
    ]
    vehicles = [
        opened(store.vehicles, r)
        for r in store.g.query("SELECT * FROM vehicle_passages ORDER BY ts, rowid")
    ]
    problems = []
    want_rows: list[tuple[str, dict]] = []
    want_vehicles: list[tuple[str, dict]] = []
    for i, e in enumerate(entrants):
        if e.case != "vehicle":
            want_rows.append(
                (
                    f"person {i} ({e.case})",
                    {
                        "direction": e.goes,
                        "id_masked": mask_id(e.id_number),
                        "temperature": int(e.temperature) / 10,
                        "decision": expected_decision(e),
                        "vehicle": False,
                    },
                )
            )
            continue
        decision, each = expected_vehicle(e, rules)
        want_vehicles.append(
            (
                f"vehicle {i}",
                {
                    "direction": e.direction,
                    "plate": e.plate.upper(),
                    "kind": e.kind,
                    "disinfected": int(e.disinfected),
                    "occupants": len(e.occupants),
                    "decision": decision,
                },
            )
        )
        for j, (o, d) in enumerate(zip(e.occupants, each, strict=True)):
            want_rows.append(
                (
                    f"vehicle {i} occupant {j + 1}{' (typed)' if o.typed else ''}",
                    {
                        "direction": e.direction,
                        "id_masked": mask_id(o.id_number),
                        "temperature": int(o.temperature) / 10,
                        "decision": d,
                        "vehicle": True,
                    },
                )
            )
    for what, got_rows, wants in (
        ("person records", rows, want_rows),
        ("vehicle records", vehicles, want_vehicles),
    ):
        if len(got_rows) != len(wants):
            problems.append(f"{len(got_rows)} {what} for {len(wants)} in the script")
        for r, (label, want) in zip(got_rows, wants, strict=False):
            got = {k: (bool(r["vehicle_id"]) if k == "vehicle" else r[k]) for k in want}
            if got != want:
                problems.append(f"{label}: {got} != {want}")
    return problems


def summary(per) -> dict[str, dict[str, float]]:
    out = {}
    for case in [c for c, _ in MIX] + ["all"]:
        rows = [p for p in per if case == "all" or p[0] == case]
        if not rows:
            continue
        added = sorted(p[2] for p in rows)
        occupant = [k for p in rows for k in p[3]]
        out[case] = {
            "n": len(rows),
            "keys": max(p[1] for p in rows),
            "p50": statistics.median(added) * 1000,
            "p95": added[min(len(added) - 1, round(0.95 * (len(added) - 1)))] * 1000,
            "occupant_keys": max(occupant) if occupant else 0,
        }
    return out


def enrol_like_the_field(store, n: int = KEYPERSONS) -> None:
    """The town's index key and a key-person list of ``n`` other people (random hashes: the
    lookup costs one slow hash per person whatever the list holds)."""
    store.secrets.set("town_index_key", os.urandom(32))
    rng = random.Random(1)
    store.keypersons.apply(
        [
            {"id_hash": "k1:" + rng.randbytes(32).hex(), "category": "close_contact"}
            for _ in range(n)
        ]
    )


def operator_part(
    people: int, key_ms: float, scale: float, seed: int, make_settings, person_id, probe=None
):
    from fieldkit import ledger  # noqa: F401  (as the app opens its store)
    from fieldkit.store import open_store

    entrants = script(people, seed, person_id)
    with tempfile.TemporaryDirectory() as tmp:
        settings = make_settings(Path(tmp))
        store = open_store(settings, create=True)
        store.setup("bench", "2468", checkpoint_name="东门卡口", checkpoint_code="CP-0101")
        enrol_like_the_field(store)
        from fieldkit.reports.shiftwork import open_shift

        open_shift(store, "bench", by=store.operator)
        store.lock("bench")
        if probe is not None:
            probe.install()
        started = time.monotonic()
        try:
            real = asyncio.run(run_app(entrants, key_ms / 1000, scale, settings, store, probe))
        finally:
            if probe is not None:
                probe.restore()
        real_s = time.monotonic() - started
        problems = check(store, entrants)
        store.close()
    started = time.monotonic()
    noop = asyncio.run(run_noop(entrants, key_ms / 1000, scale))
    noop_s = time.monotonic() - started
    return summary(real), summary(noop), real_s, noop_s, problems
