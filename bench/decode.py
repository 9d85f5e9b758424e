#!/usr/bin/env python3
"""QR decode benchmark: each engine alone, their union, and our pipeline, measured in one run.

Usage: bench/decode.py [--corpus DIR] [--only NAME ...] [--budget-ms MS] [--misses]

Corpora (from ../shared/corpus/qr): the six ZXing sets ``zxing/qrcode-1`` … ``-6`` (NAME.png +
NAME.txt; ``zxing`` alone means all six as one), ``camera-a`` and ``camera-b``
(``expected.json``). For each: reads/total and median ms per image for every engine, the union
(read by at least one engine) and the pipeline, with the pipeline's time ratio to zxing-cpp alone
on all images and on the images zxing-cpp reads. Then the cost on frames without a code:
camera-a frames with the code painted out (inpainted from its surroundings, sensor noise added
back), pipeline vs zxing-cpp alone.

Escalation steps: on every image the fast path misses, every step is run on every candidate
region (no early exit), so each step's reads and cost are known. A step *adds* an image when no
step before it in the ladder reads it (``first``); ``only`` counts the images no other step reads
(what removing that step alone would lose). A step earns its place when it adds reads on more
than one corpus.

The pipeline has no time budget here (``--budget-ms`` sets one): reads do not change with the
machine's load. Images are loaded (grey) before timing; only decoding is timed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scanners.engines import all_engines
from scanners.pipeline import Pipeline

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "qr"


def normalise(text: str | None) -> str | None:
    return None if text is None else text.replace("\r\n", "\n").strip()


def load_corpus(root: Path, name: str) -> list[tuple[str, np.ndarray, str]]:
    folder = root / name
    items = []
    if (folder / "expected.json").is_file():
        for entry in json.loads((folder / "expected.json").read_text(encoding="utf-8")):
            items.append((entry["file"], folder / entry["file"], entry["expected"]))
    else:
        for png in sorted(folder.rglob("*.png")):
            txt = png.with_suffix(".txt")
            if txt.is_file():
                items.append((str(png.relative_to(folder)), png, txt.read_text(encoding="utf-8")))
    out = []
    for label, path, expected in items:
        grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if grey is not None:
            out.append((label, grey, normalise(expected)))
    return out


def timed(fn, image):
    start = time.perf_counter()
    result = fn(image)
    return result, (time.perf_counter() - start) * 1000


def erase_codes(grey: np.ndarray, engine) -> np.ndarray | None:
    """The frame with its code painted out, or None if the code cannot be located."""
    found = engine.decode(grey)
    if not found or not found[0].corners:
        return None
    quad = np.array(found[0].corners, np.float32)
    centre = quad.mean(axis=0)
    quad = ((quad - centre) * 1.35 + centre).astype(np.int32)  # quiet zone and border too
    mask = np.zeros_like(grey)
    cv2.fillConvexPoly(mask, quad, 255)
    small = cv2.resize(grey, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA)
    small_mask = cv2.resize(mask, (small.shape[1], small.shape[0]), interpolation=cv2.INTER_NEAREST)
    filled = cv2.inpaint(small, small_mask, 5, cv2.INPAINT_TELEA)
    filled = cv2.resize(filled, (grey.shape[1], grey.shape[0]), interpolation=cv2.INTER_LINEAR)
    noise = np.random.default_rng(0).normal(0, 3.0, grey.shape).astype(np.float32)
    out = np.where(mask > 0, np.clip(filled.astype(np.float32) + noise, 0, 255), grey)
    return out.astype(np.uint8)


def step_matrix(pipeline: Pipeline, grey: np.ndarray, expected: str | None):
    """{step: (read the expected text?, ms)} over every candidate region, no early exit."""
    out = {}
    regions = pipeline.candidate_regions(grey)
    for name, step in pipeline.steps:
        start = time.perf_counter()
        hit = False
        for region in pipeline.targets(name, grey, regions):
            crop = grey if name in pipeline.frame_steps else region.crop(grey)[0]
            hit = hit or any(normalise(c.text) == expected for c in step(crop))
        out[name] = (hit, (time.perf_counter() - start) * 1000)
    return out


DEFAULT_ONLY = [f"zxing/qrcode-{i}" for i in range(1, 7)] + ["camera-a", "camera-b"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--only", nargs="*", default=DEFAULT_ONLY)
    parser.add_argument("--budget-ms", type=float, default=None)
    parser.add_argument("--misses", action="store_true", help="list images the pipeline missed")
    args = parser.parse_args(argv)

    engines = [e for e in all_engines() if e.available]
    for e in all_engines():
        if not e.available:
            print(f"# {e.name}: {e.why_unavailable}")
    pipeline = Pipeline(engines, budget_ms=args.budget_ms, dedupe_seconds=0)
    # the kept steps and the dropped candidates, for the per-step figures
    ladder = Pipeline(engines, budget_ms=None, dedupe_seconds=0, candidates=True)
    kept = {n for n, _ in pipeline.steps}
    zxing = next(e for e in engines if e.name == "zxing-cpp")
    budget = "none" if args.budget_ms is None else f"{args.budget_ms:.0f} ms"
    print(
        f"# pipeline steps: fast zxing-cpp, then {', '.join(n for n, _ in pipeline.steps)}; "
        f"budget {budget}"
    )

    summary = []
    step_stats: dict[str, dict[str, list]] = {}  # corpus -> step -> [reads, adds, ms, calls]
    for name in args.only:
        items = load_corpus(args.corpus, name)
        if not items:
            print(f"# {name}: no images under {args.corpus / name}")
            continue
        reads = {e.name: set() for e in engines}
        times = {e.name: [] for e in engines}
        pipe_reads, pipe_times, steps = set(), [], {}
        zx_read_ratio = []
        per_step = {n: [0, 0, 0.0, 0, 0] for n, _ in ladder.steps}
        for label, grey, expected in items:
            for engine in engines:
                found, ms = timed(engine.decode, grey)
                times[engine.name].append(ms)
                if any(normalise(c.text) == expected for c in found):
                    reads[engine.name].add(label)
            frame, ms = timed(pipeline.decode, grey)
            pipe_times.append(ms)
            if label in reads["zxing-cpp"]:
                zx_read_ratio.append((ms, times["zxing-cpp"][-1]))
            hit = [(c, s) for c, s in frame.codes if normalise(c.text) == expected]
            if hit:
                pipe_reads.add(label)
                steps[hit[0][1]] = steps.get(hit[0][1], 0) + 1
            if hit and hit[0][1] == "fast":
                continue
            matrix = step_matrix(ladder, grey, expected)
            readers = [s for s, (ok, _) in matrix.items() if ok]
            for s, (ok, ms) in matrix.items():
                stat = per_step[s]
                stat[0] += ok  # reads
                stat[1] += ok and len(readers) == 1  # only this step reads it
                stat[2] += ms
                stat[3] += 1
                stat[4] += bool(readers) and readers[0] == s  # first in ladder order
        step_stats[name] = per_step
        union = set().union(*reads.values())
        total = len(items)
        zx_median = statistics.median(times["zxing-cpp"])
        print(f"\n{name}: {total} images")
        print(f"  {'engine':14} {'read':>9} {'median ms':>10}")
        for engine in engines:
            print(
                f"  {engine.name:14} {len(reads[engine.name]):4}/{total:<4} "
                f"{statistics.median(times[engine.name]):10.2f}"
            )
        print(f"  {'union':14} {len(union):4}/{total:<4} {'':>10}")
        pipe_median = statistics.median(pipe_times)
        zx_ratio = (
            statistics.median(p for p, _ in zx_read_ratio)
            / statistics.median(z for _, z in zx_read_ratio)
            if zx_read_ratio
            else float("nan")
        )
        print(
            f"  {'pipeline':14} {len(pipe_reads):4}/{total:<4} {pipe_median:10.2f}"
            f"   ratio to zxing-cpp {pipe_median / zx_median:.2f}x"
            f" ({zx_ratio:.2f}x on the {len(zx_read_ratio)} it reads);"
            f" vs union {len(pipe_reads) - len(union):+d}"
        )
        print(f"  pipeline reads by step: {dict(sorted(steps.items(), key=lambda kv: -kv[1]))}")
        escalated = max((v[3] for v in per_step.values()), default=0)
        print(
            f"  escalation steps (kept and dropped candidates) on the {escalated} images"
            " the fast path misses:"
        )
        for s, (n_read, n_only, ms, calls, n_first) in per_step.items():
            mean = ms / calls if calls else 0.0
            print(
                f"    {s:24} reads {n_read:3}  first {n_first:3}  only {n_only:3}"
                f"  {mean:8.1f} ms/image"
            )
        missed_union = sorted(union - pipe_reads)
        if missed_union:
            print(f"  union read but pipeline missed: {missed_union}")
        if args.misses:
            print(f"  pipeline missed: {sorted({i[0] for i in items} - pipe_reads)}")
        summary.append(
            (name, len(pipe_reads), len(union), total, pipe_median / zx_median, zx_ratio)
        )

    # Frames without a code: the cost of looking and finding nothing.
    items = load_corpus(args.corpus, "camera-a")
    empties = [e for e in (erase_codes(g, zxing) for _, g, _ in items) if e is not None]
    if empties:
        leftover = sum(1 for e in empties if zxing.decode(e))
        zx_t, pipe_t = [], []
        escalated = 0
        for e in empties:  # interleaved, so both see the same machine load
            zx_t.append(timed(zxing.decode, e)[1])
            frame, ms = timed(pipeline.decode, e)
            pipe_t.append(ms)
            escalated += len(frame.steps_tried) > 1
        ratio = statistics.median(pipe_t) / statistics.median(zx_t)
        print(
            f"\nframes without a code (camera-a, code painted out): {len(empties)} "
            f"({leftover} still readable)"
        )
        print(
            f"  zxing-cpp median {statistics.median(zx_t):.2f} ms, pipeline median "
            f"{statistics.median(pipe_t):.2f} ms, mean {statistics.mean(pipe_t):.2f} ms "
            f"(escalated on {escalated}); ratio {ratio:.2f}x"
        )
        summary.append(("empty", 0, 0, len(empties), ratio, ratio))

    if step_stats:
        print(
            "\nescalation steps: images each adds per corpus as first/only (first: read by no step"
            " before it in the ladder; only: read by no other step), and cost"
        )
        names = list(step_stats)
        print(f"  {'step':24} " + " ".join(f"{n.split('/')[-1]:>10}" for n in names) + "  verdict")
        for s, _ in ladder.steps:
            adds = [step_stats[n][s][4] for n in names]
            only = [step_stats[n][s][1] for n in names]
            ms = sum(step_stats[n][s][2] for n in names)
            calls = sum(step_stats[n][s][3] for n in names)
            corpora = sum(1 for a in adds if a)
            verdict = "keep" if corpora > 1 else "drop: adds on <= 1 corpus"
            verdict += f" ({'kept' if s in kept else 'dropped'} in the pipeline)"
            print(
                f"  {s:24} "
                + " ".join(f"{a:>5}/{o:<4}" for a, o in zip(adds, only, strict=True))
                + f"  {verdict}; {ms / max(calls, 1):.1f} ms/image"
            )

    print("\nsummary:")
    for name, got, union, total, ratio, zx_ratio in summary:
        if name == "empty":
            print(f"  empty-frame cost ratio {ratio:.2f}x (goal <= 1.5x)")
        else:
            print(
                f"  {name}: pipeline {got}/{total} vs union {union}, time ratio {ratio:.2f}x, "
                f"{zx_ratio:.2f}x on images zxing-cpp reads (goal: >= union, <= 2x)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
