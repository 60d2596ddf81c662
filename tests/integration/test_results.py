"""Experiment results on a small known dataset written straight into the tables.

Eight exposed visitors (one exposed to both variations, one bot), conversions before and after
exposure, one conversion row stored twice, sessions with repeated, uncounted and retried events;
the numbers below are counted by hand from the rows.
"""

from __future__ import annotations

import datetime as dt
import shutil
import struct
import subprocess
import urllib.error
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from clickhouse_connect.driver.client import Client

from deploy.aggregates import refresh_snapshots
from deploy.local import services
from deploy.local.ports import free_port, wait_until
from results import stats
from results.analysis import Options
from results.chart import COLORS
from results.query import Filters, read, read_slices
from results.report import analyse, to_json
from schemas.settings import Settings, to_environ
from tests.integration.conftest import Hitstream, get

pytestmark = pytest.mark.integration

TENANT, EXPERIMENT, GOAL, OTHER_GOAL = "42", "100", "500", "600"
BOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"
DAY1 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
DAY2 = DAY1 + dt.timedelta(days=1)


def ms(day: dt.datetime, hour: int, minute: int = 0) -> int:
    return int((day + dt.timedelta(hours=hour, minutes=minute)).timestamp() * 1000)


def ms_iso(day: dt.datetime, hour: int) -> str:
    return (day + dt.timedelta(hours=hour)).isoformat()


def uid() -> str:
    return str(uuid.uuid4())


# visitor, variation, time, device, dimensions, user agent
IMPRESSIONS = [
    ("v01", "1", ms(DAY1, 10), "mobile", {"s1": "gc"}, BROWSER),
    ("v02", "1", ms(DAY1, 11), "desktop", {}, BROWSER),
    ("v03", "1", ms(DAY2, 9), "mobile", {}, BROWSER),
    ("v03", "1", ms(DAY2, 10), "mobile", {}, BROWSER),  # seen again: same variation
    ("v04", "2", ms(DAY1, 10), "mobile", {"s1": "gc"}, BROWSER),
    ("v05", "2", ms(DAY1, 12), "desktop", {}, BROWSER),
    ("v06", "2", ms(DAY2, 8), "desktop", {}, BROWSER),
    ("v07", "1", ms(DAY1, 10), "desktop", {}, BROWSER),  # multi: then variation 2
    ("v07", "2", ms(DAY1, 10, 5), "desktop", {}, BROWSER),
    ("v08", "2", ms(DAY1, 13), "desktop", {}, BOT),
]
# visitor, goal, time, value in cents
CONVERSIONS = [
    ("v01", GOAL, ms(DAY1, 9), 1000),  # before exposure: the CUPED covariate only
    ("v01", GOAL, ms(DAY1, 10, 30), 2500),
    ("v01", GOAL, ms(DAY2, 15), 500),
    ("v03", GOAL, ms(DAY1, 12), 700),  # before exposure only: not a converter
    ("v04", GOAL, ms(DAY1, 10), 4000),  # in the exposing hit itself: counts
    ("v05", GOAL, ms(DAY2, 9), None),
    ("v05", GOAL, ms(DAY2, 9, 30), None),
    ("v06", GOAL, ms(DAY2, 9), 1200),
    ("v07", GOAL, ms(DAY1, 11), 900),  # multi
    ("v08", GOAL, ms(DAY1, 14), 300),  # bot
    ("v99", GOAL, ms(DAY1, 14), 300),  # never exposed
    ("v02", OTHER_GOAL, ms(DAY1, 12), 0),
]
# visitor, session, name, variation, first_in_session, counted, duplicate, user agent
EVENTS = [
    ("v01", "s1", "view", "1", 1, 1, False, BROWSER),
    ("v01", "s1", "view", "1", 0, 1, False, BROWSER),  # repeated in the session
    ("v01", "s1", "add", "1", 1, 1, False, BROWSER),
    ("v01", "s2", "view", "1", 1, 1, False, BROWSER),
    ("v04", "s3", "view", "2", 1, 1, False, BROWSER),
    ("v04", "s4", "view", "2", 1, 1, True, BROWSER),  # a client retry: not counted
    ("v04", "s5", "view", "2", 1, 0, False, BROWSER),  # key not counted
    ("v08", "s6", "view", "2", 1, 1, False, BOT),
    ("v07", "s7", "view", "2", 1, 1, False, BROWSER),  # multi
    ("v10", "s8", "view", "2", 1, 1, False, BROWSER),  # no impression: the event's variation
]


