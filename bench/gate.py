"""Gate benchmark (issue 4), every figure beside a baseline measured in the same run.

1. Scan → decision on screen (the preview banner) and Enter → record committed / banner shown,
   p50/p95, through the real app (headless Textual, Pilot) on a store with 0 and with N records
   (default 100 000, spread over 30 days as a month of retention would hold them).
2. App start to interactive (login screen painted, keys accepted) beside a bare Textual app
   (first paint), both fresh processes, median of several runs; measured from just before the
   process is spawned to the moment the probe sees its screen, so interpreter shut-down is not
   counted. The app is started as ``fieldkit`` starts it: ``run_app``'s path, the store opened
   by the app itself (``make_app(settings)``), plus, separately, with the CLI's argument parser
   built first (``fieldkit.cli.build_parser``: every CLI extension module is imported there).
   "store open" says when the store finished opening in the background.
3. Peak RSS of the running app with the camera pipeline decoding 1280×720 frames (the corpus
   folder camera-a) beside the bare Textual app's.

Goals: p95 ≤ 50 ms at 100k records; start ≤ 2× bare; peak RSS ≤ 250 MB.
Usage: python bench/gate.py [--records N] [--people N] [--starts N] [--frames DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FRAMES = ROOT.parent / "shared" / "corpus" / "qr" / "camera-a"
PIN = "2468"


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))] * 1000


def make_settings(data_dir: Path):
    from fieldkit.config import Settings

    s = Settings()
    s.data_dir = data_dir
    s.security.scrypt_n = 1024
    s.security.argon2_memory_kib, s.security.argon2_time_cost = 1024, 1
    s.security.argon2_parallelism, s.security.min_pin_length = 1, 4
    return s


def person_id(i: int) -> str:
    from scanners.idnumber import resident_check_char

    first17 = f"110105{1950 + i % 60}{1 + i % 12:02d}{1 + i % 28:02d}{i % 1000:03d}"
    return first17 + resident_check_char(first17)


def fill(store, n: int) -> float:
    """N passages spread over the last 30 days, through the store's bulk path."""
    from fieldkit.domain import Decision, Outcome, Reason
    from fieldkit.store import PassageInput

    admit = Decision(Outcome.ADMIT, (Reason("ok", Outcome.ADMIT),))
    start = time.perf_counter()
    now = datetime.now().astimezone()
    batch = []
    for i in range(n):
        ts = now - timedelta(days=30 * i / max(1, n), minutes=1)
        batch.append(
            (
                PassageInput(
                    direction="in" if i % 2 else "out",
                    id_kind="resident_id",
                    id_number=person_id(i),
                    name=f"张{i}",
                    temperature=36.5,
                    code_colour="green",
                    ts=ts,
                ),
                admit,
            )
        )
        if len(batch) == 10_000:
            store.passages.record_many(batch)
            batch = []
    if batch:
        store.passages.record_many(batch)
    return time.perf_counter() - start


def scanner(app, text: str, gap: float = 0.005) -> None:
    from textual import events

    for ch in [*text, "enter"]:
        ev = events.Key("enter", "\r") if ch == "enter" else events.Key(ch, ch)
        ev.time = time.monotonic()
        app.post_message(ev)
        time.sleep(gap)


