"""Grid-fitting, soft-module QR reading for small, blurred codes (1.8–3 px per module).

zxing-cpp binarises the image and then samples one pixel per module; when blur spreads each
module over its neighbours the binary image has no clean finder patterns and no clean modules, so
it finds nothing (or reads a wrong grid). Here the grid is fitted to the grey image instead:

1. **Symbol quad.** A code is printed on a light ground. Two outlines are tried: what stands out
   from the crop's edges (texture, or light), for a code on a ground like itself, and the light
   blob (Otsu), for a code on a dark ground. The outline's convex hull gives a quadrilateral;
   rectified to a square, the longest run of rows and of columns holding dark pixels bounds the
   symbol (the quiet zone has none; a caption above the code is a run of its own).
2. **Module count.** For every QR size with a plausible module pitch, the alignment patterns
   away from the corners (at nearly the same places in every orientation) are searched near
   where that grid puts them (quarter-module steps, correlation with the known pattern) and the
   homography is re-fitted to them; the sizes whose patterns match best are tried (the best of
   versions 1–6, which have none away from the corners, by their finder patterns). An outline
   no size fits (best match under FIT_MIN) is texture, not a code, and is given up here.
3. **Grid fit.** In each of the four orientations the homography is re-fitted to the finders and
   every alignment pattern; the orientation whose patterns match best is kept. A second grid adds
   a per-region correction: each block of 7×7 modules gets the sub-module offset at which its
   samples spread most (a curved, creased or cloth print; a lens).
4. **Soft modules.** Each module is sampled with bilinear interpolation. Bits are decided by a
   decision-directed equaliser (nine samples across the module and its neighbours' bits, weights
   fitted per region by least squares), started from a fixed decision-feedback model fitted on
   the function patterns, whose colours are known; then by the fixed model alone, then by a 3×3
   sharpening in module space against the local mean.
5. **Error correction by zxing-cpp.** The function patterns are set to what they must be and the
   bit matrix is drawn as a clean synthetic symbol (4 px per module, quiet zone) and decoded by
   zxing-cpp in pure mode, whose Reed–Solomon decoder corrects what the sampling got wrong and
   rejects a wrong grid.

Never raises on any input (junk gives ``[]``).

One piece (~630 lines): one algorithm whose stages pass arrays to each other; no stage means
anything alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import cv2
import numpy as np

# QR alignment pattern centre rows/columns per version (ISO/IEC 18004 Annex E)
_ALIGN = [
    [],
    [6, 18],
    [6, 22],
    [6, 26],
    [6, 30],
    [6, 34],
    [6, 22, 38],
    [6, 24, 42],
    [6, 26, 46],
    [6, 28, 50],
    [6, 30, 54],
    [6, 32, 58],
    [6, 34, 62],
    [6, 26, 46, 66],
    [6, 26, 48, 70],
    [6, 26, 50, 74],
    [6, 30, 54, 78],
    [6, 30, 56, 82],
    [6, 30, 58, 86],
    [6, 34, 62, 90],
    [6, 28, 50, 72, 94],
    [6, 26, 50, 74, 98],
    [6, 30, 54, 78, 102],
    [6, 28, 54, 80, 106],
    [6, 32, 58, 84, 110],
    [6, 30, 58, 86, 114],
    [6, 34, 62, 90, 118],
    [6, 26, 50, 74, 98, 122],
    [6, 30, 54, 78, 102, 126],
    [6, 26, 52, 78, 104, 130],
    [6, 30, 56, 82, 108, 134],
    [6, 34, 60, 86, 112, 138],
    [6, 30, 58, 86, 114, 142],
    [6, 34, 62, 90, 118, 146],
    [6, 30, 54, 78, 102, 126, 150],
    [6, 24, 50, 76, 102, 128, 154],
    [6, 28, 54, 80, 106, 132, 158],
    [6, 32, 58, 84, 110, 136, 162],
    [6, 26, 54, 82, 110, 138, 166],
    [6, 30, 58, 86, 114, 142, 170],
]

MODULE_PX = (1.4, 12.0)  # module pitches (px) this step looks for; zxing reads bigger ones
FIT_MIN = 0.65  # best mean pattern match below which an outline is no code (noise: 0.61)
SIZES_TRIED = 3  # QR sizes (versions 7+) tried per quad, best pattern match first
RENDER_PX = 4  # synthetic symbol: px per module
QUIET = 4  # synthetic symbol: quiet zone in modules
SPILLS = (2.0, 1.0)  # neighbour blur removed from each module, tried in turn


def _finder(n: int = 7) -> np.ndarray:
    """1 = dark: the 7×7 finder pattern."""
    y, x = np.mgrid[0:n, 0:n]
    ring = np.maximum(np.abs(y - 3), np.abs(x - 3))
    return (ring != 2).astype(np.float32)


def _alignment() -> np.ndarray:
    y, x = np.mgrid[0:5, 0:5]
    ring = np.maximum(np.abs(y - 2), np.abs(x - 2))
    return (ring != 1).astype(np.float32)


FINDER = _finder()
ALIGNMENT = _alignment()


def _order(quad: np.ndarray) -> np.ndarray:
    """Corners clockwise from the one nearest the top left (image coordinates)."""
    centre = quad.mean(axis=0)
    angles = np.arctan2(quad[:, 1] - centre[1], quad[:, 0] - centre[0])
    quad = quad[np.argsort(angles)]
    start = int(np.argmin(quad.sum(axis=1)))
    return np.roll(quad, -start, axis=0)


def _quads_of(mask: np.ndarray) -> list[np.ndarray]:
    """Quadrilaterals around the big components of a mask: on the four longest sides of its
    convex hull, and through four of the hull's corners (when they differ)."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask)
    if n < 2:
        return []
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.nonzero(areas >= max(400, 0.1 * areas.max()))[0] + 1
    if len(keep) == 0:
        return []
    hull = cv2.convexHull(cv2.findNonZero(np.isin(labels, keep).astype(np.uint8)))
    perimeter = cv2.arcLength(hull, True)
    quads = []
    sides = _quad_from_sides(cv2.approxPolyDP(hull, 0.01 * perimeter, True).reshape(-1, 2))
    area = max(1.0, cv2.contourArea(hull))
    if sides is not None and 0.9 <= cv2.contourArea(sides.astype(np.float32)) / area <= 1.3:
        quads.append(sides)
    for eps in (0.02, 0.03, 0.04, 0.06, 0.08):
        poly = cv2.approxPolyDP(hull, eps * perimeter, True)
        if len(poly) == 4:
            quads.append(_order(poly.reshape(4, 2).astype(np.float64)))
            break
    return quads