def load(client: Client) -> None:
    client.insert(
        "experiments",
        [[TENANT, EXPERIMENT, v, int(v == "1"), 1.0, "demo", 0] for v in ("1", "2")],
        column_names=["tenant", "experiment_id", "variation_id", "is_control", "weight", "name",
                      "deleted"],
    )  # fmt: skip
    client.insert(
        "impressions",
        [
            [TENANT, EXPERIMENT, var, who, uid(), uid(), at, at, dims, agent, device]
            for who, var, at, device, dims, agent in IMPRESSIONS
        ],
        column_names=["tenant", "experiment_id", "variation_id", "visitor_id", "impression_id",
                      "event_id", "occurred_at", "received_at", "dimensions", "user_agent",
                      "device_type"],
    )  # fmt: skip
    columns = ["tenant", "goal_id", "visitor_id", "conversion_id", "event_id", "occurred_at",
               "received_at", "value_cents"]  # fmt: skip
    rows = [[TENANT, goal, who, uid(), uid(), at, at, v] for who, goal, at, v in CONVERSIONS]
    client.insert("conversions", rows, column_names=columns)
    # v04's conversion stored a second time (another block): ReplacingMergeTree's net, not 2.
    client.insert("conversions", [rows[4]], column_names=columns)
    devices = {who: device for who, _, _, device, _, _ in IMPRESSIONS}
    client.insert(
        "events",
        [
            [TENANT, uid(), who, session, name, ms(DAY1, 16), ms(DAY1, 16), {EXPERIMENT: var},
             first, counted, uid() if duplicate else None, agent, devices.get(who, "desktop")]
            for who, session, name, var, first, counted, duplicate, agent in EVENTS
        ],
        column_names=["tenant", "event_id", "visitor_id", "session_id", "name", "occurred_at",
                      "received_at", "experiments", "first_in_session", "counted",
                      "duplicate_of", "user_agent", "device_type"],
    )  # fmt: skip
    refresh_snapshots(client)  # reports read the snapshot: take it now, as `make demo` does


@pytest.fixture
def loaded(clickhouse: Client) -> Client:
    load(clickhouse)
    return clickhouse


def goal_rows(document: dict[str, Any], goal: str) -> dict[str, dict[str, Any]]:
    [found] = [g for g in document["goals"] if g["goal"] == goal]
    return {row["variation"]: row for row in found["variations"]}


