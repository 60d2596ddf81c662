"""What the results pages share: the layout and its CSS (phone first: tables become one card per
row below 720 px), escaping, and figures tagged with where they come from in the JSON document
(`data-path`, `data-scale`), so a test can hold every shown number to the API's.
"""

from __future__ import annotations

import html
import math
from typing import Any
from urllib.parse import quote

import orjson

CSS = """
:root { --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --muted: #57606a; --line: #d0d7de;
        --grey: #8c959f; --bg: #f6f8fa; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1f2328;
       background: #fff; }
main { max-width: 1280px; margin: 0 auto; padding: 12px 16px 40px; }
h1 { font-size: 1.45em; margin: .2em 0; overflow-wrap: anywhere; }
h2 { font-size: 1.15em; margin: 0 0 .5em; }
a { color: #0969da; }
.crumbs { font-size: .9em; color: var(--muted); }
.meta { color: var(--muted); display: flex; flex-wrap: wrap; gap: 4px 14px; align-items: center; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: .85em;
         border: 1px solid currentColor; white-space: nowrap; }
.b-ok, .b-running, .b-better { color: var(--ok); }
.b-mismatch, .b-stale, .b-worse, .b-removed { color: var(--bad); }
.b-behind, .b-idle, .b-waiting { color: var(--warn); }
.b-na, .b-empty, .b-inconclusive { color: var(--muted); }
.banner { list-style: none; padding: 0; margin: 12px 0; }
.banner li { padding: 8px 12px; margin: 4px 0; border-left: 4px solid var(--grey);
             background: var(--bg); border-radius: 4px; }
.banner .error { border-color: var(--bad); background: #ffebe9; font-weight: 600; }
.banner .warn { border-color: var(--warn); background: #fff8c5; }
.banner .ok { border-color: var(--ok); background: #dafbe1; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 14px; margin: 16px 0; }
form.controls { display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: end;
                background: var(--bg); padding: 10px 12px; border-radius: 8px; }
form.controls label { display: flex; flex-direction: column; font-size: .85em;
                      color: var(--muted); }
form.controls label.check { flex-direction: row; gap: 4px; align-items: center; }
select, button { font: inherit; padding: 4px 6px; max-width: 100%; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { padding: 5px 8px; border-bottom: 1px solid var(--line); text-align: right;
         vertical-align: top; }
th { font-size: .85em; color: var(--muted); font-weight: 600; }
th:first-child, td:first-child { text-align: left; }
.wide { overflow-x: auto; }
table.figures { font-size: .92em; }
table.figures th, table.figures td { padding: 4px 6px; }
td .n { white-space: nowrap; }
tr.group th { text-align: center; border-bottom: 2px solid var(--line); }
.lifts { display: grid; gap: 6px 10px; align-items: center; margin: 6px 0 12px;
         grid-template-columns: minmax(5em, max-content) 1fr minmax(9em, max-content); }
.track { position: relative; height: 22px; background: var(--bg); border-radius: 4px; }
.zero { position: absolute; top: -3px; bottom: -3px; width: 2px; background: #1f2328; }
.ci { position: absolute; top: 5px; height: 12px; border-radius: 6px; }
.ci.better { background: var(--ok); } .ci.worse { background: var(--bad); }
.ci.inconclusive { background: var(--grey); }
.point { position: absolute; top: 1px; width: 4px; height: 20px; margin-left: -2px;
         background: #1f2328; border-radius: 2px; }
.axis { display: flex; justify-content: space-between; font-size: .8em; color: var(--muted); }
.legend span { margin-right: 1.2em; white-space: nowrap; }
.note { color: var(--muted); font-size: .9em; }
details { margin: 8px 0; } summary { cursor: pointer; color: #0969da; }
svg.chart { width: 100%; max-width: 720px; height: auto; border: 1px solid var(--line); }
@media (max-width: 720px) {
  main { padding: 8px 10px 32px; }
  table.stack thead { display: none; }
  table.stack tr { display: block; border: 1px solid var(--line); border-radius: 6px;
                   margin: 8px 0; padding: 4px 8px; }
  table.stack td { display: flex; justify-content: space-between; gap: 12px; border: 0;
                   padding: 3px 0; text-align: right; }
  table.stack td::before { content: attr(data-label); color: var(--muted); text-align: left; }
  table.stack td:first-child { font-weight: 600; }
  table.stack td:empty { display: none; }
  .lifts { grid-template-columns: 1fr; gap: 2px; }
  .lifts .label { margin-top: 8px; }
}
"""


def esc(value: object) -> str:
    return html.escape(str(value))


def path_of(*parts: str) -> str:
    """An URL path of escaped segments: path_of("results", tenant) -> /results/<tenant>."""
    return "/" + "/".join(quote(p, safe="") for p in parts)


def fmt(value: float | None, spec: str, scale: float = 1.0) -> str:
    """`value * scale` formatted; "-" when missing or NaN, "+inf"/"-inf" when infinite."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if math.isinf(value):
        return "+inf" if value > 0 else "-inf"
    return format(value if scale == 1 else value * scale, spec)


def figure(value: Any, spec: str, path: tuple[str | int, ...], *, scale: float = 1.0,
           unit: str = "", prefix: str = "") -> str:  # fmt: skip
    """A number as shown (`prefix` + formatted + `unit`), tagged with its place in the JSON
    document (`data-path`: a JSON array of keys and indexes) and the factor it was shown at."""
    shown = fmt(value, spec, scale)
    if shown not in ("-", "+inf", "-inf"):
        shown = prefix + shown + unit
    where = esc(orjson.dumps(list(path)).decode())
    return f'<span class="n" data-path="{where}" data-scale="{scale:g}">{esc(shown)}</span>'


def badge(kind: str, text: str | None = None) -> str:
    css = kind.replace("/", "").replace(" ", "-")
    return f'<span class="badge b-{esc(css)}">{esc(text or kind)}</span>'


def layout(title: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<style>{CSS}</style></head>
<body><main>
{body}
</main></body></html>
"""