async def drive(records: int, people: int) -> dict[str, list[float]]:
    from fieldkit.store import open_store
    from fieldkit.ui.app import make_app
    from fieldkit.ui.gate import GateScreen
    from fieldkit.ui.messages import ScanRead
    from fieldkit.ui.registry import screen_entries
    from scanners.payloads import parse_payload

    with tempfile.TemporaryDirectory() as tmp:
        settings = make_settings(Path(tmp))
        store = open_store(settings, create=True)
        store.setup("bench", PIN)
        if records:
            took = fill(store, records)
            print(f"  filled {records} records in {took:.1f} s")
        store.lock("bench")
        app = make_app(settings, store, entries=screen_entries(("fieldkit.ui.gate",)))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            app.screen.query_one("#login-operator").value = "bench"
            app.screen.query_one("#login-pin").value = PIN
            app.screen.query_one("#login-pin").focus()
            await pilot.press("enter")
            for _ in range(50):
                await pilot.pause(0.05)
                if isinstance(app.screen, GateScreen):
                    break
            gate = app.screen
            assert isinstance(gate, GateScreen), app.screen
            for i in range(people):
                gate.query_one("#f-temp").value = "365"
                text = person_id(records + i + 7)
                camera = i % 2 == 0
                if camera:  # what the camera worker posts after decoding a frame
                    app.post_message(
                        ScanRead(text, parse_payload(text), "scan", time.perf_counter())
                    )
                else:  # a USB scanner: 18 keys 5 ms apart, then Enter, sent from a thread
                    # and stamped when sent, as the terminal driver's reader thread does
                    await asyncio.to_thread(scanner, app, text)
                while not any("preview" in t for t in gate.timings[-1:]):
                    await asyncio.sleep(0.001)
                gate.timings[-1]["source"] = "camera" if camera else "wedge"
                await pilot.press("enter")
                while not any("shown" in t for t in gate.timings[-1:]):
                    await asyncio.sleep(0.001)
                await app.workers.wait_for_complete()
                await pilot.pause()
        store.close()
    out: dict[str, list[float]] = {"camera": [], "wedge": [], "committed": [], "shown": []}
    for t in gate.timings[6:]:  # the first few warm caches
        if "preview" in t:
            out[t["source"]].append(t["preview"])
        for k in ("committed", "shown"):
            if k in t:
                out[k].append(t[k])
    return out


PROBE = """
import sys, time
sys.path.insert(0, {root!r})
kind = {kind!r}
def say(what):
    print(what, time.time(), flush=True)
if kind == "bare":
    from textual.app import App
    from textual.widgets import Static
    class Bare(App):
        def compose(self):
            yield Static("hello")
        def on_mount(self):
            self.call_after_refresh(lambda: (say("ready"), self.exit()))
    app = Bare()
else:
    from pathlib import Path
    if kind == "fieldkit-cli":
        from fieldkit import cli
        args = cli.build_parser([]).parse_args([])  # exactly what main() does for `fieldkit`
    from fieldkit.config import Settings
    from fieldkit.ui.app import make_app
    s = Settings(); s.data_dir = Path({data!r}); s.security.scrypt_n = 1024
    s.security.min_pin_length, s.security.argon2_memory_kib = 4, 1024
    s.security.argon2_time_cost = 1
    app = make_app(s)  # as run_app: the app opens the store itself
    shown = []
    def ready():
        from fieldkit.ui.login import LoginScreen, SetupScreen
        if not shown and isinstance(app.screen, (LoginScreen, SetupScreen)):
            shown.append(1)
            say("ready")
        if shown and app.store is not None:
            say("store")
            app.exit()
        else:
            app.set_timer(0.005, lambda: app.call_after_refresh(ready))
    app.call_later(lambda: app.call_after_refresh(ready))
app.run(headless=True)
if getattr(app, "store", None) is not None:
    app.store.close()
"""


def start_times(runs: int, data: Path) -> dict[str, float]:
    from fieldkit.store import open_store

    store = open_store(make_settings(data), create=True)  # a set-up store: the login screen
    store.setup("bench", PIN)
    store.close()
    out = {}
    for kind in ("bare", "fieldkit", "fieldkit-cli"):
        times, stores = [], []
        for _ in range(runs):
            start = time.time()
            proc = subprocess.run(
                [sys.executable, "-c", PROBE.format(root=str(ROOT), kind=kind, data=str(data))],
                check=True,
                capture_output=True,
                text=True,
                timeout=120,
            )
            marks = dict(line.split() for line in proc.stdout.splitlines() if line.strip())
            times.append(float(marks["ready"]) - start)
            if "store" in marks:
                stores.append(float(marks["store"]) - start)
        out[kind] = statistics.median(times)
        if stores:
            out[kind + " store"] = statistics.median(stores)
    return out


