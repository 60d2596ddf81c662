"""The results pages without ClickHouse: the index figures, the health banner, the verdicts and
the lift axis, the rendered pages against their JSON documents, and who may read them."""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from results import access, listing, overview, page
from results.analysis import Options
from results.catalog import Experiment, Freshness
from results.query import AGGREGATES, SNAPSHOTS, Aggregates, Filters, GoalCounts, Reading
from results.ratio import RatioMoments
from results.report import analyse, to_json
from results.slices import SliceCounts
from results.stats import Moments
from results.table import render
from tests.unit.page_figures import check, figures

NOW = dt.datetime(2026, 12, 7, 12, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def counts(n: int, converters: int, revenue: int) -> GoalCounts:
    return GoalCounts(
        converters=converters,
        conversions=converters,
        rate=Moments(n=n, sum_y=converters, sum_y2=converters),
        revenue=Moments(n=n, sum_y=revenue, sum_y2=revenue * revenue // max(converters, 1)),
        per_order=RatioMoments(n=n, sum_m=revenue, sum_m2=revenue * revenue // max(converters, 1),
                               sum_d=converters, sum_d2=converters, sum_md=revenue),
    )  # fmt: skip


def aggregates(**overrides: Any) -> Aggregates:
    """Control 1: 5% of 2000; 2 clearly better (9%), 3 clearly worse (2.5%); guardrail goal 9."""
    days = [dt.date(2026, 12, d) for d in (1, 2, 3)]
    base: dict[str, Any] = {
        "tenant": "t1", "experiment": "e1", "registered": True, "control": "1",
        "weights": {"1": 1.0, "2": 1.0, "3": 1.0}, "visitors": {"1": 2000, "2": 2000, "3": 2000},
        "bots": 12, "multi": 7,
        "goals": {"g": {"1": counts(2000, 100, 500_000), "2": counts(2000, 180, 900_000),
                        "3": counts(2000, 50, 250_000)},
                  "9": {"1": counts(2000, 40, 0), "2": counts(2000, 41, 0)}},
        "sessions": {},
        "daily_exposed": {v: dict.fromkeys(days, 666) for v in ("1", "2", "3")},
        "daily_converted": {"g": {"1": {days[0]: 100}, "2": {days[1]: 180}}},
        "guardrails": {"9": False},
    }  # fmt: skip
    return Aggregates(**(base | overrides))


def document(agg: Aggregates | None = None, **filters: Any) -> dict[str, Any]:
    doc = analyse(agg or aggregates(), Filters(**filters))
    fresh = Freshness(newest_received=NOW - dt.timedelta(seconds=30), newest_inserted=NOW)
    doc["freshness"] = overview.freshness(fresh, NOW)
    return doc


def as_json(doc: dict[str, Any]) -> dict[str, Any]:
    """What the API serves (NaN as null)."""
    loaded: dict[str, Any] = orjson.loads(to_json(doc))
    return loaded


# -- the index --------------------------------------------------------------------------------


def experiment(**overrides: Any) -> Experiment:
    base: dict[str, Any] = {
        "experiment": "e1", "name": "Checkout", "registered": True, "control": "1",
        "weights": {"1": 1.0, "2": 1.0}, "visitors": {"1": 1000, "2": 1010},
        "first_seen": NOW - 3 * DAY, "last_seen": NOW - dt.timedelta(minutes=5),
    }  # fmt: skip
    return Experiment(**(base | overrides))


def test_index_row_status_days_and_sample_ratio() -> None:
    row = overview.summarize(experiment(), NOW)
    assert (row["status"], row["visitors"], row["srm"]["badge"]) == ("running", 2010, "ok")
    assert row["days_running"] == pytest.approx(3.0)
    idle = overview.summarize(experiment(last_seen=NOW - 2 * DAY), NOW)
    assert (idle["status"], idle["days_running"]) == ("idle", pytest.approx(1.0))
    skewed = overview.summarize(experiment(visitors={"1": 1000, "2": 1300}), NOW)
    assert skewed["srm"]["badge"] == "mismatch" and skewed["srm"]["p_value"] < 0.001
    waiting = overview.summarize(experiment(visitors={}, first_seen=None, last_seen=None), NOW)
    assert (waiting["status"], waiting["days_running"], waiting["srm"]["badge"]) == (
        "waiting", 0.0, "n/a")  # fmt: skip
    removed = overview.summarize(experiment(removed=True, weights={}), NOW)
    assert removed["status"] == "removed"
    # Not registered: every variation seen is planned equally; one variation cannot be checked.
    seen = overview.summarize(experiment(registered=False, weights={}, control=""), NOW)
    assert (seen["srm"]["variations"], seen["srm"]["badge"]) == (["1", "2"], "ok")
    alone = overview.summarize(experiment(weights={}, visitors={"1": 5}, control=""), NOW)
    assert alone["srm"]["badge"] == "n/a"


def test_freshness_levels() -> None:
    def level(age_s: float) -> str:
        found = Freshness(newest_received=NOW - dt.timedelta(seconds=age_s), newest_inserted=None)
        return str(overview.freshness(found, NOW)["level"])

    assert [level(s) for s in (0, 299, 301, 3599, 3601)] == ["ok", "ok", "behind", "behind",
                                                             "stale"]  # fmt: skip
    empty = overview.freshness(Freshness(newest_received=None, newest_inserted=None), NOW)
    assert (empty["level"], empty["age_s"]) == ("empty", None)
    assert overview.age_text(42) == "42 s" and overview.age_text(5400) == "1.5 h"
    assert overview.age_text(40 * 86400) == "40 d" and overview.age_text(None) == "no hits stored"


def test_tenant_page_shows_the_index_numbers() -> None:
    doc = {
        "tenant": "t<1>",
        "freshness": overview.freshness(Freshness(newest_received=NOW, newest_inserted=NOW), NOW),
        "experiments": [overview.summarize(experiment(), NOW),
                        overview.summarize(experiment(experiment="e/2", name=""), NOW)],
    }  # fmt: skip
    html = listing.tenant_page(doc)
    assert check(html, as_json(doc)) == 4
    assert 'href="/results/t%3C1%3E/e%2F2"' in html and "t&lt;1&gt;" in html
    assert html.count('class="badge b-running"') == 2 and "ok (p 0.82)" in html


# -- the experiment page ----------------------------------------------------------------------


def test_health_banner() -> None:
    doc = document()
    levels = dict((text.split(" ")[1], level) for level, text in overview.banner(doc))
    assert levels == {"as": "ok", "visitors": "info", "bot": "info"}  # split as planned, 7 multi
    skewed = aggregates(visitors={"1": 2000, "2": 2400, "3": 2000})
    first = overview.banner(document(skewed))[0]
    assert first[0] == "error" and first[1].startswith("Sample-ratio mismatch")
    many = overview.banner(document(aggregates(multi=200)))
    assert ("warn", "200 visitors saw several variations (3.3% of the kept): excluded.") in many
    included = overview.banner(document(include_bots=True, include_multi=True))
    assert ("warn", "Visitors in several variations are included.") in included
    unregistered = overview.banner(document(aggregates(registered=False)))
    assert any(level == "warn" and "registry" in text for level, text in unregistered)
    stale = document()
    stale["freshness"] = overview.freshness(Freshness(newest_received=NOW - DAY,
                                                      newest_inserted=None), NOW)  # fmt: skip
    assert ("warn", "The newest stored hit of this tenant is 1.0 d old: ingestion may be "
            "behind, or the tenant sends nothing.") in overview.banner(stale)  # fmt: skip


def test_verdicts_follow_the_adjusted_p_and_the_guardrail_direction() -> None:
    cell = {"p_value": 0.01, "p_adjusted": 0.03, "difference": 0.02}
    assert page.verdict(cell, 0.05) == "better"
    assert page.verdict(cell, 0.05, higher_is_better=False) == "worse"
    assert page.verdict(cell | {"difference": -0.02}, 0.05) == "worse"
    assert page.verdict(cell | {"p_adjusted": 0.06}, 0.05) == "inconclusive"
    assert page.verdict({"p_value": 0.01, "difference": 0.02}, 0.001) == "inconclusive"
    assert page.verdict(cell | {"p_adjusted": math.nan}, 0.05) == "none"


def test_lift_axis_holds_every_finite_interval_and_zero() -> None:
    def row(low: float, high: float) -> dict[str, Any]:
        return {"rate_vs_control": {"relative_ci": {"low": low, "high": high}}}

    low, high = page.axis([row(0.1, 0.3), row(-0.2, 0.05)])
    assert low < -0.2 and high > 0.3 and high - low < 0.6
    low, high = page.axis([row(0.1, math.inf)])  # unbounded (Fieller): clipped to the limit
    assert (low < 0 < high) and high <= page.AXIS_LIMIT[1]
    assert page.axis([row(math.nan, math.nan)]) == pytest.approx((-0.05, 0.05))


def test_page_shows_the_same_numbers_as_the_json() -> None:
    doc = document()
    html = page.render(doc, overview.summarize(experiment(), NOW), {"device_type": ["mobile"]}, "")
    shown = check(html, as_json(doc))
    # per goal: the control's 4 own figures, 18 per other variation, 3 beside each of its bars
    assert shown == 2 * (4 + 2 * 18 + 2 * 3)  # 18: 15 columns, 3 of them intervals
    assert 'data-verdict="better"' in html and 'data-verdict="worse"' in html
    assert html.count('class="track"') == 4  # 2 variations of each goal
    assert '<option value="device_type=mobile">device_type = mobile</option>' in html
    assert 'id="health"' in html and 'id="freshness"' in html and "<script" not in html


def test_guardrail_lower_is_better_colors_an_increase_red() -> None:
    # Goal 9 (lower is better): 2 triples the control's 40, 3 has none.
    agg = aggregates(goals={"9": {"1": counts(2000, 40, 0), "2": counts(2000, 120, 0)}})
    html = page.render(document(agg), None, {}, "")
    assert re.findall(r'data-verdict="(\w+)"', html) == ["worse", "better"]


def test_sliced_page_links_each_value_and_shows_its_figures() -> None:
    agg = aggregates()
    by = {"mobile": SliceCounts(visitors={"1": 900, "2": 950, "3": 920},
                                converters={"g": {"1": 40, "2": 90, "3": 20}}),
          "a b&c": SliceCounts(visitors={"1": 1100, "2": 1050, "3": 1080},
                               converters={"g": {"1": 60, "2": 90, "3": 30}})}  # fmt: skip
    doc = analyse(agg, Filters(), Options(by="device_type"), by)
    doc["freshness"] = overview.freshness(
        Freshness(newest_received=None, newest_inserted=None), NOW
    )
    html = page.render(doc, None, {}, "by=device_type")
    check(html, as_json(doc))
    assert 'href="?slice=device_type%3Da%20b%26c"' in html
    assert sum(1 for path, _, _ in figures(html) if path[0] == "slices") == 2 * 2 * 2 * 2
    # values x goals (g and the guardrail 9) x variations against the control x (lift, adj p)


# -- access -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expected", "loopback", "presented", "status"),
    [
        ("", True, None, None),  # no key, loopback: open to the machine
        ("", False, None, 403),  # no key, bound elsewhere: closed
        ("", False, "anything", 403),
        ("k3y", True, None, 401),  # a key set is required on loopback too
        ("k3y", False, None, 401),
        ("k3y", False, "wrong", 403),
        ("k3y", False, "k3y", None),
        ("k3y", True, "k3y", None),
    ],
)
def test_refusal(expected: str, loopback: bool, presented: str | None, status: int | None) -> None:
    refused = access.refusal(expected, loopback, presented)
    assert (refused.status if refused else None) == status


def test_loopback_addresses() -> None:
    assert all(map(access.is_loopback, ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"]))
    assert not any(map(access.is_loopback, ["0.0.0.0", "::", "10.0.0.1", "example.org", ""]))


async def served(key: str, loopback: bool) -> TestClient:
    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="results")

    app = web.Application(middlewares=[access.middleware(key, loopback)])
    app.router.add_get("/results/{tenant}", ok)
    app.router.add_get("/api/results/{tenant}", ok)
    return TestClient(TestServer(app))


async def test_key_by_header_bearer_query_or_cookie() -> None:
    async with await served("s3cret", loopback=False) as client:
        missing = await client.get("/api/results/t")
        assert missing.status == 401 and "X-Results-Key" in await missing.text()
        assert (await client.get("/api/results/t", headers={"X-Results-Key": "no"})).status == 403
        for headers in ({"X-Results-Key": "s3cret"}, {"Authorization": "Bearer s3cret"}):
            assert (await client.get("/api/results/t", headers=headers)).status == 200
        assert (await client.get("/api/results/t?key=s3cret")).status == 200
        # A page opened with ?key= sets the cookie and drops the key from the address.
        opened = await client.get("/results/t?key=s3cret&by=x", allow_redirects=False)
        assert opened.status == 303 and opened.headers["Location"] == "/results/t?by=x"
        cookie = opened.cookies[access.COOKIE]
        assert cookie.value == "s3cret" and cookie["httponly"] and cookie["samesite"] == "Strict"
        after = await client.get("/results/t?by=x")  # the client's jar sends the cookie
        assert after.status == 200 and await after.text() == "results"
        client.session.cookie_jar.clear()
        assert (await client.get("/results/t?key=wrong")).status == 403


async def test_without_a_key_only_loopback_answers() -> None:
    async with await served("", loopback=False) as client:
        refused = await client.get("/results/t")
        assert refused.status == 403 and "HITS_RESULTS_KEY" in await refused.text()
    async with await served("", loopback=True) as client:
        assert (await client.get("/results/t")).status == 200


def test_the_figure_check_notices_a_number_that_differs() -> None:
    doc = document()
    html = page.render(doc, None, {}, "")
    served = as_json(doc)
    served["goals"][0]["variations"][1]["rate_vs_control"]["p_adjusted"] += 0.001
    with pytest.raises(AssertionError, match="p_adjusted"):
        check(html, served)
    served = as_json(doc)
    served["goals"][0]["variations"][2]["rate"] = None
    with pytest.raises(AssertionError, match="rate"):
        check(html, served)


def test_tenants_page_links_each_tenant() -> None:
    html = listing.tenants_page({"tenants": [{"tenant": "a b", "experiments": 3},
                                             {"tenant": "c", "experiments": 0}]})  # fmt: skip
    assert 'href="/results/a%20b"' in html and 'href="/results/c"' in html
    assert "3 experiments with exposures" in html
    assert "No tenant has data yet." in listing.tenants_page({"tenants": []})


def test_demo_ends_with_the_tenant_index_url() -> None:
    from results.demo import index_line

    state = {"results": "http://127.0.0.1:8090"}
    assert index_line(state, "42", "") == "results pages: http://127.0.0.1:8090/results/42"
    assert index_line(state, "42", "k").endswith("(add ?key=<HITS_RESULTS_KEY> once)")
    assert "make down && make run" in index_line({}, "42", "")


def test_slice_form_keeps_one_slice_and_never_resends_several_as_one() -> None:
    one = page.controls(document(slice=(("s1", "gc"),)), {"s1": ["us"]})
    assert '<option value="s1=gc" selected>s1=gc</option>' in one  # not among the top values
    both = page.controls(document(slice=(("s1", "gc"),), device_type="mobile"), {})
    assert '<option value="" selected disabled>s1=gc &amp; device_type=mobile</option>' in both
    assert 'value="s1=gc' not in both


def test_the_page_and_the_table_say_where_the_figures_come_from() -> None:
    taken = NOW - dt.timedelta(seconds=42)
    doc = document()
    doc["source"] = Reading(SNAPSHOTS, taken).as_dict(NOW)
    assert doc["source"] == {"name": "snapshot", "taken_at": taken.isoformat(), "age_s": 42.0}
    html = page.render(doc, None, {}, "goal=g")
    assert 'id="source"' in html and "snapshot of 42 s ago" in html
    assert 'href="/results/t1/e1?goal=g&amp;live=1">live</a>' in html
    assert f"figures from the results snapshot taken 42 s ago ({taken.isoformat()})" in render(doc)
    doc["source"] = Reading(AGGREGATES).as_dict(NOW)
    assert '<span id="source">live figures</span>' in page.render(doc, None, {}, "")
    assert "figures from the live aggregates" in render(doc)
    doc["source"] = Reading(SNAPSHOTS, NOW - dt.timedelta(minutes=30)).as_dict(NOW)
    assert "snapshot of 30 min ago" in page.render(doc, None, {}, "")