def _quad_from_sides(poly: np.ndarray) -> np.ndarray | None:
    """The quadrilateral whose sides lie on the four longest sides of a convex polygon: a corner
    the outline lost (light modules in a corner of a low-contrast code) is put back."""
    k = len(poly)
    if k < 4:
        return None
    p = poly.astype(np.float64)
    lengths = np.linalg.norm(np.roll(p, -1, axis=0) - p, axis=1)
    sides = sorted(np.argsort(-lengths)[:4])
    corners = []
    for i, j in zip(sides, sides[1:] + sides[:1], strict=True):
        a1, a2, b1, b2 = p[i], p[(i + 1) % k], p[j], p[(j + 1) % k]
        d1, d2 = a2 - a1, b2 - b1
        det = d1[0] * d2[1] - d1[1] * d2[0]
        if abs(det) < 1e-6 * (np.linalg.norm(d1) * np.linalg.norm(d2) + 1e-9):
            return None  # parallel neighbours: not a quadrilateral
        t = ((b1[0] - a1[0]) * d2[1] - (b1[1] - a1[1]) * d2[0]) / det
        corners.append(a1 + t * d1)
    return _order(np.array(corners))


def paper_quads(grey: np.ndarray) -> list[np.ndarray]:
    """Quadrilaterals around a code and its light margin: the texture (and light) that stands out
    from the crop's edges (a code on a similar ground), then the light blob (a code on a dark
    ground)."""
    h, w = grey.shape
    if h < 24 or w < 24:
        return []
    g = grey.astype(np.float32)
    mean = cv2.GaussianBlur(g, (0, 0), 2.0)
    std = np.sqrt(np.maximum(cv2.GaussianBlur(g * g, (0, 0), 2.0) - mean * mean, 0))
    edge = np.zeros((h, w), bool)
    edge[:3], edge[-3:], edge[:, :3], edge[:, -3:] = True, True, True, True
    ground, noise = float(np.median(mean[edge])), float(np.median(std[edge])) + 1.0
    stands_out = ((std > 2.5 * noise) | (mean > ground + 4.0 * noise)).astype(np.uint8)
    opened = cv2.morphologyEx(stands_out, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    texture = cv2.morphologyEx(opened, cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8))
    _, otsu = cv2.threshold(grey, 0, 1, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    light = cv2.morphologyEx(otsu, cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8))
    quads: list[np.ndarray] = []
    for mask in (texture, light):
        for quad in _quads_of(mask):
            if not any(np.abs(quad - q).max() < 3 for q in quads):
                quads.append(quad)
    return quads