RSS_PROBE = """
import sys, time, resource, asyncio
sys.path.insert(0, {root!r})
from pathlib import Path
kind = {kind!r}
if kind == "bare":
    from textual.app import App
    from textual.widgets import Static
    class Bare(App):
        def compose(self):
            yield Static("hello")
    async def main():
        async with Bare().run_test(size=(80, 24)) as pilot:
            await pilot.pause(1.0)
    asyncio.run(main())
else:
    from fieldkit.config import Settings
    from fieldkit.store import open_store
    from fieldkit.ui.app import make_app
    from scanners.sources import SourceSpec
    s = Settings(); s.data_dir = Path({data!r}); s.security.scrypt_n = 1024
    s.security.min_pin_length, s.security.argon2_memory_kib = 4, 1024
    s.security.argon2_time_cost = 1
    s.camera.fps = 30
    store = open_store(s, create=True)
    if not store.initialised:
        store.setup("bench", "2468")
        store.lock("bench")
    app = make_app(s, store, SourceSpec("images", {frames!r}))
    async def main():
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            app.screen.query_one("#login-operator").value = "bench"
            app.screen.query_one("#login-pin").value = "2468"
            app.screen.query_one("#login-pin").focus()
            await pilot.press("enter")
            deadline = time.monotonic() + {seconds}
            while time.monotonic() < deadline and app.camera_state != "ended":
                await pilot.pause(0.2)
    asyncio.run(main())
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_rss(data: Path, frames: Path, seconds: float) -> dict[str, float]:
    out = {}
    for kind in ("bare", "fieldkit"):
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                RSS_PROBE.format(
                    root=str(ROOT), kind=kind, data=str(data), frames=str(frames), seconds=seconds
                ),
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=600,
        )
        out[kind] = int(proc.stdout.strip().splitlines()[-1]) / 1024  # KiB → MiB
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--people", type=int, default=45)
    ap.add_argument("--starts", type=int, default=5)
    ap.add_argument("--frames", type=Path, default=FRAMES)
    ap.add_argument("--camera-seconds", type=float, default=20.0)
    ap.add_argument(
        "--only",
        choices=("scan", "start", "operator"),
        help="run only part 1 (scan), part 2 (start) or part 4 (the operator loop)",
    )
    ap.add_argument("--entrants", type=int, default=300, help="operator loop: people")
    ap.add_argument("--key-ms", type=float, default=150.0, help="operator loop: ms per key")
    ap.add_argument(
        "--thermometer-scale",
        type=float,
        default=1.0,
        help="operator loop: scale of the 1-2 s thermometer wait (keys keep their pace)",
    )
    ap.add_argument(
        "--profile",
        action="store_true",
        help="operator loop: where the app's time goes per case (bench/gate_probe.py)",
    )
    args = ap.parse_args()
    if args.only == "operator":
        return operator_loop(args)

    results = {}
    if args.only != "start":
        scan_part(args, results)
    if args.only == "scan":
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        print(f"2. start to interactive, median of {args.starts} fresh processes")
        st = start_times(args.starts, Path(tmp) / "start")
        print(f"  bare Textual first paint {st['bare'] * 1000:.0f} ms")
        for kind, label in (
            ("fieldkit", "app (run_app path)"),
            ("fieldkit-cli", "fieldkit command (CLI parser first)"),
        ):
            ratio = st[kind] / st["bare"]
            print(
                f"  {label:<36} login shown {st[kind] * 1000:5.0f} ms → {ratio:.2f}× "
                f"(goal ≤ 2×: {'ok' if ratio <= 2 else 'MISSED'}); store open "
                f"{st[kind + ' store'] * 1000:.0f} ms"
            )

        print(f"3. peak RSS, camera pipeline on {args.frames.name} (1280×720 frames)")
        if args.only == "start":
            print("  skipped (--only start)")
        elif args.frames.is_dir():
            rss = peak_rss(Path(tmp) / "rss", args.frames, args.camera_seconds)
            print(
                f"  bare Textual {rss['bare']:.0f} MB, fieldkit with camera "
                f"{rss['fieldkit']:.0f} MB → {rss['fieldkit'] / rss['bare']:.2f}× "
                f"(goal ≤ 250 MB: {'ok' if rss['fieldkit'] <= 250 else 'MISSED'})"
            )
        else:
            print(f"  skipped: {args.frames} not found")
    return 0


def operator_loop(args) -> int:
    """4. The operator loop: keys per person by case, app-added time, persons per minute."""
    from bench.gate_operator import operator_part

    probe = None
    if args.profile:
        from bench.gate_probe import Probe

        probe = Probe()
    print(
        f"4. operator loop: {args.entrants} entrants, {args.key_ms:.0f} ms a key, thermometer "
        f"× {args.thermometer_scale}, beside a no-op Textual app (same script, same run)"
    )
    real, noop, real_s, noop_s, problems = operator_part(
        args.entrants, args.key_ms, args.thermometer_scale, 7, make_settings, person_id, probe
    )
    print(
        f"  {'case':<8} {'n':>4} {'keys':>5} {'app p50':>9} {'app p95':>9} {'no-op p50':>10} "
        f"{'no-op p95':>10}"
    )
    for case, r in real.items():
        base = noop.get(case, {})
        print(
            f"  {case:<8} {r['n']:>4} {r['keys']:>5} {r['p50']:>7.1f}ms {r['p95']:>7.1f}ms "
            f"{base.get('p50', float('nan')):>8.1f}ms {base.get('p95', float('nan')):>8.1f}ms"
        )
    n = real["all"]["n"]
    print(
        f"  persons/min: app {n / real_s * 60:.1f}, no-op {n / noop_s * 60:.1f} "
        f"(ratio {noop_s / real_s:.2f})"
    )
    scan_keys = max(real[c]["keys"] for c in ("camera", "scanner") if c in real)
    typed = real.get("typed", {}).get("keys", 0)
    occupant = real.get("vehicle", {}).get("occupant_keys", 0)
    p95, base95 = real["all"]["p95"], noop["all"]["p95"]
    print(
        f"  app-added p95 {p95:.0f} ms, no-op {base95:.0f} ms in the same run "
        f"(ratio {p95 / max(base95, 0.001):.2f}); vehicles: at most {occupant} keys an occupant"
    )
    print(
        f"  goals: scan keys {scan_keys} ≤ 4 {'ok' if scan_keys <= 4 else 'MISSED'}; typed "
        f"keys {typed} ≤ 24 {'ok' if typed <= 24 else 'MISSED'}; app-added p95 {p95:.0f} ms "
        f"≤ 100 ms {'ok' if p95 <= 100 else 'MISSED'}; records checked against the script: "
        f"{'all right' if not problems else f'{len(problems)} WRONG'}"
    )
    for line in problems[:10]:
        print("   ", line)
    if probe is not None:
        print("  where the app's time goes (per person; @: started after the last Enter):")
        for line in probe.report():
            print(line)
    return 0 if not problems else 1


def scan_part(args, results) -> None:
    print(f"1. scan → decision on screen, Enter → committed ({args.people} people, 80×24)")
    for records in (0, args.records):
        r = asyncio.run(drive(records, args.people))
        results[records] = r
        print(f"  {records:>7} records:")
        for key, label in (
            ("camera", "camera scan → decision shown"),
            ("wedge", "USB-scanner scan → decision shown"),
            ("committed", "Enter → record committed"),
            ("shown", "Enter → decision banner"),
        ):
            print(
                f"    {label:<34} p50 {pct(r[key], 0.5):6.1f} ms  p95 {pct(r[key], 0.95):6.1f} ms"
            )
    for key in ("camera", "wedge", "committed", "shown"):
        big, empty = pct(results[args.records][key], 0.95), pct(results[0][key], 0.95)
        print(
            f"  {key:<10} p95 at {args.records} records {big:6.1f} ms (goal ≤ 50 ms: "
            f"{'ok' if big <= 50 else 'MISSED'}), {big / empty:.2f}× the empty store"
        )


if __name__ == "__main__":
    raise SystemExit(main())
