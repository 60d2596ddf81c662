"""The experiment page, rendered from the JSON document of `/api/results/...` (and the index row
of the experiment): the health banner, a form to slice and re-analyse, and per goal the lift of
each variation as a bar (its interval, colored by the verdict) above the frequentist,
sequential (always-valid) and Bayesian figures.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import quote

from results.chart import COLORS, chart_svg
from results.corrections import METHODS
from results.html import badge, esc, figure, fmt, layout, path_of
from results.overview import age_text, banner
from results.table import CORRECTIONS, footer, goal_title, notes, snapshot_age

AXIS_LIMIT = (-1.0, 3.0)  # relative lift axis at most -100% .. +300%


def verdict(cell: dict[str, Any], alpha: float, higher_is_better: bool = True) -> str:
    """better / worse (adjusted p below alpha, in the good or bad direction), inconclusive, or
    none (no test: too little data)."""
    p = cell.get("p_adjusted", cell["p_value"])
    if p is None or math.isnan(p):
        return "none"
    if p >= alpha:
        return "inconclusive"
    return "better" if (cell["difference"] > 0) == higher_is_better else "worse"


def axis(rows: list[dict[str, Any]]) -> tuple[float, float]:
    """The lift axis of a goal: every finite interval end and 0, padded, within AXIS_LIMIT."""
    ends = [0.0]
    for row in rows:
        ci = row["rate_vs_control"]["relative_ci"]
        ends += [x for x in (ci["low"], ci["high"]) if x is not None and math.isfinite(x)]
    low, high = max(min(ends), AXIS_LIMIT[0]), min(max(ends), AXIS_LIMIT[1])
    pad = (high - low) * 0.08 or 0.05
    return max(low - pad, AXIS_LIMIT[0]), min(high + pad, AXIS_LIMIT[1])


def _at(x: float, lo: float, hi: float) -> float:
    x = lo if math.isnan(x) else min(max(x, lo), hi)
    return (x - lo) / (hi - lo) * 100


def lift_bars(goal: dict[str, Any], gi: int, alpha: float) -> str:
    up = (goal.get("guardrail") or {}).get("higher_is_better", True)
    rows = [(vi, r) for vi, r in enumerate(goal["variations"]) if "rate_vs_control" in r]
    if not rows:
        return ""
    lo, hi = axis([r for _, r in rows])
    out = []
    for vi, row in rows:
        cmp = row["rate_vs_control"]
        kind = verdict(cmp, alpha, up)
        ci, base = cmp["relative_ci"], ("goals", gi, "variations", vi, "rate_vs_control")
        left, right = _at(ci["low"], lo, hi), _at(ci["high"], lo, hi)
        mark = _at(cmp["relative"], lo, hi)
        point = (
            ""
            if math.isnan(cmp["relative"])
            else (f'<span class="point" style="left:{mark:.2f}%"></span>')
        )
        out.append(
            f'<div class="label">{esc(row["variation"])} {badge(kind)}</div>'
            f'<div class="track" data-verdict="{kind}" title="{esc(kind)}">'
            f'<span class="zero" style="left:{_at(0.0, lo, hi):.2f}%"></span>'
            f'<span class="ci {kind}" style="left:{left:.2f}%;width:{max(right - left, 0.6):.2f}%">'
            f"</span>{point}</div>"
            f"<div>{figure(cmp['relative'], '+.1f', (*base, 'relative'), scale=100, unit='%')} "
            f"[{figure(ci['low'], '+.1f', (*base, 'relative_ci', 'low'), scale=100, unit='%')}, "
            f"{figure(ci['high'], '+.1f', (*base, 'relative_ci', 'high'), scale=100, unit='%')}]"
            "</div>"
        )
    ticks = (
        f"<span>{fmt(lo, '+.0f', 100)}%</span><span>0</span><span>{fmt(hi, '+.0f', 100)}%</span>"
    )
    return (
        f'<div class="lifts">{"".join(out)}<div></div><div class="axis">{ticks}</div><div></div>'
        "</div>"
    )


# (group, label, keys in the row, format, scale, unit, kind): kind "ci" shows an interval
# {low, high} as [low, high], "$" a dollar amount.
_F, _B = ("rate_vs_control",), ("rate_bayesian", "relative")
FIGURES: list[tuple[str, str, tuple[str, ...], str, float, str, str]] = [
    ("", "Visitors", ("visitors",), ",d", 1, "", ""),
    ("", "Converters", ("converters",), ",d", 1, "", ""),
    ("", "Rate", ("rate",), ".2f", 100, "%", ""),
    ("Frequentist", "Lift", (*_F, "relative"), "+.1f", 100, "%", ""),
    ("Frequentist", "CI", (*_F, "relative_ci"), "+.1f", 100, "%", "ci"),
    ("Frequentist", "p", (*_F, "p_value"), ".4f", 1, "", ""),
    ("Frequentist", "adj. p", (*_F, "p_adjusted"), ".4f", 1, "", ""),
    ("Sequential", "AV p", (*_F, "always_valid_p"), ".4f", 1, "", ""),
    ("Sequential", "AV CI (abs.)", (*_F, "always_valid_ci"), "+.2f", 100, "pp", "ci"),
    ("Bayesian", "P(beat)", (*_B, "chance_to_beat"), ".1f", 100, "%", ""),
    ("Bayesian", "Credible", (*_B, "credible_interval"), "+.1f", 100, "%", "ci"),
    ("Bayesian", "Risk", ("rate_bayesian", "absolute", "risk_treatment"), ".3f", 100, "pp", ""),
    ("Revenue", "Per visitor", ("revenue_per_visitor_cents",), ",.2f", 0.01, "", "$"),
    ("Revenue", "Welch p", ("revenue_vs_control", "p_value"), ".4f", 1, "", ""),
    ("Revenue", "adj. p", ("revenue_vs_control", "p_adjusted"), ".4f", 1, "", ""),
]  # fmt: skip


def _cell(row: dict[str, Any], where: tuple[str | int, ...], keys: tuple[str, ...], spec: str,
          scale: float, unit: str, kind: str) -> str:  # fmt: skip
    """One figure (or interval) of a variation; empty where the row has none (the control)."""
    value = _get(row, keys)
    if value is None and len(keys) > 1:
        return ""
    path = (*where, *keys)
    if kind == "ci":
        low = figure(value["low"], spec, (*path, "low"), scale=scale, unit=unit)
        high = figure(value["high"], spec, (*path, "high"), scale=scale, unit=unit)
        return f"<span>[{low}, {high}]</span>"
    return figure(value, spec, path, scale=scale, unit=unit, prefix=kind)


def _get(row: dict[str, Any], keys: tuple[str, ...]) -> Any:
    value: Any = row
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def figures_table(goal: dict[str, Any], gi: int, control: str) -> str:
    groups: list[tuple[str, int]] = []
    for group, *_ in FIGURES:
        if groups and groups[-1][0] == group:
            groups[-1] = (group, groups[-1][1] + 1)
        else:
            groups.append((group, 1))
    group_row = "<th></th>" + "".join(f'<th colspan="{n}">{esc(g)}</th>' for g, n in groups)
    head = "<th>Variation</th>" + "".join(f"<th>{esc(label)}</th>" for _, label, *_ in FIGURES)
    body = []
    for vi, row in enumerate(goal["variations"]):
        name = row["variation"] + (" (control)" if row["variation"] == control else "")
        cells = [f'<td data-label="Variation">{esc(name)}</td>']
        for group, label, keys, spec, scale, unit, kind in FIGURES:
            shown = _cell(row, ("goals", gi, "variations", vi), keys, spec, scale, unit, kind)
            title = f"{group} {label}".strip()
            cells.append(f'<td data-label="{esc(title)}">{shown}</td>')
        body.append(f"<tr>{''.join(cells)}</tr>")
    return (
        '<div class="wide"><table class="stack figures"><thead>'
        f'<tr class="group">{group_row}</tr><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def goal_section(doc: dict[str, Any], goal: dict[str, Any], gi: int) -> str:
    colors = {v["variation"]: COLORS[i % len(COLORS)] for i, v in enumerate(doc["variations"])}
    more = "".join(f"<li>{esc(line)}</li>" for line in notes(goal, doc["alpha"]))
    pct = round((1 - doc["alpha"]) * 100)
    return (
        f'<section class="card goal" id="goal-{esc(goal["goal"])}">'
        f"<h2>{esc(goal_title(goal).capitalize())}</h2>"
        f'<p class="note">Conversion rate lift versus the control: bar = {pct}% confidence '
        "interval, mark = estimate, color = verdict at the adjusted p-value.</p>"
        + lift_bars(goal, gi, doc["alpha"])
        + figures_table(goal, gi, doc["control"])
        + (f"<details><summary>CUPED, power, revenue per order</summary><ul class=\"note\">"
           f"{more}</ul></details>" if more else "")
        + "<details open><summary>Cumulative conversion rate by day (UTC)</summary>"
        + chart_svg(goal["daily"], colors)
        + "</details></section>"
    )  # fmt: skip


def _option(value: str, label: str, chosen: str) -> str:
    selected = " selected" if value == chosen else ""
    return f'<option value="{esc(value)}"{selected}>{esc(label)}</option>'


def controls(doc: dict[str, Any], dimensions: dict[str, list[str]]) -> str:
    """A GET form: the slice, a breakdown, the correction, bots and multi-variation visitors."""
    pairs = [f"{k}={v}" for k, v in doc["filters"]["slice"].items()]
    # The form picks one slice; several (from the address) show as one option it cannot resend.
    current = pairs[0] if len(pairs) == 1 else " & ".join(pairs)
    slices = [_option("", "all visitors", current)]
    for key, values in dimensions.items():
        options = "".join(_option(f"{key}={v}", f"{key} = {v}", current) for v in values)
        slices.append(f'<optgroup label="{esc(key)}">{options}</optgroup>')
    if len(pairs) > 1:
        slices.append(f'<option value="" selected disabled>{esc(current)}</option>')
    elif current and not any(current == f"{k}={v}" for k, vs in dimensions.items() for v in vs):
        slices.append(_option(current, current, current))
    by = doc["options"]["by"]
    keys = ["device_type", "browser", *(k for k in dimensions if k != "device_type")]
    breakdown = [_option("", "none", by)] + [_option(k, k, by) for k in keys]
    correction = "".join(
        _option(m, CORRECTIONS.get(m, "none"), doc["options"]["correction"]) for m in METHODS
    )
    checks = "".join(
        f'<label class="check"><input type="checkbox" name="{name}" value="1"'
        f'{" checked" if doc["filters"][name] else ""}> {label}</label>'
        for name, label in (("include_bots", "include bots"),
                            ("include_multi", "include multi-variation visitors"))
    )  # fmt: skip
    hidden = "".join(
        f'<input type="hidden" name="goal" value="{esc(g)}">' for g in doc["filters"]["goals"]
    )
    return (
        '<form class="controls" method="get" id="controls">'
        f'<label>Slice<select name="slice">{"".join(slices)}</select></label>'
        f'<label>Break down by<select name="by">{"".join(breakdown)}</select></label>'
        f'<label>Correction<select name="correction">{correction}</select></label>'
        f'{checks}{hidden}<button type="submit">Apply</button></form>'
    )


def slices_section(doc: dict[str, Any]) -> str:
    by = doc.get("slices")
    if not by:
        return ""
    goals = list(by["values"][0]["goals"]) if by["values"] else []
    head = (
        "<th>"
        + esc(by["by"])
        + "</th><th>Visitors</th><th>Sample ratio</th>"
        + "".join(f"<th>Goal {esc(g)}: lift (adj. p)</th>" for g in goals)
    )
    rows = []
    for si, s in enumerate(by["values"]):
        srm = s["srm"]
        ratio = badge("mismatch" if srm["mismatch"] else "ok", f"p {fmt(srm['p_value'], '.3g')}")
        link = esc(s["value"])
        if by["by"] != "browser" and not s["value"].startswith("other"):
            target = "?slice=" + quote(f"{by['by']}={s['value']}", safe="")
            link = f'<a href="{esc(target)}">{esc(s["value"])}</a>'
        cells = [f'<td data-label="{esc(by["by"])}">{link}</td>',
                 f'<td data-label="Visitors">{sum(s["visitors"].values()):,}</td>',
                 f'<td data-label="Sample ratio">{ratio}</td>']  # fmt: skip
        for goal in goals:
            parts = []
            for vi, r in enumerate(s["goals"][goal]):
                if "relative" not in r:
                    continue
                base = ("slices", "values", si, "goals", goal, vi)
                parts.append(
                    f"{esc(r['variation'])} "
                    + figure(r["relative"], "+.1f", (*base, "relative"), scale=100, unit="%")
                    + " (" + figure(r.get("p_adjusted"), ".3f", (*base, "p_adjusted")) + ")"
                )  # fmt: skip
            cells.append(f'<td data-label="Goal {esc(goal)}">{"<br>".join(parts)}</td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return (
        f'<section class="card" id="slices"><h2>By {esc(by["by"])}</h2><p class="note">Top '
        f"{by['top']} values by visitors; adjusted p across slices x variations x goals.</p>"
        f'<table class="stack"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody>'
        "</table></section>"
    )


def source_link(doc: dict[str, Any], tenant: str, experiment: str, query: str) -> str:
    """The figures' source; from the snapshot, with a link to the same page with live figures."""
    source = doc.get("source") or {}
    if source.get("name") != "snapshot":
        return '<span id="source">live figures</span>'
    when = snapshot_age(source["age_s"])
    live = path_of("results", tenant, experiment) + "?" + "&".join(filter(None, [query, "live=1"]))
    return (
        f'<span id="source" title="{esc(source["taken_at"])}">snapshot of {esc(when)} ago '
        f'<a href="{esc(live)}">live</a></span>'
    )


