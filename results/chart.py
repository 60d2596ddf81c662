"""The cumulative conversion rate per variation by day, as inline SVG (no script, no CDN); it
scales to the width of the page."""

from __future__ import annotations

import html
import math
from typing import Any

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")


def chart_svg(daily: list[dict[str, Any]], colors: dict[str, str]) -> str:
    """A line per variation: cumulative rate (y) by day (x); empty days are skipped."""
    width, height, left, right, top, bottom = 640, 260, 56, 16, 12, 36
    days = sorted({row["day"] for row in daily})
    rates = [row["rate"] for row in daily if row["rate"] is not None]
    if not days or not rates:
        return "<p>no exposures yet</p>"
    top_rate = max(min(float(max(rates)) * 1.1, 1.0), 1e-9)
    span = max(len(days) - 1, 1)

    def x(i: int) -> float:
        return left + (width - left - right) * (i / span if len(days) > 1 else 0.5)

    def y(rate: float) -> float:
        return top + (height - top - bottom) * (1 - rate / top_rate)

    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        'role="img" aria-label="cumulative conversion rate">',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" '
        'stroke="#999"/>',
    ]
    for k in range(5):
        rate = top_rate * k / 4
        parts.append(
            f'<text x="{left - 6}" y="{y(rate) + 4:.1f}" font-size="11" text-anchor="end">'
            f"{rate * 100:.2f}%</text>"
            f'<line x1="{left}" y1="{y(rate):.1f}" x2="{width - right}" y2="{y(rate):.1f}" '
            'stroke="#eee"/>'
        )
    step = max(1, math.ceil(len(days) / 8))
    for i, day in enumerate(days):
        if i % step == 0 or i == len(days) - 1:
            parts.append(
                f'<text x="{x(i):.1f}" y="{height - bottom + 16}" font-size="11" '
                f'text-anchor="middle">{html.escape(day[5:])}</text>'
            )
    index = {day: i for i, day in enumerate(days)}
    legend = []
    for variation, color in colors.items():
        points = [
            f"{x(index[r['day']]):.1f},{y(r['rate']):.1f}"
            for r in daily
            if r["variation"] == variation and r["rate"] is not None
        ]
        if points:
            parts.append(
                f'<polyline fill="none" stroke="{color}" stroke-width="2" '
                f'points="{" ".join(points)}"><title>{html.escape(variation)}</title></polyline>'
            )
        legend.append(f'<span style="color:{color}">&#9632; {html.escape(variation)}</span>')
    parts.append("</svg>")
    return "".join(parts) + f'<div class="legend">{"".join(legend)}</div>'
