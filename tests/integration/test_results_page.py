"""The results index and page served by `python -m results.web` over the small known dataset of
test_results.py (plus an experiment seen but never registered): the same numbers as the JSON
API, the read key off loopback, and the pages in headless Chromium at two widths.
"""

from __future__ import annotations

import http.cookiejar
import json
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from clickhouse_connect.driver.client import Client

from deploy.aggregates import refresh_snapshots
from deploy.local import services
from deploy.local.ports import free_port, port_open, wait_until
from schemas.settings import Settings, to_environ
from tests.integration.test_results import DAY1, EXPERIMENT, TENANT, load, ms, uid
from tests.unit.page_figures import check

pytestmark = pytest.mark.integration

E2E = Path(__file__).resolve().parents[1] / "e2e"
UNREGISTERED = "200"
Serve = Callable[..., str]


@pytest.fixture
def loaded(clickhouse: Client) -> Client:
    load(clickhouse)
    clickhouse.insert(
        "impressions",
        [[TENANT, UNREGISTERED, var, f"u{i}", uid(), uid(), ms(DAY1, 9), ms(DAY1, 9)]
         for i, var in enumerate(("7", "8", "8"))],
        column_names=["tenant", "experiment_id", "variation_id", "visitor_id", "impression_id",
                      "event_id", "occurred_at", "received_at"],
    )  # fmt: skip
    refresh_snapshots(clickhouse)
    return clickhouse


