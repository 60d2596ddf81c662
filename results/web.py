"""Experiment results over HTTP: `python -m results.web --port 8090` (ClickHouse from HITS_*).

GET /api/results/{tenant}/{experiment}?goal=G&slice=key=value&include_bots=1&include_multi=1
        &alpha=0.05&correction=holm|bh|none&prior_sd=0.3&target_lift=0.05&power=0.8
        &cap_cents=50000&cap_percentile=0.99&by=device_type&top=5
    the JSON document of `hitstream results --json` (defaults: the HITS_RESULTS_* settings)
GET /results/{tenant}/{experiment}?...   the same as an HTML page: the table and, per goal,
    the cumulative conversion rate per variation by day (inline SVG, no script, no CDN)
"""

from __future__ import annotations

import argparse
import asyncio
import html
import math
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from aiohttp import web
from clickhouse_connect.driver.client import Client

from deploy.clickhouse_client import connect
from results.analysis import Options
from results.query import Filters, read, read_slices
from results.report import analyse, to_json
from results.table import (
    COLUMNS,
    cells,
    footer,
    goal_title,
    headers,
    notes,
    slice_lines,
    summary,
)
from schemas.settings import Settings, load_settings

SETTINGS = web.AppKey("settings", Settings)
CLIENT = web.AppKey("client", Client)
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")
_TRUE = {"1", "true", "yes", "on"}


def _float(query: Any, name: str) -> float | None:
    return float(query[name]) if name in query else None


def filters_from(query: Any, settings: Settings) -> tuple[Filters, Options]:
    """Filters and options from the query string; ValueError when one is malformed."""
    goals = tuple(g for value in query.getall("goal", []) for g in value.split(",") if g)
    options = Options.from_settings(
        settings, alpha=_float(query, "alpha"), correction=query.get("correction"),
        prior_sd=_float(query, "prior_sd"), target_lift=_float(query, "target_lift"),
        power=_float(query, "power"), by=query.get("by"),
        top=int(query["top"]) if "top" in query else None,
    )  # fmt: skip
    options.check()
    filters = Filters.parse_slices(
        query.getall("slice", []),
        goals=goals,
        include_bots=query.get("include_bots", "").lower() in _TRUE,
        include_multi=query.get("include_multi", "").lower() in _TRUE,
        cap_cents=int(query.get("cap_cents", 0)),
        cap_percentile=float(query.get("cap_percentile", 0)),
    )
    return filters, options


async def _document(request: web.Request) -> dict[str, Any]:
    try:
        filters, options = filters_from(request.query, request.app[SETTINGS])
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    tenant, experiment = request.match_info["tenant"], request.match_info["experiment"]
    client = request.app[CLIENT]
    aggregates = await asyncio.to_thread(read, client, tenant, experiment, filters)
    by = None
    if options.by:
        by = await asyncio.to_thread(read_slices, client, tenant, experiment, filters, options.by)
    return analyse(aggregates, filters, options, by)


async def api(request: web.Request) -> web.Response:
    document = await _document(request)
    return web.Response(body=to_json(document), content_type="application/json")


async def page(request: web.Request) -> web.Response:
    document = await _document(request)
    return web.Response(text=render_page(document), content_type="text/html")


def render_page(doc: dict[str, Any]) -> str:
    title = f"Experiment {doc['experiment']} of tenant {doc['tenant']}"
    colors = {v["variation"]: COLORS[i % len(COLORS)] for i, v in enumerate(doc["variations"])}
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers(doc["alpha"]) if h)
    goals = []
    for goal in doc["goals"]:
        rows = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for i, c in enumerate(
                cells(row, doc["control"])) if COLUMNS[i][0]) + "</tr>"
            for row in goal["variations"]
        )  # fmt: skip
        goals.append(
            f"<h2>G{html.escape(goal_title(goal)[1:])}</h2>"
            f'<div class="wide"><table><tr>{head}</tr>{rows}</table></div>'
            + _paragraphs(notes(goal, doc["alpha"]))
            + "<h3>Cumulative conversion rate by day (UTC)</h3>"
            + chart_svg(goal["daily"], colors)
        )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font: 14px system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; font-variant-numeric: tabular-nums; }}
th, td {{ padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: right; }}
td {{ white-space: nowrap; }}
.wide {{ overflow-x: auto; }}
th:first-child, td:first-child {{ text-align: left; }}
svg {{ background: #fff; border: 1px solid #ddd; }}
.legend span {{ margin-right: 1.5em; }}
.note {{ color: #555; }}
</style></head>
<body><h1>{html.escape(title)}</h1>
{_paragraphs(summary(doc)[1:])}
{"".join(goals)}
{_paragraphs(slice_lines(doc))}
<div class="note">{_paragraphs(footer(doc))}</div>
<p><a href="/api/results/{_path(doc)}">JSON</a></p>
</body></html>
"""


def _paragraphs(lines: list[str]) -> str:
    return "".join(f"<p>{html.escape(line)}</p>" for line in lines)


def _path(doc: dict[str, Any]) -> str:
    return f"{quote(doc['tenant'], safe='')}/{quote(doc['experiment'], safe='')}"


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
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="cumulative conversion rate">',
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


def make_app(settings: Settings) -> web.Application:
    app = web.Application()
    app[SETTINGS] = settings

    async def clickhouse(app: web.Application) -> AsyncIterator[None]:
        app[CLIENT] = await asyncio.to_thread(connect, app[SETTINGS])
        yield
        app[CLIENT].close()

    app.cleanup_ctx.append(clickhouse)
    app.router.add_get("/api/results/{tenant}/{experiment}", api)
    app.router.add_get("/results/{tenant}/{experiment}", page)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m results.web", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args(argv)
    web.run_app(make_app(load_settings()), host=args.host, port=args.port, access_log=None)


if __name__ == "__main__":
    main()