def test_per_variation_numbers_are_exact(loaded: Client) -> None:
    agg = read(loaded, TENANT, EXPERIMENT, Filters())
    assert (agg.registered, agg.control, agg.weights) == (True, "1", {"1": 1.0, "2": 1.0})
    assert (agg.visitors, agg.bots, agg.multi) == ({"1": 3, "2": 3}, 1, 1)
    one, two = agg.goals[GOAL]["1"], agg.goals[GOAL]["2"]
    assert (one.converters, one.conversions, two.converters, two.conversions) == (1, 2, 3, 4)
    assert (one.revenue.sum_y, one.revenue.sum_y2) == (3000, 3000**2)
    assert (two.revenue.sum_y, two.revenue.sum_y2) == (5200, 4000**2 + 1200**2)
    # CUPED covariates: v01 (converted) and v03 (did not) converted before exposure.
    assert (one.rate.sum_x, one.rate.sum_x2, one.rate.sum_xy) == (2, 2, 1)
    assert (one.revenue.sum_x, one.revenue.sum_xy) == (1700, 1000 * 3000)
    # Revenue per order (delta method): per visitor conversions D and revenue M, v01 2 and 3000;
    # v04 1 and 4000 (stored twice, counted once), v05 2 and 0, v06 1 and 1200.
    assert (one.per_order.sum_d, one.per_order.sum_d2, one.per_order.sum_md) == (2, 4, 6000)
    assert (two.per_order.sum_d, two.per_order.sum_d2, two.per_order.sum_md) == (4, 6, 5200)
    assert (two.per_order.sum_m, two.per_order.mean) == (5200, 1300)
    # ... and before exposure (ratio CUPED): v01 1 order of 1000, v03 1 of 700 (no order after).
    pre = one.per_order
    assert (pre.sum_dp, pre.sum_mp, pre.sum_mp_dp, pre.sum_dp2) == (2, 1700, 1700, 2)
    assert (pre.sum_d_dp, pre.sum_m_dp, pre.sum_d_mp, pre.sum_m_mp) == (2, 3000, 2000, 3_000_000)
    assert set(agg.goals[OTHER_GOAL]) == {"1"} and agg.goals[OTHER_GOAL]["1"].converters == 1
    assert agg.sessions == {"add": {"1": 1}, "view": {"1": 2, "2": 2}}
    day1, day2 = DAY1.date(), DAY2.date()
    assert agg.daily_exposed == {"1": {day1: 2, day2: 1}, "2": {day1: 2, day2: 1}}
    assert agg.daily_converted[GOAL] == {"1": {day1: 1}, "2": {day1: 1, day2: 2}}


def test_capping_in_clickhouse(loaded: Client) -> None:
    # Revenue per converting visitor of GOAL: v01 3000 (control); v04 4000, v05 0, v06 1200.
    median = read(loaded, TENANT, EXPERIMENT, Filters(cap_percentile=0.5))
    assert median.caps == {
        GOAL: 3000,
        OTHER_GOAL: 0,
    }  # quantileExact: 3000 of [0, 1200, 3000, 4000]
    one, two = median.goals[GOAL]["1"], median.goals[GOAL]["2"]
    assert (one.revenue.sum_y, two.revenue.sum_y) == (3000, 3000 + 0 + 1200)
    assert two.revenue.sum_y2 == 3000**2 + 1200**2 and two.per_order.sum_md == 3000 + 1200
    assert (one.revenue.sum_x, one.revenue.sum_xy) == (1700, 1000 * 3000)  # pre: under the cap
    absolute = read(loaded, TENANT, EXPERIMENT, Filters(cap_cents=2000))
    assert absolute.caps == {}
    one, two = absolute.goals[GOAL]["1"], absolute.goals[GOAL]["2"]
    assert (one.revenue.sum_y, two.revenue.sum_y, two.revenue.sum_y2) == (
        2000,
        3200,
        2000**2 + 1200**2,
    )
    both = read(loaded, TENANT, EXPERIMENT, Filters(cap_cents=2000, cap_percentile=0.5))
    assert both.caps == {GOAL: 2000, OTHER_GOAL: 0}
    assert both.goals[GOAL]["2"].revenue.sum_y == 3200
    doc = analyse(median, Filters(cap_percentile=0.5))
    assert doc["capping"]["caps"] == {GOAL: 3000, OTHER_GOAL: 0}


