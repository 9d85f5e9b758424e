"""Passages per hour per checkpoint as an SVG drawn on the server (no script, no fonts fetched)."""

from __future__ import annotations

from html import escape

PALETTE = ("#1f6feb", "#d29922", "#2da44e", "#cf222e", "#8250df", "#0a7d86", "#bc4c00", "#57606a")


def hourly_svg(
    hourly: dict[str, list[int]], title: str, width: int = 900, height: int = 260
) -> str:
    left, right, top, bottom = 40, 170, 24, 28
    w, h = width - left - right, height - top - bottom
    peak = max([max(v) for v in hourly.values()] + [1])
    step = 1  # four grid steps of 1, 2 or 5 × 10^k that hold the peak
    while 4 * step < peak:
        step = step * 5 // 2 if str(step)[0] == "2" else step * 2
    ymax = 4 * step
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(title)}" class="chart">',
        f'<text x="{left}" y="16" class="chart-title">{escape(title)}</text>',
    ]
    for i in range(5):
        y = top + h - h * i / 4
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + w}" y2="{y:.1f}" class="grid"/>')
        parts.append(
            f'<text x="{left - 4}" y="{y + 4:.1f}" class="axis" text-anchor="end">'
            f"{int(ymax * i / 4)}</text>"
        )
    for hr in range(0, 24, 3):
        x = left + w * hr / 23
        parts.append(
            f'<text x="{x:.1f}" y="{height - 8}" class="axis" text-anchor="middle">{hr:02d}</text>'
        )
    for k, (cp, values) in enumerate(sorted(hourly.items())[:16]):
        colour = PALETTE[k % len(PALETTE)]
        points = " ".join(
            f"{left + w * hr / 23:.1f},{top + h - h * v / ymax:.1f}" for hr, v in enumerate(values)
        )
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>'
        )
        y = top + 14 * k + 6
        parts.append(
            f'<rect x="{left + w + 12}" y="{y - 8}" width="10" height="10" fill="{colour}"/>'
        )
        parts.append(
            f'<text x="{left + w + 26}" y="{y + 1}" class="legend">'
            f"{escape(cp)} ({sum(values)})</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
