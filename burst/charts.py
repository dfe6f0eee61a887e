"""Small charts for the terminal and for HTML reports: capacity over time."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

BLOCKS = " ▁▂▃▄▅▆▇█"


def sample(points: Sequence[tuple[float, float]], end: float, width: int) -> list[float]:
    """A step series (time, value), value holding until the next point, read at
    `width` evenly spaced moments from 0 to `end`."""
    out, i, value = [], 0, 0.0
    for k in range(max(width, 1)):
        at = end * k / max(width - 1, 1)
        while i < len(points) and points[i][0] <= at:
            value = points[i][1]
            i += 1
        out.append(value)
    return out


def sparkline(values: Sequence[float], peak: float | None = None) -> str:
    top = peak or max(values, default=0) or 1
    return "".join(BLOCKS[round(min(v, top) / top * (len(BLOCKS) - 1))] for v in values)


def svg_steps(series: dict[str, Sequence[tuple[float, float]]], end: float, *, marks: dict[str, float],
              width: int = 720, height: int = 240, unit: str = "s") -> str:
    """Step lines of several series on one time axis, with vertical marks (SLA, floor...)."""
    colours = ["#2b7bb9", "#e07b39", "#3a9d5d", "#9467bd"]
    top = max((v for pts in series.values() for _, v in pts), default=1) or 1
    end = max(end, *marks.values(), 1e-3) if marks else max(end, 1e-3)
    pad = 40

    def x(t: float) -> float:
        return pad + (width - 2 * pad) * t / end

    def y(v: float) -> float:
        return height - pad - (height - 2 * pad) * v / top

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
             f'font-size="11">',
             f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#444"/>',
             f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#444"/>',
             f'<text x="{pad}" y="{height - 12}">0</text>',
             f'<text x="{width - pad}" y="{height - 12}" text-anchor="end">{end:.0f} {unit}</text>',
             f'<text x="{pad - 4}" y="{pad}" text-anchor="end">{top:g}</text>']
    for (name, pts), colour in zip(series.items(), colours):
        d, last = [f"M{x(0):.1f},{y(0):.1f}"], 0.0
        for t, v in pts:
            d.append(f"H{x(t):.1f}V{y(v):.1f}")
            last = v
        d.append(f"H{x(end):.1f}")
        parts.append(f'<path d="{" ".join(d)}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts.append(f'<text x="{width - pad}" y="{y(last) - 4:.1f}" text-anchor="end" fill="{colour}">'
                     f'{escape(name)}</text>')
    for name, t in marks.items():
        parts.append(f'<line x1="{x(t):.1f}" y1="{pad}" x2="{x(t):.1f}" y2="{height - pad}" stroke="#b22" '
                     f'stroke-dasharray="4 3"/><text x="{x(t) + 3:.1f}" y="{pad + 10}" fill="#b22">'
                     f'{escape(name)} {t:.0f}{unit}</text>')
    parts.append("</svg>")
    return "".join(parts)
