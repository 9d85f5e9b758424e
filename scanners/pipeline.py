"""The QR pipeline: fast path first, escalation only when a code is seen but not read.

1. Fast path: zxing-cpp on the grey frame (it already tries the inverted image for dark-mode
   phones). Most frames end here.
2. Gate: a cheap texture map on a downscaled frame finds code-like regions (dense, high-contrast,
   roughly square blobs). No region → stop: a frame without a code costs little more than the
   fast path.
3. Escalation, region by region and step by step until something reads or the per-frame time
   budget runs out (a live camera has one: the next frame is coming; files have none): see
   :meth:`Pipeline._build_steps` for the steps and why each is kept.

``Pipeline.process`` also drops a payload seen again within ``dedupe_seconds``;
:class:`LatestFrameScanner` decodes only the newest frame so a slow decoder (a Pi) skips frames
instead of falling behind.

One piece (~430 lines): the escalation ladder is one ordered decision over one frame; the steps
themselves are in engines and gridfit.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from . import gridfit
from .engines import Decoded, Engine, ZxingEngine, all_engines
from .payloads import PayloadConfig, ScanResult, parse_payload

DEFAULT_BUDGET_MS = 150.0
DEFAULT_DEDUPE_SECONDS = 3.0


def to_grey(frame: np.ndarray) -> np.ndarray:
    """Any OpenCV frame (grey, BGR, BGRA, 16-bit) → contiguous uint8 grey."""
    if frame.dtype != np.uint8:
        frame = cv2.convertScaleAbs(frame, alpha=255.0 / max(1.0, float(frame.max())))
    if frame.ndim == 3:
        code = {1: None, 3: cv2.COLOR_BGR2GRAY, 4: cv2.COLOR_BGRA2GRAY}.get(frame.shape[2])
        frame = frame[:, :, 0] if code is None else cv2.cvtColor(frame, code)
    return np.ascontiguousarray(frame)


@dataclass(frozen=True)
class Region:
    x: int
    y: int
    w: int
    h: int
    score: float

    def crop(self, grey: np.ndarray, pad: float = 0.12) -> tuple[np.ndarray, int, int]:
        p = int(pad * max(self.w, self.h)) + 4
        x0, y0 = max(0, self.x - p), max(0, self.y - p)
        return grey[y0 : self.y + self.h + p, x0 : self.x + self.w + p], x0, y0


def find_code_regions(grey: np.ndarray, limit: int = 3) -> list[Region]:
    """Code-like regions: dense texture in a roughly square blob, biggest first (~1 ms at 720p)."""
    h, w = grey.shape[:2]
    scale = max(1, min(h, w) // 90)  # 720p → 1/8: the gate must cost little next to zxing
    small = (
        cv2.resize(grey, (w // scale, h // scale), interpolation=cv2.INTER_AREA)
        if scale > 1
        else grey
    )
    grad = cv2.morphologyEx(small, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    grad = cv2.blur(grad, (5, 5))
    threshold = max(12.0, float(np.median(grad)) * 3)
    mask = cv2.morphologyEx(
        (grad > threshold).astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8)
    )
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask)
    regions = []
    for i in range(1, n):
        x, y, rw, rh, area = (int(v) for v in stats[i])
        if rw < 6 or rh < 6 or area < 0.4 * rw * rh or max(rw, rh) > 3 * min(rw, rh):
            continue
        regions.append(Region(x * scale, y * scale, rw * scale, rh * scale, float(area)))
    regions.sort(key=lambda r: -r.score)
    return regions[:limit]


def _stretch(grey: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(grey, (1, 99))
    if hi - lo < 1:
        return grey
    return cv2.convertScaleAbs(grey, alpha=255.0 / (hi - lo), beta=-lo * 255.0 / (hi - lo))


def _sharpen(grey: np.ndarray, sigma: float, amount: float) -> np.ndarray:
    blurred = cv2.GaussianBlur(grey, (0, 0), sigma)
    return cv2.addWeighted(grey, 1 + amount, blurred, -amount, 0)


def _normalise(grey: np.ndarray, sigma: float) -> np.ndarray:
    """Local contrast normalisation: subtract the local mean, divide by the local deviation."""
    f = grey.astype(np.float32)
    mean = cv2.GaussianBlur(f, (0, 0), sigma)
    dev = np.sqrt(cv2.GaussianBlur((f - mean) ** 2, (0, 0), sigma)) + 1.0
    return np.clip(128 + 60 * (f - mean) / dev, 0, 255).astype(np.uint8)


def _upscale(grey: np.ndarray, factor: float) -> np.ndarray:
    return cv2.resize(grey, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)


ADAPTIVE_OFFSETS = (0, -4, 4, 8)  # threshold = local mean - offset: centred, then either side


def _adaptive_binarised(grey: np.ndarray) -> Iterator[np.ndarray]:
    """Binary versions of a crop for a blurred, small code, made one at a time: ×2, a little
    smoothing, a threshold against the mean of a 13 px window (about two modules at 3 px/module
    after ×2) at each of ``ADAPTIVE_OFFSETS``, and a 3×3 opening that removes the specks a noisy
    sensor leaves in light modules. zxing's own local binarizer uses a fixed block and no
    cleaning; blur that spreads a module over its neighbours defeats it where this still
    separates them."""
    x = cv2.GaussianBlur(_upscale(_stretch(grey), 2), (0, 0), 0.8)
    kernel = np.ones((3, 3), np.uint8)
    for offset in ADAPTIVE_OFFSETS:
        binary = cv2.adaptiveThreshold(
            x, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, 13, offset
        )
        yield cv2.morphologyEx(binary, cv2.MORPH_OPEN, kernel)


@dataclass(frozen=True)
class Read:
    """One code read from a frame, parsed."""

    text: str | None
    raw: bytes
    engine: str  # which engine read it
    step: str  # which pipeline step (fast, or the escalation that found it)
    ms: float  # time spent on the frame until this read
    result: ScanResult
    corners: tuple[tuple[float, float], ...] = ()

    @property
    def kind(self) -> str:
        return self.result.kind


@dataclass
class FrameDecode:
    """Everything the pipeline found in one frame, before de-duplication."""

    codes: list[tuple[Decoded, str]]  # (code, step)
    ms: float
    steps_tried: list[str] = field(default_factory=list)
    budget_exhausted: bool = False


Step = tuple[str, Callable[[np.ndarray], list[Decoded]]]


class Pipeline:
    """Reads every code in a frame as fast as the fastest engine, as well as all of them."""

    def __init__(
        self,
        engines: list[Engine] | None = None,
        budget_ms: float | None = DEFAULT_BUDGET_MS,
        dedupe_seconds: float = DEFAULT_DEDUPE_SECONDS,
        payload_config: PayloadConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
        candidates: bool = False,
    ) -> None:
        engines = [e for e in (engines if engines is not None else all_engines()) if e.available]
        self.engines = engines
        self.budget_ms = budget_ms
        self.dedupe_seconds = dedupe_seconds
        self.payload_config = payload_config or PayloadConfig()
        self.clock = clock
        self._seen: dict[bytes, float] = {}
        self._zxing = next((e for e in engines if isinstance(e, ZxingEngine)), None)
        self._others = [e for e in engines if not isinstance(e, ZxingEngine)]
        self.frame_steps: set[str] = set()
        self.step_cost: dict[str, float] = {}  # seconds, moving average per step
        self.candidates = candidates
        self.steps = self._build_steps()

    # -- escalation ladder -------------------------------------------------------------------
    def _build_steps(self) -> list[Step]:
        """Escalation steps, cheapest reads first. A step is kept only when it adds reads on
        more than one corpus (bench/decode.py, 2026-12-02 11:38 UTC: eight corpora, every step
        run on every image the fast path misses; "first" = read by no step before it):

        ====================== ======================================================== =====
        step                   adds (first) per corpus                                   kept
        ====================== ======================================================== =====
        zxing-up2-sharp        zxing/qrcode-4 1, camera-b 6                              yes
        pyzbar                 zxing/qrcode-2 1, zxing/qrcode-4 1                        yes
        zxing-up3-sharp        camera-a 1, camera-b 2                                    yes
        zxing-adaptive         camera-a 1, camera-b 2                                    yes
        zxing-gridfit          zxing/qrcode-2 1, zxing/qrcode-4 4, camera-b 22           yes
        wechat (whole frame)   nothing first since zxing-gridfit sits before it          yes*
        zxing-up2-sharp-fixed  nothing first                                             no
        zxing-up2-normalised   nothing first                                             no
        opencv-aruco, opencv,  nothing on any corpus                                     no
        pyzbar-up2-sharp
        ====================== ======================================================== =====

        zxing-adaptive (2026-12-02 06:00 run) reads the two camera-b frames only the dropped
        fixed-threshold and normalised candidates read before, and the camera-a frame only the
        CNN read, at a tenth of its cost (so a live camera, whose budget often cannot fit the
        CNN, reads it too).

        zxing-gridfit (:mod:`scanners.gridfit`) fits the QR module grid to the grey crop and
        hands a clean synthetic symbol to zxing-cpp: it reads small, blurred codes (camera-b:
        versions 14-24 at 2-3 px per module; 21 that no other step reads) and codes printed on
        creased cloth (zxing/qrcode-4: 4 that no engine reads). It costs about 0.15 s per image
        where everything before it failed, so it comes after every cheaper step; it reads the
        zxing/qrcode-2 image that only the CNN read before, and in these corpora the CNN reads
        nothing it does not. *The CNN stays, last, for the glare, damaged and pathological
        photographs it was brought in for (issue 16; not in these corpora).

        ``candidates=True`` builds the dropped steps too (after the kept ones), so the bench
        keeps measuring them.
        """
        steps: list[Step] = []
        dropped: list[Step] = []
        zx = self._zxing
        by_name = {e.name: e for e in self._others}
        if zx is not None:
            fmt = getattr(zx._zx.BarcodeFormat, "QRCodeModel2", zx._zx.BarcodeFormat.QRCode)
            crop_opts = {"formats": fmt, "try_rotate": False, "try_downscale": False}
            binarizer = zx._zx.Binarizer

            def zx_step(prepare, **opts):
                return lambda c: zx.decode_with(prepare(c), **crop_opts, **opts)

            up2_sharp = zx_step(lambda c: _sharpen(_upscale(_stretch(c), 2), 3.0, 2.0))
            steps.append(("zxing-up2-sharp", up2_sharp))
            dropped.append(
                (
                    "zxing-up2-sharp-fixed",
                    zx_step(
                        lambda c: _sharpen(_upscale(_stretch(c), 2), 3.0, 2.0),
                        binarizer=binarizer.FixedThreshold,
                    ),
                )
            )
        if "pyzbar" in by_name:
            zbar = by_name["pyzbar"]
            steps.append(("pyzbar", zbar.decode))
            dropped.append(
                ("pyzbar-up2-sharp", lambda c: zbar.decode(_sharpen(_upscale(c, 2), 2.0, 1.0)))
            )
        if zx is not None:
            steps.append(
                ("zxing-up3-sharp", zx_step(lambda c: _sharpen(_upscale(_stretch(c), 3), 4.5, 2.0)))
            )
            dropped.append(
                ("zxing-up2-normalised", zx_step(lambda c: _normalise(_upscale(c, 2), 8.0)))
            )
        if zx is not None:

            def adaptive(crop: np.ndarray) -> list[Decoded]:
                # lazily: a later threshold is made only when the one before read nothing
                for binary in _adaptive_binarised(crop):
                    found = zx.decode_with(binary, **crop_opts, binarizer=binarizer.FixedThreshold)
                    if found:
                        return found
                return []

            steps.append(("zxing-adaptive", adaptive))

            def grid_fitted(crop: np.ndarray) -> list[Decoded]:
                # a clean synthetic symbol drawn from the fitted grid: pure, upright, binary
                # (QRCodeModel2 as the format reads nothing in pure mode: zxing-cpp 3.1)
                return gridfit.read(
                    crop,
                    lambda symbol: zx.decode_with(
                        symbol,
                        formats=zx._zx.BarcodeFormat.QRCode,
                        try_rotate=False,
                        try_downscale=False,
                        is_pure=True,
                        try_invert=False,
                        binarizer=binarizer.FixedThreshold,
                    ),
                )

        for name in ("opencv-aruco", "opencv"):
            if name in by_name:
                dropped.append((name, by_name[name].decode))
        if zx is not None:
            # costly per region (a grid fitted for a few QR sizes): after every cheaper step
            steps.append(("zxing-gridfit", grid_fitted))
        if "wechat" in by_name:
            # CNN detector + super-resolution: the costliest, so last. Its detector finds codes
            # better than the texture gate, and it scales the input down for detection (a whole
            # frame costs about what a crop does), so it gets the whole frame, once.
            steps.append(("wechat", by_name["wechat"].decode))
            self.frame_steps.add("wechat")
        return steps + dropped if self.candidates else steps

    def targets(self, name: str, grey: np.ndarray, regions: list[Region]) -> list[Region]:
        """Where a step runs: the candidate regions, or the whole frame for a frame step (only
        when the gate saw something, so a frame without a code never pays for it)."""
        if name in self.frame_steps:
            return [Region(0, 0, grey.shape[1], grey.shape[0], 0.0)] if regions else []
        return regions

    # -- decoding ----------------------------------------------------------------------------
    def decode(self, frame: np.ndarray) -> FrameDecode:
        """All codes in the frame (no de-duplication)."""
        start = time.perf_counter()
        # None: no budget (files: the result must not depend on the machine's load)
        deadline = math.inf if self.budget_ms is None else start + self.budget_ms / 1000.0
        grey = to_grey(frame)
        tried = ["fast"]
        if self._zxing is not None:
            found = self._zxing.decode(grey)
            if found:
                return FrameDecode([(c, "fast") for c in found], _ms(start), tried)
        regions = self.candidate_regions(grey)
        for name, step in self.steps:
            frame_step = name in self.frame_steps
            for region in self.targets(name, grey, regions):
                now = time.perf_counter()
                # a step that would not finish inside the budget is not started (live camera)
                if now + self.step_cost.get(name, 0.0) > deadline:
                    return FrameDecode([], _ms(start), tried, budget_exhausted=True)
                crop = grey if frame_step else region.crop(grey)[0]
                tried.append(name)
                found = step(crop)
                cost = time.perf_counter() - now
                last = self.step_cost.get(name)
                self.step_cost[name] = cost if last is None else 0.8 * last + 0.2 * cost
                if found:
                    if not frame_step:  # a rescaled crop: the region box is where it is
                        found = [replace(c, corners=_box(region)) for c in found]
                    return FrameDecode([(c, name) for c in found], _ms(start), tried)
        return FrameDecode([], _ms(start), tried)

    def candidate_regions(self, grey: np.ndarray) -> list[Region]:
        """Where escalation looks: code-like regions (the whole image when there is no fast
        path, and for small stills, where the gate is not needed)."""
        whole = Region(0, 0, grey.shape[1], grey.shape[0], 0.0)
        if self._zxing is None:
            return [whole]
        regions = find_code_regions(grey)
        if grey.shape[0] * grey.shape[1] <= 640 * 640:
            regions.append(whole)
        return regions

    def process(self, frame: np.ndarray) -> list[Read]:
        """Decode, parse, and drop payloads already seen within ``dedupe_seconds``."""
        frame_decode = self.decode(frame)
        now = self.clock()
        reads = []
        for code, step in frame_decode.codes:
            last = self._seen.get(code.raw)
            self._seen[code.raw] = now
            if last is not None and now - last < self.dedupe_seconds:
                continue
            reads.append(self.make_read(code, step, frame_decode.ms))
        if len(self._seen) > 1024:
            self._seen = {k: t for k, t in self._seen.items() if now - t < self.dedupe_seconds}
        return reads

    def make_read(self, code: Decoded, step: str, ms: float) -> Read:
        result = parse_payload(
            code.text if code.text is not None else code.raw, self.payload_config
        )
        return Read(code.text, code.raw, code.engine, step, ms, result, code.corners)


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def _box(region: Region) -> tuple[tuple[float, float], ...]:
    """Escalated reads come from a rescaled crop: report the region box as their corners."""
    x, y, w, h = region.x, region.y, region.w, region.h
    return ((x, y), (x + w, y), (x + w, y + h), (x, y + h))


class LatestFrameScanner:
    """Decode only the newest frame: a reader thread keeps the latest, the decoder takes it.

    ``submit(frame)`` never blocks; a frame not yet decoded when the next arrives is skipped
    (counted in ``skipped``). Reads go to ``on_reads`` from the decoder thread.
    """

    def __init__(self, pipeline: Pipeline, on_reads: Callable[[list[Read]], None]) -> None:
        self.pipeline = pipeline
        self.on_reads = on_reads
        self.skipped = 0
        self.decoded = 0
        self._frame: np.ndarray | None = None
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="qr-decoder", daemon=True)
        self._thread.start()

    def submit(self, frame: np.ndarray) -> None:
        with self._cond:
            if self._frame is not None:
                self.skipped += 1
            self._frame = frame
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._frame is None and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                frame, self._frame = self._frame, None
            assert frame is not None  # the wait ends on a frame or on stop
            reads = self.pipeline.process(frame)
            self.decoded += 1
            if reads:
                self.on_reads(reads)

    def close(self, timeout: float = 2.0) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(timeout)