def test_guardrails_from_the_registry(loaded: Client) -> None:
    assert read(loaded, TENANT, EXPERIMENT, Filters()).guardrails == {}
    columns = ["tenant", "experiment_id", "goal_id", "role", "higher_is_better", "deleted",
               "updated_at"]  # fmt: skip
    rows = [[TENANT, EXPERIMENT, OTHER_GOAL, "guardrail", 0, 0, DAY1],
            [TENANT, EXPERIMENT, "700", "guardrail", 1, 0, DAY1],
            [TENANT, EXPERIMENT, "700", "guardrail", 1, 1, DAY2],  # then removed
            [TENANT, "other", GOAL, "guardrail", 1, 0, DAY1]]  # fmt: skip
    loaded.insert("experiment_goals", rows, column_names=columns)
    agg = read(loaded, TENANT, EXPERIMENT, Filters())
    assert agg.guardrails == {OTHER_GOAL: False}
    doc = analyse(agg, Filters())
    [other] = [g for g in doc["goals"] if g["goal"] == OTHER_GOAL]
    assert other["guardrail"] == {"higher_is_better": False}


def test_results_by_slice(loaded: Client) -> None:
    by_device = read_slices(loaded, TENANT, EXPERIMENT, Filters(), "device_type")
    assert {v: c.visitors for v, c in by_device.items()} == {
        "mobile": {"1": 2, "2": 1},
        "desktop": {"1": 1, "2": 2},
    }
    assert by_device["mobile"].converters == {GOAL: {"1": 1, "2": 1}}
    assert by_device["desktop"].converters == {GOAL: {"2": 2}, OTHER_GOAL: {"1": 1}}
    by_s1 = read_slices(loaded, TENANT, EXPERIMENT, Filters(), "s1")
    assert {v: c.visitors for v, c in by_s1.items()} == {
        "gc": {"1": 1, "2": 1},
        "(none)": {"1": 2, "2": 2},
    }
    browsers = read_slices(loaded, TENANT, EXPERIMENT, Filters(include_bots=True), "browser")
    assert {v: c.visitors for v, c in browsers.items()} == {
        "Firefox": {"1": 3, "2": 3},
        "other": {"2": 1},  # Googlebot: no browser family
    }
    options = Options(by="device_type", top=1)
    doc = analyse(read(loaded, TENANT, EXPERIMENT, Filters()), Filters(), options, by_device)
    values = doc["slices"]["values"]
    assert [s["value"] for s in values] == ["desktop", "other"]  # 3 visitors each: by name
    assert values[1]["visitors"] == {"1": 2, "2": 1} and values[0]["srm"]["mismatch"] is False
    [two] = [r for r in values[0]["goals"][GOAL] if r["variation"] == "2"]
    assert (two["converters"], two["rate"]) == (2, 1.0) and "p_adjusted" in two


def test_flags_and_slices(loaded: Client) -> None:
    everyone = read(loaded, TENANT, EXPERIMENT, Filters(include_bots=True, include_multi=True))
    assert everyone.visitors == {"1": 4, "2": 4}  # v07 counts in its first variation
    assert everyone.goals[GOAL]["1"].converters == 2 and everyone.goals[GOAL]["2"].converters == 4
    assert everyone.sessions["view"] == {"1": 2, "2": 4}
    mobile = read(loaded, TENANT, EXPERIMENT, Filters.parse_slices(["device_type=mobile"]))
    assert mobile.visitors == {"1": 2, "2": 1}
    assert {v: c.converters for v, c in mobile.goals[GOAL].items()} == {"1": 1, "2": 1}
    gc = read(loaded, TENANT, EXPERIMENT, Filters.parse_slices(["s1=gc", "device_type=mobile"]))
    assert gc.visitors == {"1": 1, "2": 1}
    nobody = read(loaded, TENANT, EXPERIMENT, Filters.parse_slices(["s1=' OR 1=1 --"]))
    assert nobody.visitors == {} and nobody.goals == {}  # a bound value, never SQL
    only = read(loaded, TENANT, EXPERIMENT, Filters(goals=(OTHER_GOAL,)))
    assert set(only.goals) == {OTHER_GOAL}


