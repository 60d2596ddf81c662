"""The index pages: the tenants (`/`) and a tenant's experiments (`/results/{tenant}`), rendered
from the documents of `/api/results` and `/api/results/{tenant}`.
"""

from __future__ import annotations

from typing import Any

from results.html import badge, esc, figure, layout, path_of
from results.overview import age_text


def _freshness(fresh: dict[str, Any]) -> str:
    age = fresh.get("age_s")
    when = f"{age_text(age)} ago" if age is not None else age_text(None)
    return f'<span id="freshness">newest hit {esc(when)} {badge(fresh["level"])}</span>'


def tenant_page(doc: dict[str, Any]) -> str:
    tenant = doc["tenant"]
    rows = []
    for i, item in enumerate(doc["experiments"]):
        link = path_of("results", tenant, item["experiment"])
        title = esc(item["name"] or f"Experiment {item['experiment']}")
        srm = item["srm"]
        ratio = badge(srm["badge"], srm["badge"] if srm["badge"] == "n/a" else
                      f"{srm['badge']} (p {srm['p_value']:.2g})")  # fmt: skip
        rows.append(
            f'<tr data-experiment="{esc(item["experiment"])}">'
            f'<td data-label="Experiment"><a href="{link}">{title}</a> '
            f'<span class="note">{esc(item["experiment"])}</span></td>'
            f'<td data-label="Status">{badge(item["status"])}</td>'
            f'<td data-label="Days running">'
            f"{figure(item['days_running'], '.1f', ('experiments', i, 'days_running'))}</td>"
            f'<td data-label="Exposed visitors">'
            f"{figure(item['visitors'], ',d', ('experiments', i, 'visitors'))}</td>"
            f'<td data-label="Sample ratio">{ratio}</td>'
            f'<td data-label="Results"><a href="{link}">results &rarr;</a></td></tr>'
        )
    table = (
        '<table class="stack" id="experiments"><thead><tr><th>Experiment</th><th>Status</th>'
        "<th>Days running</th><th>Exposed visitors</th><th>Sample ratio</th><th></th></tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
        if rows
        else "<p>No experiments yet: register one with <code>hitstream experiments add</code> or "
        "send impressions.</p>"
    )
    body = (
        '<div class="crumbs"><a href="/">Results</a></div>'
        f"<h1>Experiments of tenant {esc(tenant)}</h1>"
        f'<div class="meta">{_freshness(doc["freshness"])}</div>'
        f'<section class="card">{table}<p class="note">Exposed visitors: bots and visitors in '
        "several variations excluded. Running: an exposure in the last day. Sample ratio: "
        "chi-square of the exposed visitors against the planned split (mismatch below p = "
        "0.001).</p></section>"
        f'<p class="note"><a href="{path_of("api", "results", tenant)}">JSON</a></p>'
    )
    return layout(f"Experiments of tenant {tenant}", body)


def tenants_page(doc: dict[str, Any]) -> str:
    items = "".join(
        f'<li><a href="{path_of("results", t["tenant"])}">tenant {esc(t["tenant"])}</a> '
        f'<span class="note">{t["experiments"]:,} experiments with exposures</span></li>'
        for t in doc["tenants"]
    )
    body = (
        "<h1>Results</h1>"
        + (f'<ul id="tenants">{items}</ul>' if items else "<p>No tenant has data yet.</p>")
        + '<p class="note"><a href="/api/results">JSON</a></p>'
    )
    return layout("Results", body)
