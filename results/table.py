"""The results document as text: the table of `hitstream results` and of the results page."""

from __future__ import annotations

import math
from typing import Any

CORRECTIONS = {"holm": "Holm-Bonferroni", "bh": "Benjamini-Hochberg"}


def prior_text(sd: float) -> str:
    return f"prior N(0, {sd:g}^2) on the lift" if sd > 0 else "flat prior"


def _num(value: float | None, fmt: str) -> str:
    if value is None or math.isnan(value):
        return "-"
    return ("+inf" if value > 0 else "-inf") if math.isinf(value) else format(value, fmt)


def _interval(ci: dict[str, float] | None, scale: float, fmt: str, unit: str = "") -> str:
    if not ci:
        return ""
    return f"[{_num(ci['low'] * scale, fmt)}{unit}, {_num(ci['high'] * scale, fmt)}{unit}]"


# (title, width): negative widths are left-aligned
COLUMNS = [("variation", -14), ("visitors", 10), ("converters", 11), ("rate", 8), ("", 2),
           ("abs lift", -30), ("rel lift", -28), ("p", 7), ("adj p", 7), ("AV p", 7),
           ("P(beat)", 8), ("rev/visitor", 12), ("Welch p", 9)]  # fmt: skip


def headers(alpha: float) -> list[str]:
    pct = f"({round((1 - alpha) * 100)}% CI)"
    return [f"{t} {pct}" if t.endswith("lift") else t for t, _ in COLUMNS]


def cells(row: dict[str, Any], control: str) -> list[str]:
    """One variation's row of the table, formatted (the text table's and the page's)."""
    name = row["variation"] + ("*" if row["variation"] == control else "")
    rate = _num(row["rate"] and row["rate"] * 100, ".2f") + "%"
    rpv = "$" + _num(
        row["revenue_per_visitor_cents"] and row["revenue_per_visitor_cents"] / 100, ",.2f"
    )
    head = [name, f"{row['visitors']:,}", f"{row['converters']:,}", rate, ""]
    cmp, rev = row.get("rate_vs_control"), row.get("revenue_vs_control")
    if cmp is None or rev is None:
        return [*head, "-", "-", "-", "-", "-", "-", rpv, "-"]
    absolute = f"{_num(cmp['difference'] * 100, '+.2f')}pp " + _interval(
        cmp["difference_ci"], 100, "+.2f"
    )
    relative = f"{_num(cmp['relative'] * 100, '+.1f')}% " + _interval(
        cmp["relative_ci"], 100, "+.0f", "%"
    )
    p, adjusted, av = (_num(cmp["p_value"], ".4f"), _num(cmp.get("p_adjusted"), ".4f"),
                       _num(cmp["always_valid_p"], ".3f"))  # fmt: skip
    bayes = row.get("rate_bayesian")
    beat = _num(bayes and bayes["relative"]["chance_to_beat"] * 100, ".1f") + "%"
    return [*head, absolute, relative, p, adjusted, av, beat, rpv, _num(rev["p_value"], ".4f")]


def _line(values: list[str]) -> str:
    return "".join(
        f"{v:<{-w}}" if w < 0 else f"{v:>{w}}" for v, (_, w) in zip(values, COLUMNS, strict=True)
    ).rstrip()


def summary(doc: dict[str, Any]) -> list[str]:
    head = f"experiment {doc['experiment']} of tenant {doc['tenant']}, control {doc['control']}"
    lines = [head + ("" if doc["registered"] else " (not in the registry: control guessed)")]
    excluded = doc["excluded"]
    lines.append(f"excluded: {excluded['bots']} bot visitors, {excluded['multi']} multi-variation")
    capping = doc.get("capping") or {}
    if capping.get("percentile"):
        caps = ", ".join(f"goal {g} ${c / 100:,.2f}" for g, c in capping["caps"].items())
        lines.append(f"revenue per visitor capped at the {capping['percentile']:.3g} quantile of "
                     f"converters: {caps or 'no converters'}")  # fmt: skip
    elif capping.get("cap_cents"):
        lines.append(f"revenue per visitor capped at ${capping['cap_cents'] / 100:,.2f}")
    if doc["filters"]["slice"]:
        lines.append("slice: " + ", ".join(f"{k}={v}" for k, v in doc["filters"]["slice"].items()))
    return lines


def goal_title(goal: dict[str, Any]) -> str:
    guard = goal.get("guardrail")
    if guard is None:
        return f"goal {goal['goal']}"
    better = "higher" if guard["higher_is_better"] else "lower"
    return f"goal {goal['goal']} (guardrail, {better} is better)"


def notes(goal: dict[str, Any], alpha: float) -> list[str]:
    """The lines under a goal's table: guardrail alarms, then CUPED, Bayesian and power figures
    per variation."""
    lines = [
        f"GUARDRAIL DEGRADED by {row['variation']}: {', '.join(row['guardrail_degraded'])} "
        f"significantly worse (p < {alpha:g})"
        for row in goal["variations"]
        if row.get("guardrail_degraded")
    ]
    for row in goal["variations"]:
        lines += _cuped_note(row) + _bayes_note(row, alpha) + _power_note(row) + _order_note(row)
    return lines


def _cuped_note(row: dict[str, Any]) -> list[str]:
    cuped = row.get("rate_cuped")
    if not cuped:
        return []
    return [
        f"CUPED {row['variation']}: variance "
        f"-{_num(cuped['variance_reduction'] * 100, '.0f')}%, "
        f"abs lift {_num(cuped['difference'] * 100, '+.2f')}pp "
        f"{_interval(cuped['difference_ci'], 100, '+.2f')}, "
        f"p {_num(cuped['p_value'], '.4f')}"
    ]