def _longest_run(flags: np.ndarray, gap: int) -> tuple[int, int] | None:
    """[start, end) of the longest run of True, bridging runs of False up to ``gap`` long
    (a caption above a code is a separate run; a light row inside a blurred code is not)."""
    best, start, last = None, None, -(10**9)
    for i in np.nonzero(flags)[0]:
        if start is None or i - last > gap + 1:
            start = int(i)
        last = int(i)
        if best is None or last + 1 - start > best[1] - best[0]:
            best = (start, last + 1)
    return best


def _symbol_box(rect: np.ndarray) -> tuple[float, float, float, float] | None:
    """Inside a rectified paper square: the box holding dark pixels (the symbol), or None."""
    lo, hi = np.percentile(rect, (5, 95))
    if hi - lo < 20:
        return None
    dark = (rect < (lo + hi) / 2).astype(np.float32)
    bounds = []
    for axis in (1, 0):  # rows, then columns
        frac = dark.mean(axis=axis)
        frac = np.convolve(frac, np.ones(3) / 3, mode="same")
        run = _longest_run(frac > 0.15, gap=len(frac) // 50)
        if run is None or run[1] - run[0] < 10:
            return None
        bounds.append((float(run[0]), float(run[1])))
    (top, bottom), (left, right) = bounds
    return left, top, right, bottom


def symbol_quads(grey: np.ndarray) -> list[np.ndarray]:
    """Symbol corner quads (clockwise, image coordinates) found in a grey crop."""
    out = []
    for paper in paper_quads(grey):
        side = 400
        square = np.array([[0, 0], [side, 0], [side, side], [0, side]], np.float64)
        to_square = cv2.getPerspectiveTransform(paper.astype(np.float32), square.astype(np.float32))
        rect = cv2.warpPerspective(grey, to_square, (side, side), flags=cv2.INTER_LINEAR)
        box = _symbol_box(rect)
        if box is None:
            continue
        left, top, right, bottom = box
        inner = np.array([[left, top], [right, top], [right, bottom], [left, bottom]], np.float64)
        back = cv2.perspectiveTransform(inner.reshape(1, 4, 2), np.linalg.inv(to_square))
        out.append(back.reshape(4, 2))
    return out


def _sample(grey: np.ndarray, homography: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``grey`` at module-space ``points`` (…×2) mapped by ``homography``."""
    shape = points.shape[:-1]
    mapped = cv2.perspectiveTransform(points.reshape(1, -1, 2).astype(np.float64), homography)
    mapped = mapped.reshape(-1, 2).astype(np.float32)
    count = len(mapped)
    if count == 0:
        return np.zeros(shape, np.float32)
    width = min(count, 4096)  # remap wants maps under 32767 on a side
    rows = -(-count // width)
    padded = np.zeros((rows * width, 2), np.float32)
    padded[:count] = mapped
    values = cv2.remap(
        grey,
        padded[:, 0].reshape(rows, width),
        padded[:, 1].reshape(rows, width),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return values.reshape(-1)[:count].reshape(shape)


def _homography(quad: np.ndarray, n: int) -> np.ndarray:
    square = np.array([[0, 0], [n, 0], [n, n], [0, n]], np.float32)
    return cv2.getPerspectiveTransform(square, quad.astype(np.float32))


def _alignment_centres(version: int) -> list[tuple[int, int]]:
    """(column, row) of every alignment pattern's centre module (none in version 1)."""
    pos = _ALIGN[version - 1]
    if not pos:
        return []
    skip = {(6, 6), (6, pos[-1]), (pos[-1], 6)}  # under the finder patterns
    return [(cx, cy) for cy in pos for cx in pos if (cx, cy) not in skip]


def _pattern_centres(version: int, symmetric: bool) -> list[tuple[float, float, np.ndarray]]:
    """(x, y, pattern) of the finders and alignment patterns, module space. ``symmetric``: only
    the alignment patterns away from the corners (no finders), for a grid not yet oriented."""
    n = 17 + 4 * version
    out = [] if symmetric else [(3.5, 3.5, FINDER), (n - 3.5, 3.5, FINDER), (3.5, n - 3.5, FINDER)]
    last = n - 7  # the bottom-right alignment pattern's row and column
    out += [
        (cx + 0.5, cy + 0.5, ALIGNMENT)
        for cx, cy in _alignment_centres(version)
        if not (symmetric and cx == cy == last)
    ]
    return out


_OFFSETS = np.arange(-1.25, 1.2501, 0.25)


def _pattern_grid(size: int) -> np.ndarray:
    """Module-centre offsets of a size×size pattern around its centre, for every search offset:
    (offsets, size², 2)."""
    k = np.arange(size) - size / 2 + 0.5
    gx, gy = np.meshgrid(k, k)
    ox, oy = np.meshgrid(_OFFSETS, _OFFSETS)
    return np.stack(
        [ox.ravel()[:, None] + gx.ravel()[None, :], oy.ravel()[:, None] + gy.ravel()[None, :]], -1
    )


_GRIDS = {size: _pattern_grid(size) for size in (5, 7)}
_SEARCH = np.stack([a.ravel() for a in np.meshgrid(_OFFSETS, _OFFSETS)], -1)  # (offsets, 2)


def _match_all(
    grey: np.ndarray, homography: np.ndarray, centres: np.ndarray, pattern: np.ndarray
) -> np.ndarray:
    """For each of ``centres`` (k×2, module space): the best (score, dx, dy) of the normalised
    correlation of ``pattern`` centred near it (k×3)."""
    if len(centres) == 0:
        return np.zeros((0, 3))
    grid = _GRIDS[pattern.shape[0]]
    pts = centres[:, None, None, :] + grid[None]  # centres × offsets × modules × 2
    v = _sample(grey, homography, pts).astype(np.float64)
    v -= v.mean(axis=2, keepdims=True)
    template = (1.0 - pattern).ravel().astype(np.float64)  # dark = low value
    template -= template.mean()
    scores = (v @ template) / (np.linalg.norm(v, axis=2) * np.linalg.norm(template) + 1e-6)
    best = np.argmax(scores, axis=1)
    return np.column_stack([scores[np.arange(len(centres)), best], _SEARCH[best]])


def _match(
    grey: np.ndarray, homography: np.ndarray, cx: float, cy: float, pattern: np.ndarray
) -> tuple[float, float, float]:
    """Best (score, dx, dy): normalised correlation of ``pattern`` centred near (cx, cy)."""
    score, dx, dy = _match_all(grey, homography, np.array([[cx, cy]]), pattern)[0]
    return float(score), float(dx), float(dy)


def _refine(
    grey: np.ndarray, homography: np.ndarray, version: int, symmetric: bool = False
) -> tuple[np.ndarray, float]:
    """Re-fit the homography to the pattern centres found near the grid's; and how well the grid
    fits: the mean match of the alignment patterns (of the finders where there are none: they
    sit in the corners whatever the module count, so they tell sizes apart only when nothing
    else can)."""
    matches = []
    aligned: list[float] = []
    for pattern in (FINDER, ALIGNMENT):
        centres = np.array(
            [(cx, cy) for cx, cy, p in _pattern_centres(version, symmetric) if p is pattern]
        ).reshape(-1, 2)
        found = _match_all(grey, homography, centres, pattern)
        matches += [
            ((s, dx, dy), cx, cy) for (s, dx, dy), (cx, cy) in zip(found, centres, strict=True)
        ]
        if pattern is ALIGNMENT:
            aligned = [float(s) for s in found[:, 0]]
    if symmetric and not aligned:  # small sizes: the finders, at three of the four corners
        n = 17 + 4 * version
        corners = [(3.5, 3.5), (n - 3.5, 3.5), (n - 3.5, n - 3.5), (3.5, n - 3.5)]
        finders = sorted(
            ((_match(grey, homography, cx, cy, FINDER), cx, cy) for cx, cy in corners),
            key=lambda m: -m[0][0],
        )
        matches += finders[:3]
    src, dst, scores = [], [], []
    for (score, dx, dy), cx, cy in matches:
        scores.append(score)
        if score >= 0.5:
            src.append((cx + dx, cy + dy))
            dst.append((cx, cy))
    ranked = aligned if symmetric and aligned else scores
    mean = float(np.mean(ranked)) if ranked else 0.0
    if len(src) < 4:
        return homography, mean
    found = cv2.perspectiveTransform(np.array([src], np.float64), homography)[0]
    fitted, _ = cv2.findHomography(np.array(dst, np.float64), found, 0)
    return (homography if fitted is None else fitted), mean


def _corners(homography: np.ndarray, n: int) -> np.ndarray:
    square = np.array([[[0, 0], [n, 0], [n, n], [0, n]]], np.float64)
    return cv2.perspectiveTransform(square, homography)[0]


def _oriented(grey: np.ndarray, homography: np.ndarray, version: int) -> np.ndarray:
    """The grid turned to the orientation whose finder and alignment patterns (the latter are not
    symmetric under a turn: version 18 has them at 6, 30, 56, 82 of 89) match best, re-fitted."""
    n = 17 + 4 * version
    corners = _corners(homography, n)
    best: tuple[float, np.ndarray] | None = None
    for turn in range(4):
        h = _homography(np.roll(corners, -turn, axis=0), n)
        h, _ = _refine(grey, h, version)
        h, score = _refine(grey, h, version)
        if best is None or score > best[0]:
            best = (score, h)
    assert best is not None
    return best[1]


def soft_modules(
    grey: np.ndarray, homography: np.ndarray, n: int, shift: np.ndarray | None = None
) -> np.ndarray:
    """Module-centre samples, n×n float (high = light); ``shift`` (n×n×2, modules) moves each
    centre."""
    c = np.arange(n) + 0.5
    pts = np.stack(np.meshgrid(c, c), -1)
    if shift is not None:
        pts = pts + shift
    return _sample(grey, homography, pts)


LOCAL_BLOCK = 7  # modules per side of a block whose grid offset is found on its own
_LOCAL_OFFSETS = np.arange(-0.5, 0.501, 0.125)
_LOCAL_SEARCH = np.stack([a.ravel() for a in np.meshgrid(_LOCAL_OFFSETS, _LOCAL_OFFSETS)], -1)


def local_shift(grey: np.ndarray, homography: np.ndarray, n: int) -> np.ndarray:
    """Per-region correction of the grid (a curved or creased print, a lens): for each block of
    LOCAL_BLOCK×LOCAL_BLOCK modules, the sub-module offset at which its module samples spread
    most (centres of modules are the extremes of a blurred image, edges the middle), median-
    smoothed over the blocks and interpolated to every module (n×n×2, modules)."""
    blocks = max(1, round(n / LOCAL_BLOCK))
    edges = np.linspace(0, n, blocks + 1)
    starts = edges[:-1].astype(int)
    lengths = edges[1:].astype(int) - starts
    span = int(lengths.max())
    index = starts[:, None] + np.arange(span)[None, :]  # blocks × span (past the end: masked)
    valid = np.arange(span)[None, :] < lengths[:, None]
    best = np.zeros((blocks, blocks, 2), np.float32)
    offsets = _LOCAL_SEARCH.astype(np.float32)
    for row in range(blocks):  # one block row at a time: bounded memory for big symbols
        # points: block column × offset × module row × module column × (x, y)
        xs = index[:, None, None, :] + 0.5 + offsets[None, :, 0, None, None]
        ys = index[row][None, None, :, None] + 0.5 + offsets[None, :, 1, None, None]
        xs, ys = np.broadcast_arrays(xs, ys)
        v = _sample(grey, homography, np.stack([xs, ys], -1))
        w = (valid[row][None, None, :, None] & valid[:, None, None, :]).astype(np.float32)
        total = w.sum(axis=(2, 3))
        mean = (v * w).sum(axis=(2, 3)) / total
        spread = (w * (v - mean[..., None, None]) ** 2).sum(axis=(2, 3)) / total
        best[row] = _LOCAL_SEARCH[np.argmax(spread, axis=1)]
    if blocks >= 3:
        best = np.stack([cv2.medianBlur(best[..., i], 3) for i in range(2)], -1)
    centres = (edges[:-1] + edges[1:]) / 2
    c = np.arange(n) + 0.5
    shift = np.empty((n, n, 2), np.float32)
    for i in range(2):
        rows = np.array([np.interp(c, centres, best[r, :, i]) for r in range(blocks)])
        shift[..., i] = np.array([np.interp(c, centres, rows[:, j]) for j in range(n)]).T
    return shift


def decide(values: np.ndarray, spill: float) -> np.ndarray:
    """Bits (True = dark) from soft module values: remove ``spill`` of the neighbours' blur,
    then compare each module with its neighbourhood mean."""
    v = values.astype(np.float32)
    if spill:
        neighbours = cv2.blur(v, (3, 3), borderType=cv2.BORDER_REFLECT)
        v = v + spill * (v - neighbours)
    local = cv2.GaussianBlur(v, (0, 0), 3.0, borderType=cv2.BORDER_REFLECT)
    return v < local


def _function_mask(version: int) -> np.ndarray:
    """True where the module is a function pattern (its value known in advance)."""
    n = 17 + 4 * version
    known = np.zeros((n, n), bool)
    known[6, :] = known[:, 6] = True
    known[:8, :8] = known[:8, n - 8 :] = known[n - 8 :, :8] = True
    for cx, cy in _alignment_centres(version):
        known[cy - 2 : cy + 3, cx - 2 : cx + 3] = True
    known[n - 8, 8] = True
    return known


_CROSS = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], np.float32)
_DIAG = np.array([[1, 0, 1], [0, 0, 0], [1, 0, 1]], np.float32)