@pytest.fixture
def serve(hits_settings: Settings, tmp_path: Path) -> Iterator[Serve]:
    """Start results.web on `host` with `key`; its URL (through 127.0.0.1)."""
    started: list[subprocess.Popen[bytes]] = []

    def start(host: str = "127.0.0.1", key: str = "") -> str:
        port = free_port()
        process = services.spawn(
            services.python_module("results.web", "--host", host, "--port", str(port)),
            tmp_path / f"web-{port}.log",
            to_environ(replace(hits_settings, results_key=key)),
        )
        started.append(process)
        wait_until(lambda: port_open("127.0.0.1", port), timeout=60, what="results.web",
                   alive=lambda: process.poll() is None)  # fmt: skip
        return f"http://127.0.0.1:{port}"

    yield start
    for process in started:
        services.stop(process)


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, bytes]:
    """Status, final URL (after redirects) and body; an HTTP error is returned, not raised."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}),
                                    timeout=30) as response:  # fmt: skip
            return response.status, response.geturl(), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, url, error.read()


def api(url: str) -> dict[str, Any]:
    status, _, body = fetch(url)
    assert status == 200, body
    loaded: dict[str, Any] = orjson.loads(body)
    return loaded


def test_index_and_page_show_the_api_numbers(loaded: Client, serve: Serve) -> None:
    base = serve()
    assert api(f"{base}/api/results")["tenants"] == [{"tenant": TENANT, "experiments": 2}]
    status, landed, _ = fetch(f"{base}/")
    assert (status, landed) == (200, f"{base}/results/{TENANT}")  # one tenant: straight to it
    index = api(f"{base}/api/results/{TENANT}")
    found = {e["experiment"]: e for e in index["experiments"]}
    demo, seen = found[EXPERIMENT], found[UNREGISTERED]
    # 8 exposed visitors: 6 kept, a bot and a multi-variation one; first and last exposure a day
    # apart, long ago (March 2026): idle.
    assert (demo["name"], demo["status"], demo["visitors"]) == ("demo", "idle", 6)
    assert demo["days_running"] == pytest.approx(1.0)
    assert demo["excluded"] == {"bots": 1, "multi": 1}
    assert (demo["srm"]["badge"], demo["srm"]["observed"]) == ("ok", [3, 3])
    assert (seen["registered"], seen["variations"], seen["srm"]["badge"]) == (
        False, {"7": 1, "8": 2}, "ok")  # fmt: skip
    assert index["freshness"]["newest_received_at"] == "2026-03-02T15:00:00+00:00"
    assert index["freshness"]["level"] == "stale"
    status, _, html = fetch(f"{base}/results/{TENANT}")
    assert status == 200 and check(html.decode(), index) == 4

    for query in ("", "?by=device_type&correction=bh", "?slice=s1%3Dgc&include_bots=1"):
        document = api(f"{base}/api/results/{TENANT}/{EXPERIMENT}{query}")
        status, _, html = fetch(f"{base}/results/{TENANT}/{EXPERIMENT}{query}")
        assert status == 200 and check(html.decode(), document) > 20, query
    page = html.decode()
    assert '<option value="s1=gc" selected>' in page and "Bot visitors are included." in page
    for value in ("device_type=mobile", "device_type=desktop", "s1=gc"):
        assert f'<option value="{value}"' in page


def test_a_read_key_is_needed_off_loopback(loaded: Client, serve: Serve) -> None:
    closed = serve(host="0.0.0.0")
    for path in ("/", f"/results/{TENANT}", f"/api/results/{TENANT}/{EXPERIMENT}"):
        status, _, body = fetch(closed + path)
        assert status == 403 and b"HITS_RESULTS_KEY" in body, path
    keyed = serve(host="0.0.0.0", key="r3ad-key")
    url = f"{keyed}/api/results/{TENANT}/{EXPERIMENT}"
    assert fetch(url)[0] == 401
    assert fetch(url, {"X-Results-Key": "wrong"})[0] == 403
    assert fetch(url, {"X-Results-Key": "r3ad-key"})[0] == 200
    assert fetch(url, {"Authorization": "Bearer r3ad-key"})[0] == 200
    # A page opened with ?key= answers 303 with the cookie, then the page without the key.
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with browser.open(f"{keyed}/results/{TENANT}?key=r3ad-key", timeout=30) as response:
        assert (response.status, response.geturl()) == (200, f"{keyed}/results/{TENANT}")
    assert [cookie.name for cookie in jar] == ["hits_results_key"]
    with browser.open(f"{keyed}/api/results/{TENANT}", timeout=30) as response:
        assert response.status == 200


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium")
def test_pages_in_chromium_at_two_widths(loaded: Client, serve: Serve, tmp_path: Path) -> None:
    if not (E2E / "node_modules" / "playwright-core").is_dir() or shutil.which("node") is None:
        pytest.skip("node or tests/e2e/node_modules/playwright-core is missing (make e2e-deps)")
    base = serve(host="0.0.0.0", key="r3ad-key")
    done = subprocess.run(
        ["node", str(E2E / "results_page.mjs"), "--url", base, "--out", str(tmp_path),
         "--key", "r3ad-key"],
        capture_output=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    summary = json.loads(done.stdout.decode().strip().splitlines()[-1])
    for width in ("390", "1280"):
        index, page = summary[width]["index"], summary[width]["page"]
        assert index["status"] == 200 and index["url"] == f"{base}/results/{TENANT}"
        assert index["experiments"] == 2 and index["overflow"] <= 0, width
        assert page["url"] == f"{base}/results/{TENANT}/{EXPERIMENT}"
        assert (page["title"], page["goals"], page["chartLines"]) == ("demo", 2, 4)
        assert page["bars"] == ["inconclusive", "inconclusive"]  # 1 of 3 vs 3 of 3: too few
        assert page["health"] == ["ok", "warn", "info", "warn"]  # SRM; multi 1 of 6; bots; stale
        assert "newest hit" in page["freshness"] and page["figures"] > 40
        assert page["overflow"] <= 0, f"the page scrolls sideways at {width} px"
        assert page["stacked"] == (width == "390")  # the figures table: one card per row
        assert page["barWidth"] > 100
        for shot in (index["shot"], page["shot"]):
            assert png_size(Path(shot))[0] == int(width)
    sliced = summary["sliced"]
    assert sliced["selected"] == sliced["chosen"] and "slice=" in sliced["url"]
    assert sliced["goals"] >= 1
