"""The figures of the results index and the page's health banner, pure (plain data in and out).

* `sample_ratio`: the sample-ratio check of the report and of the index alike.
* `status`: running (an exposure in the last day), idle (none for a day or more), waiting
  (registered, nobody exposed yet), removed (deleted from the registry).
* `freshness`: the age of the tenant's newest stored hit: how far ingestion is behind (or how
  long the tenant has sent nothing).
* `banner`: what the page says before any figure: sample-ratio mismatch, visitors in several
  variations, bots excluded, an unregistered experiment, stale data.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from typing import Any

from results import stats
from results.catalog import Experiment, Freshness

RUNNING_WITHIN = dt.timedelta(days=1)
FRESH_S, STALE_S = 300.0, 3600.0  # newest hit younger: ok; older than STALE_S: stale
MULTI_WARN = 0.01  # visitors in several variations above this share of the kept ones: a warning


def sample_ratio(
    variations: list[str], visitors: dict[str, int], weights: dict[str, float], registered: bool
) -> dict[str, Any]:
    """The SRM check over the planned variations (every one seen when not registered)."""
    planned = [v for v in variations if v in weights] if registered else list(variations)
    plan = [weights.get(v, 1.0) for v in planned]
    try:
        srm: dict[str, Any] = dataclasses.asdict(
            stats.sample_ratio([visitors.get(v, 0) for v in planned], plan)
        )
    except stats.InvalidAggregates as exc:  # e.g. every registered weight is 0
        srm = {"observed": [], "expected": [], "statistic": math.nan, "p_value": math.nan,
               "mismatch": False, "error": str(exc)}  # fmt: skip
    return {**srm, "variations": planned}


def status(item: Experiment, now: dt.datetime) -> str:
    if item.removed:
        return "removed"
    if item.last_seen is None:
        return "waiting"
    return "running" if now - item.last_seen < RUNNING_WITHIN else "idle"


def days_running(item: Experiment, now: dt.datetime) -> float:
    """From the first exposure to now (running) or to the last exposure; 0 before any."""
    if item.first_seen is None or item.last_seen is None:
        return 0.0
    end = now if status(item, now) == "running" else item.last_seen
    return max((end - item.first_seen).total_seconds(), 0.0) / 86400


def srm_badge(srm: dict[str, Any]) -> str:
    """ok, mismatch, or n/a (not checkable: fewer than two variations with a plan, no visitors)."""
    if srm.get("error") or len(srm["variations"]) < 2 or not sum(srm["observed"]):
        return "n/a"
    return "mismatch" if srm["mismatch"] else "ok"


def summarize(item: Experiment, now: dt.datetime) -> dict[str, Any]:
    """One row of the index (its JSON and its HTML)."""
    variations = ([item.control] if item.control else []) + sorted(
        (set(item.weights) | set(item.visitors)) - {item.control}
    )
    srm = sample_ratio(variations, item.visitors, item.weights, bool(item.weights))
    return {
        "experiment": item.experiment,
        "name": item.name,
        "registered": item.registered,
        "status": status(item, now),
        "days_running": days_running(item, now),
        "first_exposure": item.first_seen.isoformat() if item.first_seen else None,
        "last_exposure": item.last_seen.isoformat() if item.last_seen else None,
        "control": item.control,
        "visitors": sum(item.visitors.values()),
        "variations": {v: item.visitors.get(v, 0) for v in variations},
        "excluded": {"bots": item.bots, "multi": item.multi},
        "srm": {**srm, "badge": srm_badge(srm)},
    }


def freshness(found: Freshness, now: dt.datetime) -> dict[str, Any]:
    """The age of the newest stored hit and its level: ok, behind, stale or empty."""
    if found.newest_received is None:
        return {"newest_received_at": None, "newest_inserted_at": None, "age_s": None,
                "level": "empty"}  # fmt: skip
    age = max((now - found.newest_received).total_seconds(), 0.0)
    level = "ok" if age < FRESH_S else "behind" if age < STALE_S else "stale"
    inserted = found.newest_inserted.isoformat() if found.newest_inserted else None
    return {"newest_received_at": found.newest_received.isoformat(),
            "newest_inserted_at": inserted, "age_s": age, "level": level}  # fmt: skip


def age_text(seconds: float | None) -> str:
    if seconds is None:
        return "no hits stored"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return (
                f"{seconds / size:.1f} {unit}"
                if seconds < 10 * size
                else f"{seconds // size:.0f} {unit}"
            )
    return f"{seconds:.0f} s"


def banner(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(level, sentence) for the page's health banner: error, warn, info or ok."""
    items: list[tuple[str, str]] = []
    srm = doc["srm"]
    kept = sum(v["visitors"] for v in doc["variations"])
    planned = " / ".join(f"{e:,.0f}" for e in srm["expected"])
    observed = " / ".join(f"{o:,}" for o in srm["observed"])
    if srm.get("error"):
        items.append(("warn", f"Sample ratio not checked: {srm['error']}"))
    elif srm["mismatch"]:
        items.append(("error", f"Sample-ratio mismatch (p = {srm['p_value']:.2g}): "
                      f"observed {observed}, planned {planned}. The split is broken; do not "
                      "trust these results until the cause is found."))  # fmt: skip
    elif kept:
        items.append(("ok", f"Split as planned (sample-ratio p = {srm['p_value']:.3g})."))
    if not doc["registered"]:
        items.append(("warn", "Not in the experiment registry: control guessed, equal weights."))
    multi, bots = doc["excluded"]["multi"], doc["excluded"]["bots"]
    if doc["filters"]["include_multi"]:
        items.append(("warn", "Visitors in several variations are included."))
    elif multi:
        level = "warn" if kept and multi / kept > MULTI_WARN else "info"
        share = f" ({multi / kept:.1%} of the kept)" if kept else ""
        items.append((level, f"{multi:,} visitors saw several variations{share}: excluded."))
    if doc["filters"]["include_bots"]:
        items.append(("info", "Bot visitors are included."))
    elif bots:
        items.append(("info", f"{bots:,} bot visitors excluded."))
    fresh = doc.get("freshness")
    if fresh and fresh["level"] in ("behind", "stale"):
        level = "warn" if fresh["level"] == "stale" else "info"
        items.append((level, f"The newest stored hit of this tenant is {age_text(fresh['age_s'])} "
                      "old: ingestion may be behind, or the tenant sends nothing."))  # fmt: skip
    return items