def test_summary_view_agrees(loaded: Client) -> None:
    rows = loaded.query(
        "SELECT variation_id, visitors, goal_id, converters, conversions, revenue_cents, "
        "revenue_sq_cents FROM results_summary WHERE tenant = {t:String} AND "
        "experiment_id = {e:String} ORDER BY variation_id, goal_id",
        parameters={"t": TENANT, "e": EXPERIMENT},
    ).result_rows
    assert [tuple(r) for r in rows] == [
        ("1", 3, GOAL, 1, 2, 3000, 9_000_000),
        ("1", 3, OTHER_GOAL, 1, 1, 0, 0),
        ("2", 3, GOAL, 3, 4, 5200, 17_440_000),
    ]


def test_document_statistics_and_cli_json(
    loaded: Client,
    hitstream: Hitstream,
) -> None:
    doc = orjson.loads(to_json(analyse(read(loaded, TENANT, EXPERIMENT, Filters()), Filters())))
    rows = goal_rows(doc, GOAL)
    assert (rows["1"]["rate"], rows["2"]["rate"]) == (1 / 3, 1.0)
    expected = stats.compare_rates(1, 3, 3, 3)
    assert rows["2"]["rate_vs_control"]["p_value"] == pytest.approx(expected.p_value)
    assert rows["2"]["revenue_per_visitor_cents"] == pytest.approx(5200 / 3)
    assert doc["srm"]["observed"] == [3, 3] and doc["srm"]["mismatch"] is False
    assert doc["excluded"] == {"bots": 1, "multi": 1}
    assert doc["sessions"] == [
        {"event": "add", "sessions": {"1": 1, "2": 0}},
        {"event": "view", "sessions": {"1": 2, "2": 2}},
    ]
    printed = hitstream("results", EXPERIMENT, "--tenant", TENANT, "--json")
    assert printed.code == 0
    found = orjson.loads(printed.out)
    assert found.pop("source")["name"] == "snapshot"  # of the loaded rows: the live figures
    assert found == doc and found["options"]["live"] is False
    printed = hitstream("results", EXPERIMENT, "--tenant", TENANT, "--goal", GOAL)
    table = printed.out
    assert printed.code == 0 and f"goal {GOAL}" in table and "SRM: chi2 0.00" in table
    assert f"goal {OTHER_GOAL}" not in table


