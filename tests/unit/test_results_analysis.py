"""Bayesian, multiple-testing and power parts of the results document, with plain data."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import pytest
from multidict import MultiDict

from results import bayes, corrections, power, report, slices, table
from results.analysis import Options
from results.query import AGGREGATES, Aggregates, Filters, GoalCounts, Reading
from results.ratio import RatioMoments
from results.slices import SliceCounts
from results.stats import Moments
from results.web import filters_from
from schemas.settings import load_settings


def test_corrections_leave_nan_out_of_the_family() -> None:
    assert corrections.adjust([0.01, math.nan, 0.04], "holm") == pytest.approx(
        [0.02, math.nan, 0.04], nan_ok=True
    )
    assert corrections.adjust([0.01, 0.04], "none") == [0.01, 0.04]
    assert corrections.adjust([0.01, 0.02, 0.03], "bh") == pytest.approx([0.03, 0.03, 0.03])
    with pytest.raises(ValueError, match="holm, bh, none"):
        corrections.adjust([0.1], "bonferroni")


def test_power_days_scale_with_the_square_of_the_mde_ratio() -> None:
    result = power.analyse(0.1, 0.09, 1000, 0.09, 1000, 7, target=0.05)
    assert result.mde == pytest.approx(power.multiplier() * math.sqrt(0.09 * 2 / 1000))
    assert result.mde_relative == pytest.approx(result.mde / 0.1)
    assert result.days_needed == pytest.approx(7 * (result.mde_relative / 0.05) ** 2)
    assert result.days_more == pytest.approx(result.days_needed - 7)
    assert power.analyse(0.1, 0.09, 1000, 0.09, 1000, 7, target=0.9).days_more == 0
    nothing = power.analyse(0.1, 0.09, 0, 0.09, 1000, 7)
    assert math.isnan(nothing.mde) and math.isnan(nothing.days_more)


def test_a_proper_prior_shrinks_the_lift_towards_zero() -> None:
    flat = bayes.compare_rates(100, 1000, 130, 1000)
    shrunk = bayes.compare_rates(100, 1000, 130, 1000, prior=bayes.Prior(sd=0.1))
    assert 0 < shrunk.relative.mean < flat.relative.mean == pytest.approx(0.3)
    assert shrunk.relative.sd < flat.relative.sd
    assert shrunk.relative.chance_to_beat < flat.relative.chance_to_beat
    # risk: E[max(-effect, 0)] and E[max(effect, 0)] differ by the mean
    assert flat.absolute.risk_control - flat.absolute.risk_treatment == pytest.approx(0.03)


def test_bayes_gives_nan_without_data_or_a_baseline() -> None:
    empty = bayes.compare_rates(0, 0, 3, 10)
    assert math.isnan(empty.absolute.chance_to_beat) and math.isnan(empty.relative.mean)
    zero = bayes.compare_rates(0, 100, 3, 100)  # control rate 0: no relative lift
    assert math.isnan(zero.relative.mean) and zero.absolute.chance_to_beat > 0.5
    same = bayes.compare_means(Moments(n=5, sum_y=5, sum_y2=5), Moments(n=5, sum_y=5, sum_y2=5))
    assert math.isnan(same.absolute.chance_to_beat)  # no variance at all


def counts(n: int, c: int) -> GoalCounts:
    rate = Moments(n=n, sum_y=c, sum_y2=c)
    revenue = Moments(n=n, sum_y=4000 * c, sum_y2=20_000_000 * c)
    per_order = RatioMoments(
        n=n, sum_m=revenue.sum_y, sum_m2=revenue.sum_y2, sum_d=c, sum_d2=c, sum_md=revenue.sum_y
    )
    return GoalCounts(converters=c, conversions=c, rate=rate, revenue=revenue, per_order=per_order)


DAY = dt.date(2026, 12, 1)
AGG = Aggregates(
    tenant="1", experiment="2", registered=True, control="a",
    weights={"a": 1.0, "b": 1.0, "c": 1.0}, visitors={"a": 3000, "b": 3010, "c": 2990},
    bots=0, multi=0, sessions={},
    goals={
        "g1": {"a": counts(3000, 150), "b": counts(3010, 205), "c": counts(2990, 149)},
        "g2": {"a": counts(3000, 40), "b": counts(3010, 52), "c": counts(2990, 61)},
    },
    daily_exposed={"a": {DAY: 1000, DAY + dt.timedelta(days=6): 2000}},
)  # fmt: skip


def rate_p(doc: dict[str, object], key: str) -> list[float]:
    return [
        row["rate_vs_control"][key]  # type: ignore[index]
        for goal in doc["goals"]  # type: ignore[attr-defined]
        for row in goal["variations"]
        if "rate_vs_control" in row
    ]


@pytest.mark.parametrize("method", ["holm", "bh", "none"])
def test_the_document_adjusts_p_across_variations_and_goals(method: str) -> None:
    doc = report.analyse(AGG, Filters(), Options(correction=method))
    raw = rate_p(doc, "p_value")
    assert len(raw) == 4  # 2 variations x 2 goals: one family
    assert rate_p(doc, "p_adjusted") == pytest.approx(corrections.adjust(raw, method))
    assert doc["options"]["correction"] == method


def test_the_document_and_table_show_bayes_and_power() -> None:
    doc = report.analyse(AGG, Filters(), Options(prior_sd=0.2, target_lift=0.1))
    row = doc["goals"][0]["variations"][1]
    expected = bayes.compare_rates(150, 3000, 205, 3010, prior=bayes.Prior(sd=0.2))
    assert row["rate_bayesian"]["relative"]["mean"] == pytest.approx(expected.relative.mean)
    assert row["rate_power"]["days_so_far"] == 7 and row["rate_power"]["target_relative"] == 0.1
    assert row["revenue_bayesian"]["absolute"]["chance_to_beat"] > 0.5
    text = report.render(doc)
    assert "adj p" in text and "P(beat)" in text and "Holm-Bonferroni" in text
    assert "Bayes b: chance to beat control" in text and "prior N(0, 0.2^2)" in text
    assert "power b: MDE" in text and "+10% needs" in text
    assert len(table.cells(row, "a")) == len(table.COLUMNS)


def test_options_come_from_settings_and_the_query_string() -> None:
    settings = load_settings({"HITS_RESULTS_CORRECTION": "bh", "HITS_RESULTS_PRIOR_SD": "0.3"})
    options = Options.from_settings(settings, correction=None, alpha=0.1)
    assert (options.correction, options.prior_sd, options.alpha) == ("bh", 0.3, 0.1)

    _, parsed = filters_from(MultiDict(correction="none", target_lift="0.2"), settings)
    assert (parsed.correction, parsed.target_lift, parsed.prior_sd) == ("none", 0.2, 0.3)
    for bad in ({"correction": "sidak"}, {"alpha": "2"}, {"prior_sd": "-1"}, {"power": "x"}):
        with pytest.raises(ValueError):
            filters_from(MultiDict(bad), settings)


def test_results_help_has_an_example_of_every_option() -> None:
    from hitstream.cli import build_parser
    from tests.unit.test_cli_help import commands, example_commands

    parser = next(p for path, p in commands(build_parser()) if path == ("results",))
    used = {arg for argv in example_commands(parser.format_help()) for arg in argv}
    options = {
        a.option_strings[-1] for a in parser._actions if a.option_strings and a.dest != "help"
    }
    assert options - used == set()


def test_the_table_names_the_caps() -> None:
    capped = dataclasses.replace(AGG, caps={"g1": 12_345, "g2": 99})
    text = report.render(report.analyse(capped, Filters(cap_percentile=0.99)))
    assert "capped at the 0.99 quantile of converters: goal g1 $123.45, goal g2 $0.99" in text
    text = report.render(report.analyse(AGG, Filters(cap_cents=50_000)))
    assert "revenue per visitor capped at $500.00" in text
    with pytest.raises(ValueError, match="caps"):
        Filters.parse_slices([], cap_percentile=1.5)


def test_slices_keep_the_top_values_and_sum_the_rest_into_other() -> None:
    counts = {
        "mobile": SliceCounts(
            visitors={"a": 500, "b": 700, "c": 600}, converters={"g1": {"a": 25, "b": 49}}
        ),
        "desktop": SliceCounts(
            visitors={"a": 300, "b": 310, "c": 305}, converters={"g1": {"a": 9}}
        ),
        "tablet": SliceCounts(visitors={"a": 20, "b": 18}, converters={"g1": {"b": 2}}),
        "tv": SliceCounts(visitors={"a": 2}, converters={}),
    }
    kept = slices.top(counts, 2)
    assert list(kept) == ["mobile", "desktop", "other"]
    assert kept["other"] == SliceCounts(visitors={"a": 22, "b": 18}, converters={"g1": {"b": 2}})
    doc = report.analyse(AGG, Filters(), Options(by="device_type", top=2), counts)
    values = doc["slices"]["values"]
    assert values[0]["srm"]["mismatch"]  # 500 / 700 / 600 on a 1:1:1 plan
    assert not values[1]["srm"]["mismatch"]
    [b] = [r for r in values[0]["goals"]["g1"] if r["variation"] == "b"]
    assert b["rate"] == pytest.approx(0.07) and b["p_value"] <= b["p_adjusted"]
    text = report.render(doc)
    assert (
        "by device_type (top 2" in text and "mobile: visitors 500 / 700 / 600, SRM MISMATCH" in text
    )


def test_a_guardrail_degraded_significantly_is_flagged() -> None:
    guarded = dataclasses.replace(AGG, guardrails={"g2": True, "g3": False})
    doc = report.analyse(guarded, Filters())
    g1, g2, g3 = doc["goals"]
    assert g1["guardrail"] is None and g3["guardrail"] == {"higher_is_better": False}
    rows = {r["variation"]: r for r in g2["variations"]}
    # g2: b 52 of 3,010 vs 40 of 3,000 (not significant); c 61 of 2,990 (better, p ~0.03)
    assert rows["b"]["guardrail_degraded"] == [] and rows["c"]["guardrail_degraded"] == []
    worse = dataclasses.replace(guarded, guardrails={"g1": False})  # g1: b converts more
    doc = report.analyse(worse, Filters())
    rows = {r["variation"]: r for r in doc["goals"][0]["variations"]}
    assert rows["b"]["guardrail_degraded"] == ["conversion rate", "revenue per visitor"]
    assert rows["c"]["guardrail_degraded"] == []
    text = report.render(doc)
    assert "goal g1 (guardrail, lower is better)" in text
    assert "GUARDRAIL DEGRADED by b: conversion rate, revenue per visitor" in text
    only = report.analyse(guarded, Filters(goals=("g1",)))
    assert "g3" not in [g["goal"] for g in only["goals"]]  # a goal filter: as asked


def test_experiments_add_marks_guardrails() -> None:
    from hitstream.cli import build_parser
    from hitstream.experiments import guardrail_rows

    args = build_parser().parse_args(
        ["experiments", "add", "--tenant", "1", "--experiment", "2", "--variations", "a,b",
         "--guardrails", "555, -556"]
    )  # fmt: skip
    assert guardrail_rows(args) == [
        ["1", "2", "555", "guardrail", 1, 0],
        ["1", "2", "556", "guardrail", 0, 0],
    ]


@pytest.mark.parametrize("by", ["", "device_type"])
def test_document_reports_each_of_its_steps(by: str, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    class Client:
        def close(self) -> None:
            calls.append("close")

    monkeypatch.setattr(report, "connect", lambda settings: Client())
    monkeypatch.setattr(report, "read", lambda *args: calls.append("read") or AGG)
    monkeypatch.setattr(report, "read_slices", lambda *args: calls.append("slices") or None)
    monkeypatch.setattr(report, "reading", lambda client, live: Reading(AGGREGATES))
    options = Options(by=by)
    settings = load_settings({})
    doc = report.document(settings, "1", "e", Filters(), options, lambda: calls.append("+"))
    assert doc["goals"] and calls.count("+") == report.steps(options)
    assert calls[-1] == "close" and calls[-2] == "+"  # the last step is done once all is read
    assert doc["source"] == {"name": "live", "taken_at": None, "age_s": None}