def _bayes_note(row: dict[str, Any], alpha: float) -> list[str]:
    bayes = row.get("rate_bayesian")
    if not bayes:
        return []
    rel, absolute = bayes["relative"], bayes["absolute"]
    pct = round((1 - alpha) * 100)
    return [
        f"Bayes {row['variation']}: chance to beat control "
        f"{_num(rel['chance_to_beat'] * 100, '.1f')}%, rel lift {_num(rel['mean'] * 100, '+.1f')}% "
        f"{_interval(rel['credible_interval'], 100, '+.1f', '%')} ({pct}% credible), "
        f"risk {_num(absolute['risk_treatment'] * 100, '.2g')}pp "
        f"(control {_num(absolute['risk_control'] * 100, '.2g')}pp)"
    ]


def _power_note(row: dict[str, Any]) -> list[str]:
    power = row.get("rate_power")
    if not power:
        return []
    target = _num(power["target_relative"] * 100, "+.0f")
    needed, more = power["days_needed"], power["days_more"]
    when = (
        f"{target}% needs ~{_num(needed, ',.0f')} days at today's traffic "
        f"({_num(more, ',.0f')} more)"
        if more
        else f"{target}% is detectable now"
    )
    return [
        f"power {row['variation']}: MDE {_num(power['mde'] * 100, '.2f')}pp "
        f"({_num(power['mde_relative'] * 100, '.0f')}%) at {power['power']:.0%} power "
        f"after {_num(power['days_so_far'], '.0f')} days; {when}"
    ]


def _order_note(row: dict[str, Any]) -> list[str]:
    order = row.get("per_order_vs_control")
    if not order:
        return []
    return [
        f"revenue per order {row['variation']}: ${_num(order['treatment'] / 100, ',.2f')} vs "
        f"${_num(order['control'] / 100, ',.2f')} ({_num(order['relative'] * 100, '+.1f')}%, "
        f"delta method), p {_num(order['p_value'], '.4f')}, adj p "
        f"{_num(order.get('p_adjusted'), '.4f')}"
        + (
            f"; CUPED: variance -{_num(cuped['variance_reduction'] * 100, '.0f')}%, "
            f"diff ${_num(cuped['difference'] / 100, '+,.2f')}, p {_num(cuped['p_value'], '.4f')}"
            if (cuped := row.get("per_order_cuped"))
            else ""
        )
    ]


def source_text(source: dict[str, Any] | None) -> str:
    """Where the figures come from: the results snapshot (and when it was taken) or live."""
    if not source or source["name"] != "snapshot":
        return "figures from the live aggregates"
    when = snapshot_age(source["age_s"])
    return f"figures from the results snapshot taken {when} ago ({source['taken_at']})"


def snapshot_age(age_s: float) -> str:
    return f"{age_s:.0f} s" if age_s < 120 else f"{age_s / 60:.0f} min"


def footer(doc: dict[str, Any]) -> list[str]:
    srm = doc["srm"]
    verdict = "MISMATCH: do not trust these results" if srm["mismatch"] else "ok"
    if srm.get("error"):
        verdict = f"not checked: {srm['error']}"
    lines = [
        "* control; p: two-proportion z-test; adj p: "
        f"{CORRECTIONS.get(doc['options']['correction'], 'not adjusted')} across variations x "
        "goals; AV p: always-valid (mSPRT) p, fine to peek at; P(beat): Bayesian chance to beat "
        f"control ({prior_text(doc['options']['prior_sd'])}); Welch p: revenue per visitor",
        f"SRM: chi2 {_num(srm['statistic'], '.2f')}, p {_num(srm['p_value'], '.4g')} "
        f"(planned {' / '.join(f'{e:,.0f}' for e in srm['expected'])}) {verdict}",
    ]
    for item in doc["sessions"]:
        per = ", ".join(f"{v} {n}" for v, n in item["sessions"].items())
        lines.append(f"sessions with {item['event']}: {per}")
    if "source" in doc:
        lines.append(source_text(doc["source"]))
    return lines


def slice_lines(doc: dict[str, Any]) -> list[str]:
    """One line per slice value: visitors, its own SRM, and per goal each rate and lift."""
    by = doc.get("slices")
    if not by:
        return []
    lines = [f"by {by['by']} (top {by['top']} by visitors; adj p across slices x variations x "
             "goals):"]  # fmt: skip
    for s in by["values"]:
        srm = s["srm"]
        verdict = "SRM MISMATCH" if srm["mismatch"] else f"SRM p {_num(srm['p_value'], '.3g')}"
        visitors = " / ".join(f"{n:,}" for n in s["visitors"].values())
        parts = []
        for goal, rows in s["goals"].items():
            rates = " / ".join(
                _num(r["rate"] and r["rate"] * 100, ".2f") + "%"
                + (f" ({_num(r['relative'] * 100, '+.0f')}%, p {_num(r['p_value'], '.3f')}, "
                   f"adj {_num(r.get('p_adjusted'), '.3f')})" if "p_value" in r else "")
                for r in rows
            )  # fmt: skip
            parts.append(f"goal {goal}: {rates}")
        lines.append(f"  {s['value']}: visitors {visitors}, {verdict}; " + "; ".join(parts))
    return lines


def render(doc: dict[str, Any]) -> str:
    """The readable table."""
    lines = summary(doc)
    for goal in doc["goals"]:
        lines += ["", goal_title(goal), _line(headers(doc["alpha"]))]
        lines += [_line(cells(row, doc["control"])) for row in goal["variations"]]
        lines += ["  " + note for note in notes(goal, doc["alpha"])]
    if by := slice_lines(doc):
        lines += ["", *by]
    return "\n".join([*lines, "", *footer(doc)])