def equalised(values: np.ndarray, version: int, rounds: int = 3) -> np.ndarray:
    """Bits (True = dark) by decision feedback: a linear model of each module's value from its
    own colour and its neighbours' (the blur's spill), fitted on the function patterns, whose
    colours are known; each round removes the spill of the neighbours decided the round before.
    """
    raw = values.astype(np.float32)
    mean = cv2.GaussianBlur(raw, (0, 0), 4.0, borderType=cv2.BORDER_REFLECT)
    dev = np.sqrt(cv2.GaussianBlur((raw - mean) ** 2, (0, 0), 4.0, borderType=cv2.BORDER_REFLECT))
    v = ((raw - mean) / (dev + 1e-3)).astype(np.float32)
    known = _function_mask(version)
    bits = stamp(v < 0, version)
    for _ in range(rounds):
        x = bits.astype(np.float32)
        cross = cv2.filter2D(x, -1, _CROSS, borderType=cv2.BORDER_CONSTANT)
        diag = cv2.filter2D(x, -1, _DIAG, borderType=cv2.BORDER_CONSTANT)
        design = np.stack([np.ones_like(x), x, cross, diag], -1)
        coef, *_ = np.linalg.lstsq(design[known], v[known], rcond=None)
        a, b, c, d = (float(k) for k in coef)
        if b > -1e-3:  # dark modules must read darker than light ones
            break
        own = (v - a - c * cross - d * diag) / b
        bits = stamp(own > 0.5, version)
    return bits