def render(
    doc: dict[str, Any], row: dict[str, Any] | None, dimensions: dict[str, list[str]], query: str
) -> str:
    """The page; `row` is the experiment's index row (name, status, days), None when unknown."""
    tenant, experiment = doc["tenant"], doc["experiment"]
    name = (row or {}).get("name") or f"Experiment {experiment}"
    fresh = doc.get("freshness") or {}
    meta = [
        badge(row["status"]) if row else "",
        f"id {esc(experiment)}",
        f"{row['days_running']:.1f} days" if row and row["days_running"] else "",
        f"control {esc(doc['control'])}",
        f"{sum(v['visitors'] for v in doc['variations']):,} visitors",
        f'<span id="freshness">newest hit {esc(age_text(fresh.get("age_s")))}'
        f"{' ago' if fresh.get('age_s') is not None else ''} "
        f"{badge(fresh.get('level', 'empty'))}</span>",
        source_link(doc, tenant, experiment, query),
    ]
    alerts = "".join(f'<li class="{level}">{esc(text)}</li>' for level, text in banner(doc))
    goals = "".join(goal_section(doc, goal, gi) for gi, goal in enumerate(doc["goals"]))
    methods = "".join(f"<p>{esc(line)}</p>" for line in footer(doc))
    api = path_of("api", "results", tenant, experiment) + (f"?{query}" if query else "")
    body = (
        f'<div class="crumbs"><a href="/">Results</a> / '
        f'<a href="{path_of("results", tenant)}">tenant {esc(tenant)}</a></div>'
        f"<h1>{esc(name)}</h1>"
        f'<div class="meta">{"".join(f"<span>{m}</span>" for m in meta if m)}</div>'
        f'<ul class="banner" id="health">{alerts}</ul>'
        + controls(doc, dimensions)
        + (goals or '<p class="card">No goals converted yet.</p>')
        + slices_section(doc)
        + f'<footer class="note">{methods}<p><a href="{esc(api)}">JSON</a></p></footer>'
    )  # fmt: skip
    return layout(f"{name} · tenant {tenant}", body)
