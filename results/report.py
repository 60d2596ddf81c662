"""`hitstream results`: the statistics of one experiment as a table or JSON (the web API's too).

hitstream results 87654321 --tenant 1234567 [--goal 555] [--slice device_type=mobile]
    [--slice 983745985=gc] [--include-bots] [--include-multi] [--json]

examples:
  hitstream results 87654321 --tenant 1234567
  hitstream results 87654321 --tenant 1234567 --goal 555 --slice device_type=mobile
  hitstream results 87654321 --tenant 1234567 --json > results.json
  hitstream results 87654321 --tenant 1234567 --include-bots --include-multi --alpha 0.01
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import math
import sys
import threading
from collections.abc import Iterator
from typing import Any, TextIO

import orjson

from deploy.clickhouse_client import connect
from results import stats
from results.query import Aggregates, Filters, GoalCounts, empty_counts, read
from schemas.settings import Settings


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


def _goal(agg: Aggregates, goal: str, alpha: float) -> dict[str, Any]:
    counts = agg.goals.get(goal, {})
    base = counts.get(agg.control) or empty_counts(agg.visitors.get(agg.control, 0))
    rows = []
    for variation in agg.variations:
        c: GoalCounts = counts.get(variation) or empty_counts(agg.visitors.get(variation, 0))
        n = agg.visitors.get(variation, 0)
        row: dict[str, Any] = {
            "variation": variation,
            "visitors": n,
            "converters": c.converters,
            "conversions": c.conversions,
            "rate": c.converters / n if n else None,
            "revenue_cents": c.revenue.sum_y,
            "revenue_per_visitor_cents": c.revenue.sum_y / n if n else None,
        }
        if variation != agg.control:
            rate = stats.compare_rates(base.converters, base.rate.n, c.converters, n, alpha=alpha)
            row["rate_vs_control"] = _plain(rate)
            row["revenue_vs_control"] = _plain(
                stats.compare_means(base.revenue, c.revenue, alpha=alpha)
            )
            row["rate_cuped"] = _plain(stats.cuped(base.rate, c.rate, alpha=alpha))
            row["revenue_cuped"] = _plain(stats.cuped(base.revenue, c.revenue, alpha=alpha))
        rows.append(row)
    return {"goal": goal, "variations": rows, "daily": daily(agg, goal)}


def daily(agg: Aggregates, goal: str) -> list[dict[str, Any]]:
    """Cumulative exposed visitors, converters and rate per variation at the end of each day."""
    converted = agg.daily_converted.get(goal, {})
    days = sorted(
        {d for per in agg.daily_exposed.values() for d in per}
        | {d for per in converted.values() for d in per}
    )
    out = []
    for variation in agg.variations:
        visitors = converters = 0
        for day in days:
            visitors += agg.daily_exposed.get(variation, {}).get(day, 0)
            converters += converted.get(variation, {}).get(day, 0)
            rate = converters / visitors if visitors else None
            out.append(
                {"day": day.isoformat(), "variation": variation, "visitors": visitors,
                 "converters": converters, "rate": rate}
            )  # fmt: skip
    return out


def analyse(agg: Aggregates, filters: Filters, alpha: float = stats.ALPHA) -> dict[str, Any]:
    """The results document: what `--json` prints and `GET /api/results/...` returns."""
    planned = [v for v in agg.variations if v in agg.weights] if agg.registered else agg.variations
    weights = [agg.weights.get(v, 1.0) for v in planned]
    share = sum(weights) or 1.0
    try:
        srm: dict[str, Any] = _plain(
            stats.sample_ratio([agg.visitors.get(v, 0) for v in planned], weights)
        )
    except stats.InvalidAggregates as exc:  # e.g. every registered weight is 0
        srm = {"observed": [], "expected": [], "statistic": math.nan, "p_value": math.nan,
               "mismatch": False, "error": str(exc)}  # fmt: skip
    goals = sorted(set(agg.goals) | set(filters.goals))
    return {
        "tenant": agg.tenant,
        "experiment": agg.experiment,
        "registered": agg.registered,
        "control": agg.control,
        "alpha": alpha,
        "filters": filters.as_dict(),
        "excluded": {
            "bots": 0 if filters.include_bots else agg.bots,
            "multi": 0 if filters.include_multi else agg.multi,
        },
        "variations": [
            {
                "variation": v,
                "control": v == agg.control,
                "weight": agg.weights.get(v, 1.0) / share if v in planned else None,
                "visitors": agg.visitors.get(v, 0),
            }
            for v in agg.variations
        ],
        "srm": {**srm, "variations": planned},
        "goals": [_goal(agg, g, alpha) for g in goals],
        "sessions": [
            {"event": name, "sessions": {v: per.get(v, 0) for v in agg.variations}}
            for name, per in sorted(agg.sessions.items())
        ],
    }


def to_json(document: dict[str, Any]) -> bytes:
    """orjson writes NaN and infinities as null."""
    return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)


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
           ("abs lift", -30), ("rel lift", -28), ("p", 7), ("AV p", 7), ("rev/visitor", 12),
           ("Welch p", 9)]  # fmt: skip


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
        return [*head, "-", "-", "-", "-", rpv, "-"]
    absolute = f"{_num(cmp['difference'] * 100, '+.2f')}pp " + _interval(
        cmp["difference_ci"], 100, "+.2f"
    )
    relative = f"{_num(cmp['relative'] * 100, '+.1f')}% " + _interval(
        cmp["relative_ci"], 100, "+.0f", "%"
    )
    p, av, welch = (_num(cmp["p_value"], ".4f"), _num(cmp["always_valid_p"], ".3f"),
                    _num(rev["p_value"], ".4f"))  # fmt: skip
    return [*head, absolute, relative, p, av, rpv, welch]


def _line(values: list[str]) -> str:
    return "".join(
        f"{v:<{-w}}" if w < 0 else f"{v:>{w}}" for v, (_, w) in zip(values, COLUMNS, strict=True)
    ).rstrip()


def summary(doc: dict[str, Any]) -> list[str]:
    head = f"experiment {doc['experiment']} of tenant {doc['tenant']}, control {doc['control']}"
    lines = [head + ("" if doc["registered"] else " (not in the registry: control guessed)")]
    excluded = doc["excluded"]
    lines.append(f"excluded: {excluded['bots']} bot visitors, {excluded['multi']} multi-variation")
    if doc["filters"]["slice"]:
        lines.append("slice: " + ", ".join(f"{k}={v}" for k, v in doc["filters"]["slice"].items()))
    return lines


def cuped_notes(goal: dict[str, Any]) -> list[str]:
    notes = []
    for row in goal["variations"]:
        if cuped := row.get("rate_cuped"):
            notes.append(
                f"CUPED {row['variation']}: variance "
                f"-{_num(cuped['variance_reduction'] * 100, '.0f')}%, "
                f"abs lift {_num(cuped['difference'] * 100, '+.2f')}pp "
                f"{_interval(cuped['difference_ci'], 100, '+.2f')}, "
                f"p {_num(cuped['p_value'], '.4f')}"
            )
    return notes


def footer(doc: dict[str, Any]) -> list[str]:
    srm = doc["srm"]
    verdict = "MISMATCH: do not trust these results" if srm["mismatch"] else "ok"
    if srm.get("error"):
        verdict = f"not checked: {srm['error']}"
    lines = [
        "* control; p: two-proportion z-test; AV p: always-valid (mSPRT) p, fine to peek at; "
        "Welch p: revenue per visitor",
        f"SRM: chi2 {_num(srm['statistic'], '.2f')}, p {_num(srm['p_value'], '.4g')} "
        f"(planned {' / '.join(f'{e:,.0f}' for e in srm['expected'])}) {verdict}",
    ]
    for item in doc["sessions"]:
        per = ", ".join(f"{v} {n}" for v, n in item["sessions"].items())
        lines.append(f"sessions with {item['event']}: {per}")
    return lines


def render(doc: dict[str, Any]) -> str:
    """The readable table."""
    lines = summary(doc)
    for goal in doc["goals"]:
        lines += ["", f"goal {goal['goal']}", _line(headers(doc["alpha"]))]
        lines += [_line(cells(row, doc["control"])) for row in goal["variations"]]
        lines += ["  " + note for note in cuped_notes(goal)]
    return "\n".join([*lines, "", *footer(doc)])


@contextlib.contextmanager
def progress(message: str, stream: TextIO = sys.stderr, delay: float = 1.0) -> Iterator[None]:
    """A spinner on `stream` when the work takes longer than `delay` and `stream` is a TTY."""
    if not stream.isatty():
        yield
        return
    done = threading.Event()

    def spin() -> None:
        if done.wait(delay):
            return
        for frame in itertools.cycle("|/-\\"):
            stream.write(f"\r{frame} {message}")
            stream.flush()
            if done.wait(0.1):
                stream.write("\r" + " " * (len(message) + 2) + "\r")
                stream.flush()
                return

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "results",
        help="experiment results: rates, lifts, p-values, SRM",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("experiment")
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--goal", action="append", default=[], help="a goal id (repeatable)")
    parser.add_argument(
        "--slice", action="append", default=[], help="key=value: a dimension or device_type"
    )
    parser.add_argument("--include-bots", action="store_true")
    parser.add_argument("--include-multi", action="store_true", help="multi-variation visitors")
    parser.add_argument("--alpha", type=float, default=stats.ALPHA)
    parser.add_argument("--json", action="store_true", help="print the JSON document")


def document(settings: Settings, tenant: str, experiment: str, filters: Filters,
             alpha: float = stats.ALPHA) -> dict[str, Any]:  # fmt: skip
    client = connect(settings)
    try:
        return analyse(read(client, tenant, experiment, filters), filters, alpha)
    finally:
        client.close()


def run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        filters = Filters.parse_slices(
            args.slice,
            goals=tuple(args.goal),
            include_bots=args.include_bots,
            include_multi=args.include_multi,
        )
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    if not 0 < args.alpha < 1:
        raise SystemExit("--alpha must be between 0 and 1")
    with progress(f"reading experiment {args.experiment}"):
        doc = document(settings, args.tenant, args.experiment, filters, args.alpha)
    if args.json:
        sys.stdout.write(to_json(doc).decode() + "\n")
    else:
        print(render(doc))
    return 0