_SUBSAMPLES = np.array([(dx, dy) for dy in (-0.3, 0, 0.3) for dx in (-0.3, 0, 0.3)])
_NEIGHBOURS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
_NEIGHBOURS += [(0, 2), (0, -2), (2, 0), (-2, 0)]


def _local_normalised(plane: np.ndarray) -> np.ndarray:
    mean = cv2.GaussianBlur(plane, (0, 0), 4.0, borderType=cv2.BORDER_REFLECT)
    dev = np.sqrt(cv2.GaussianBlur((plane - mean) ** 2, (0, 0), 4.0, borderType=cv2.BORDER_REFLECT))
    return ((plane - mean) / (dev + 1e-3)).astype(np.float32)


def learned(
    grey: np.ndarray,
    homography: np.ndarray,
    version: int,
    bits: np.ndarray,
    shift: np.ndarray | None = None,
    rounds: int = 3,
    tiles: int = 2,
) -> np.ndarray:
    """Bits re-decided by a decision-directed linear equaliser: each module's score is a linear
    function of nine samples across the module and of its twelve nearest neighbours' current
    bits, with weights fitted by least squares to the current bits (most of them right) in each
    of tiles×tiles regions (blur and lighting change across a tilted code); a few rounds."""
    n = bits.shape[0]
    c = np.arange(n) + 0.5
    centres = np.stack(np.meshgrid(c, c), -1)
    if shift is not None:
        centres = centres + shift
    samples = _sample(grey, homography, centres[:, :, None, :] + _SUBSAMPLES[None, None])
    own = np.stack([_local_normalised(samples[..., k]) for k in range(len(_SUBSAMPLES))], -1)
    edges = np.linspace(0, n, tiles + 1).astype(int)
    for _ in range(rounds):
        x = np.where(bits, 1.0, -1.0).astype(np.float32)
        padded = np.pad(x, 2)
        around = np.stack(
            [padded[2 + dy : 2 + dy + n, 2 + dx : 2 + dx + n] for dy, dx in _NEIGHBOURS], -1
        )
        features = np.concatenate([own, around, np.ones((n, n, 1), np.float32)], -1)
        score = np.zeros((n, n), np.float32)
        for y0, y1 in zip(edges[:-1], edges[1:], strict=True):
            for x0, x1 in zip(edges[:-1], edges[1:], strict=True):
                margin = max(4, (y1 - y0) // 3)  # trained on the region and a margin around it
                ys = slice(max(0, y0 - margin), min(n, y1 + margin))
                xs = slice(max(0, x0 - margin), min(n, x1 + margin))
                a = features[ys, xs].reshape(-1, features.shape[-1]).astype(np.float64)
                # least squares by the normal equations (a small ridge keeps them solvable):
                # a 22×22 solve, where an SVD of the whole region costs a hundred times more
                gram = a.T @ a
                gram += np.eye(len(gram)) * (1e-6 * np.trace(gram) + 1e-9)
                weights = np.linalg.solve(gram, a.T @ x[ys, xs].ravel())
                score[y0:y1, x0:x1] = features[y0:y1, x0:x1] @ weights
        bits = stamp(score > 0, version)
    return bits


def stamp(bits: np.ndarray, version: int) -> np.ndarray:
    """``bits`` with the function patterns (finders, separators, timing, alignment patterns,
    the dark module) set to what they must be: they carry no data, and one wrong module in a
    finder hides the whole symbol from the decoder."""
    out = bits.copy()
    n = out.shape[0]
    out[6, 8 : n - 8] = np.arange(8, n - 8) % 2 == 0
    out[8 : n - 8, 6] = np.arange(8, n - 8) % 2 == 0
    finder = np.zeros((8, 8), bool)
    finder[:7, :7] = FINDER > 0
    out[:8, :8] = finder
    out[:8, n - 8 :] = finder[:, ::-1]
    out[n - 8 :, :8] = finder[::-1, :]
    for cx, cy in _alignment_centres(version):
        out[cy - 2 : cy + 3, cx - 2 : cx + 3] = ALIGNMENT > 0
    out[n - 8, 8] = True
    return out


def render(bits: np.ndarray) -> np.ndarray:
    """A clean synthetic symbol: dark modules black, RENDER_PX px each, QUIET modules margin."""
    img = np.where(bits, 0, 255).astype(np.uint8)
    img = np.pad(img, QUIET, constant_values=255)
    return np.kron(img, np.ones((RENDER_PX, RENDER_PX), np.uint8))


Reader = Callable[[np.ndarray], list[Any]]


def candidates(grey: np.ndarray) -> Iterator[np.ndarray]:
    """Bit matrices to try, most likely first."""
    g = grey.astype(np.float32)
    for quad in symbol_quads(grey):
        side = float(np.mean([np.linalg.norm(quad[i] - quad[(i + 1) % 4]) for i in range(4)]))
        fits = []
        for version in range(1, 41):
            n = 17 + 4 * version
            if MODULE_PX[0] <= side / n <= MODULE_PX[1]:
                h, score = _refine(g, _homography(quad, n), version, symmetric=True)
                fits.append((score, version, h))
        # sizes with alignment patterns away from the corners, by how well those fit; the best
        # of the small sizes (versions 1-6: finders only) competes with them
        big = sorted((f for f in fits if f[1] >= 7), key=lambda f: -f[0])[:SIZES_TRIED]
        small = sorted((f for f in fits if f[1] < 7), key=lambda f: -f[0])[:1]
        tried = sorted(big + small, key=lambda f: -f[0])
        if not tried or tried[0][0] < FIT_MIN:
            continue  # no grid fits: texture, not a code (junk costs only the search)
        for _, version, h in tried:
            n = 17 + 4 * version
            h, _ = _refine(g, h, version, symmetric=True)
            h = _oriented(g, h, version)
            for shift in (None, local_shift(g, h, n)):
                values = soft_modules(g, h, n, shift)
                first = equalised(values, version)
                yield learned(g, h, version, first, shift)
                yield first
                for spill in SPILLS:
                    yield stamp(decide(values, spill), version)


def read(grey: np.ndarray, reader: Reader) -> list[Any]:
    """Whatever ``reader`` reads from the synthetic symbols of this crop; [] on any failure."""
    try:
        if grey.ndim != 2 or grey.dtype != np.uint8 or min(grey.shape) < 24:
            return []
        for bits in candidates(grey):
            found = reader(render(bits))
            if found:
                return found
    except (cv2.error, np.linalg.LinAlgError):  # a degenerate outline or grid: nothing read
        return []
    return []