@pytest.fixture
def results_web(hits_settings: Settings, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    process = services.spawn(
        services.python_module("results.web", "--port", str(port)),
        tmp_path / "web.log",
        to_environ(hits_settings),
    )
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return get(url + "/results/0/0")[0] == 200
        except (urllib.error.URLError, ConnectionError):
            return False

    wait_until(answers, timeout=60, what="results.web", alive=lambda: process.poll() is None)
    yield url
    services.stop(process)


def test_web_endpoint_returns_the_same_json_and_a_page(loaded: Client, results_web: str) -> None:
    status, headers, body = get(f"{results_web}/api/results/{TENANT}/{EXPERIMENT}")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    doc = analyse(read(loaded, TENANT, EXPERIMENT, Filters()), Filters())
    served = orjson.loads(body)
    # the newest stored hit of the tenant: v01's conversion on day 2 at 15:00
    assert served.pop("freshness")["newest_received_at"] == ms_iso(DAY2, 15)
    assert served.pop("source")["name"] == "snapshot"
    assert served == orjson.loads(to_json(doc))
    sliced = get(f"{results_web}/api/results/{TENANT}/{EXPERIMENT}?slice=device_type=mobile")[2]
    assert [v["visitors"] for v in orjson.loads(sliced)["variations"]] == [2, 1]
    status, headers, page = get(f"{results_web}/results/{TENANT}/{EXPERIMENT}")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert page.count(b"<polyline") == 4  # two goals, two variations each
    assert b"SRM: chi2" in page and b"<script" not in page
    assert page.count(b'<table class="stack figures">') == 2
    with pytest.raises(urllib.error.HTTPError) as bad:
        get(f"{results_web}/api/results/{TENANT}/{EXPERIMENT}?slice=nokey")
    assert bad.value.code == 400
    bad.value.close()
    query = "correction=bh&prior_sd=0.3&by=device_type&top=1&cap_percentile=0.5"
    tuned = orjson.loads(get(f"{results_web}/api/results/{TENANT}/{EXPERIMENT}?{query}")[2])
    assert (tuned["options"]["correction"], tuned["options"]["prior_sd"]) == ("bh", 0.3)
    assert [s["value"] for s in tuned["slices"]["values"]] == ["desktop", "other"]
    assert tuned["capping"]["caps"] == {GOAL: 3000, OTHER_GOAL: 0}
    page = get(f"{results_web}/results/{TENANT}/{EXPERIMENT}?{query}")[2]
    assert b"adj p: Benjamini-Hochberg" in page and b"By device_type" in page
    assert b"Bayes 2" in page
    for wrong in ("correction=sidak", "top=0", "prior_sd=-1", "cap_percentile=2"):
        with pytest.raises(urllib.error.HTTPError) as bad:
            get(f"{results_web}/api/results/{TENANT}/{EXPERIMENT}?{wrong}")
        assert bad.value.code == 400, wrong
        bad.value.close()


def png_pixels(data: bytes) -> np.ndarray:
    """Decode an 8-bit, non-interlaced RGB(A) PNG (what Chromium writes) to (h, w, channels)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks, header = 8, [], b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind == b"IHDR":
            header = data[pos + 8 : pos + 8 + length]
        elif kind == b"IDAT":
            chunks.append(data[pos + 8 : pos + 8 + length])
        pos += 12 + length
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert (depth, interlace, color in (2, 6)) == (8, 0, True)
    bpp = 3 if color == 2 else 4
    raw = np.frombuffer(zlib.decompress(b"".join(chunks)), np.uint8).reshape(height, -1)
    rows = np.zeros((height, width * bpp), np.int64)
    prev = np.zeros(width * bpp, np.int64)
    for y in range(height):
        kind, line = int(raw[y, 0]), raw[y, 1:].astype(np.int64)
        if kind == 0:
            row = line
        elif kind == 1:
            row = np.cumsum(line.reshape(width, bpp), axis=0).reshape(-1) & 255
        elif kind == 2:
            row = (line + prev) & 255
        else:  # Average (3) or Paeth (4): each byte depends on the one to its left
            row, up, values = line.copy(), prev.tolist(), line.tolist()
            out = [0] * len(values)
            for i, value in enumerate(values):
                left = out[i - bpp] if i >= bpp else 0
                if kind == 3:
                    out[i] = (value + (left + up[i]) // 2) & 255
                    continue
                corner = up[i - bpp] if i >= bpp else 0
                p = left + up[i] - corner
                pa, pb, pc = abs(p - left), abs(p - up[i]), abs(p - corner)
                guess = left if pa <= pb and pa <= pc else up[i] if pb <= pc else corner
                out[i] = (value + guess) & 255
            row = np.array(out, np.int64)
        rows[y], prev = row, row
    return rows.reshape(height, width, bpp).astype(np.uint8)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium")
def test_page_renders_its_chart_in_chromium(
    loaded: Client, results_web: str, tmp_path: Path
) -> None:
    shot = tmp_path / "results.png"
    subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--user-data-dir={tmp_path / 'profile'}", "--force-device-scale-factor=1",
         "--window-size=900,1300", f"--screenshot={shot}",
         f"{results_web}/results/{TENANT}/{EXPERIMENT}"],
        check=True, capture_output=True, timeout=90,
    )  # fmt: skip
    pixels = png_pixels(shot.read_bytes())[:, :, :3]
    assert pixels.shape == (1300, 900, 3)
    ink = (pixels.sum(axis=2) < 600).mean()  # anything but white and near-white
    assert 0.01 < ink < 0.5, f"{ink:.3f} of the page inked"
    for color in COLORS[:2]:  # each variation's line, in each goal's chart
        rgb = np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)])
        assert (np.abs(pixels.astype(int) - rgb).sum(axis=2) < 30).sum() > 200, color
