"""Monetate API events through the real stack: gateway, Kafka, worker, ClickHouse, a browser.

Beacons as the tag sends them (text/plain JSON) with repeats in one session and across two
sessions: one first_in_session=1 per (session, key), every occurrence stored; a bad key is one
dead letter; an undefined key is flagged; a failing condition is not counted. The session state
survives a worker restart. Last, the real tag in headless Chromium against the gateway.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from clickhouse_connect.driver.client import Client

from schemas.settings import Settings
from tests.integration.conftest import Hitstream, Worker, wait_for_rows

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
E2E = ROOT / "tests" / "e2e"
CHROMIUM = Path("/usr/bin/chromium")
ADMIN_KEY = "test-admin-key"
SITE = "shop-eu"


@pytest.fixture
def hits_settings(hits_settings: Settings, tmp_path: Path) -> Settings:
    """Conftest's isolated settings, plus a fast refresh (definitions) and the admin API on."""
    return replace(hits_settings, registry_refresh_s=0.5, admin_key=ADMIN_KEY)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def rows(client: Client, sql: str, **parameters: Any) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in client.query(sql, parameters=parameters).result_rows]


def request(
    url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def beacon(
    gateway: str, session: str, keys: list[str], visitor: str = "v1", url: str = "https://s/p"
) -> None:
    """POST one beacon as the tag does (sendBeacon: text/plain), expect the beacon 200."""
    at = now_ms()
    body = {
        "v": 1,
        "site": SITE,
        "visitor": visitor,
        "session": session,
        "session_start": at,
        "sent_at": at,
        "page": {"url": url, "referrer": "", "device": "desktop", "view": uuid.uuid4().hex},
        "experiments": {"exp1": "A"},
        "events": [{"key": k, "at": at, "seq": i} for i, k in enumerate(keys)],
    }
    status, headers, answer = request(
        gateway + "/monetate/collect",
        "POST",
        orjson.dumps(body),
        {"Content-Type": "text/plain;charset=UTF-8", "Origin": "https://s"},
    )
    assert (status, answer) == (200, b"")
    assert headers["Cache-Control"].startswith("no-store")
    assert headers["Access-Control-Allow-Origin"] == "https://s"


def define(gateway: str, key: str, conditions: list[dict[str, Any]] | None = None) -> None:
    definition = {"v": 1, "title": key.title(), "conditions": conditions or []}
    status, _, answer = request(
        f"{gateway}/admin/monetate/definitions/{SITE}/{urllib.parse.quote(key)}",
        "PUT",
        orjson.dumps(definition),
        {"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"},
    )
    assert status == 200, answer


def wait_for_definitions(client: Client, count: int, settings: Settings) -> None:
    wait_for_rows(client, "SELECT count() FROM event_definitions FINAL WHERE deleted = 0", count)
    time.sleep(settings.registry_refresh_s * 4)  # the worker's next refresh has them


def test_gateway_endpoints_and_admin_api(gateway: str, clickhouse: Client) -> None:
    status, headers, body = request(gateway + "/monetate/tag.js")
    assert status == 200 and b"monetateQ" in body
    assert headers["Content-Type"].startswith("application/javascript")
    assert headers["Cache-Control"] == "public, max-age=300"
    status, headers, _ = request(
        gateway + "/monetate/collect",
        "OPTIONS",
        headers={"Origin": "https://s", "Access-Control-Request-Method": "POST"},
    )
    assert status == 204 and "POST" in headers["Access-Control-Allow-Methods"]
    status, _, _ = request(gateway + "/monetate/collect", "POST", b"not json at all")
    assert status == 200  # always 200: the body is judged (dead-lettered) downstream

    admin = gateway + "/admin/monetate/definitions"
    assert request(admin)[0] == 401
    assert request(admin, headers={"Authorization": "Bearer wrong"})[0] == 401
    auth = {"X-Admin-Key": ADMIN_KEY}
    bad = {"v": 1, "title": "", "conditions": [{"field": "nope", "op": "equals", "value": "x"}]}
    status, _, answer = request(f"{admin}/{SITE}/k1", "PUT", orjson.dumps(bad), auth)
    assert status == 422
    assert {p["code"] for p in orjson.loads(answer)["problems"]} == {"missing_title", "bad_field"}
    assert request(f"{admin}/{SITE}/bad!key", "PUT", b'{"title": "t"}', auth)[0] == 422
    good = {
        "title": "K1",
        "conditions": [{"field": "device_type", "op": "in", "value": ["mobile"]}],
    }
    assert request(f"{admin}/{SITE}/k1", "PUT", orjson.dumps(good), auth)[0] == 200
    status, _, answer = request(f"{admin}/{SITE}/k1", headers=auth)
    assert status == 200 and orjson.loads(answer)["conditions"][0]["value"] == ["mobile"]
    status, _, answer = request(admin + f"?site={SITE}", headers=auth)
    assert [d["key"] for d in orjson.loads(answer)["definitions"]] == ["k1"]
    assert request(f"{admin}/{SITE}/k1", "DELETE", headers=auth)[0] == 204
    assert request(f"{admin}/{SITE}/k1", "DELETE", headers=auth)[0] == 404
    assert request(f"{admin}/{SITE}/k1", headers=auth)[0] == 404


def test_first_in_session_counting_raw_counts_and_dead_letters(
    gateway: str, worker: Worker, clickhouse: Client, hits_settings: Settings
) -> None:
    define(gateway, "reached_platinum")
    define(gateway, "Event Key")
    define(gateway, "checkout", [{"field": "page_url", "op": "contains", "value": "/checkout"}])
    wait_for_definitions(clickhouse, 3, hits_settings)

    s1, s2 = "a" * 32, "b" * 32
    beacon(
        gateway,
        s1,
        ["reached_platinum", "reached_platinum", "Event Key", "mystery", "bad key!", "checkout"],
    )
    beacon(gateway, s1, ["reached_platinum", "Event Key"])
    beacon(gateway, s2, ["reached_platinum", "reached_platinum"])

    wait_for_rows(clickhouse, "SELECT count() FROM events", 9, worker=worker)
    wait_for_rows(clickhouse, "SELECT count() FROM dead_letters", 1, worker=worker)
    time.sleep(1)  # nothing more arrives
    assert rows(clickhouse, "SELECT count() FROM events") == [(9,)]
    assert rows(
        clickhouse,
        "SELECT session_id, name, count(), sum(first_in_session), sum(counted), "
        "groupUniqArrayArray(flags) FROM events "
        "GROUP BY session_id, name ORDER BY session_id, name",
    ) == [
        (s1, "Event Key", 2, 1, 2, []),
        (s1, "checkout", 1, 1, 0, ["conditions_not_met"]),
        (s1, "mystery", 1, 1, 0, ["undefined_event_key"]),
        (s1, "reached_platinum", 3, 1, 3, []),
        (s2, "reached_platinum", 2, 1, 2, []),
    ]
    # The first of a key within one beacon is the earlier entry.
    [(first_event,)] = rows(
        clickhouse,
        "SELECT argMin(event_id, src_pos) FROM events WHERE session_id = {s:String} "
        "AND name = 'reached_platinum'",
        s=s1,
    )
    assert rows(
        clickhouse,
        "SELECT event_id FROM events WHERE first_in_session = 1 AND session_id = {s:String} "
        "AND name = 'reached_platinum'",
        s=s1,
    ) == [(first_event,)]
    [(stage, reason, detail)] = rows(clickhouse, "SELECT stage, reason, detail FROM dead_letters")
    assert (stage, reason) == ("validate", "bad_event_key") and "bad key!" in detail
    assert rows(
        clickhouse,
        "SELECT event_key, sessions_with_event, occurrences FROM monetate_event_counts "
        "WHERE experiment_id = 'exp1' AND variation_id = 'A' ORDER BY event_key",
    ) == [
        ("Event Key", 1, 2),
        ("checkout", 0, 1),
        ("mystery", 0, 1),
        ("reached_platinum", 2, 5),
    ]


def test_first_in_session_survives_a_worker_restart(
    gateway: str, worker: Worker, clickhouse: Client, hits_settings: Settings
) -> None:
    define(gateway, "reached_platinum")
    wait_for_definitions(clickhouse, 1, hits_settings)
    session = "c" * 32
    beacon(gateway, session, ["reached_platinum"])
    wait_for_rows(clickhouse, "SELECT count() FROM events", 1, worker=worker)

    worker.stop()
    worker.start()
    beacon(gateway, session, ["reached_platinum"])
    wait_for_rows(clickhouse, "SELECT count() FROM events", 2, worker=worker)
    assert rows(
        clickhouse, "SELECT first_in_session, counted FROM events ORDER BY received_at, src_pos"
    ) == [(1, 1), (0, 1)]


def test_real_browser_tag_counts_one_per_key_per_session(
    gateway: str,
    worker: Worker,
    clickhouse: Client,
    hits_settings: Settings,
    hitstream: Hitstream,
) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (make e2e-deps installs it as root)")
    if not (E2E / "node_modules" / "playwright-core").is_dir() or shutil.which("node") is None:
        pytest.skip("node or tests/e2e/node_modules/playwright-core is missing (make e2e-deps)")
    keys = ["before_load", "Event Key", "after_load", "reached_platinum"]
    for key in keys:
        added = hitstream("definitions", "add", "--site", "e2e-site", "--key", key, "--title", key)
        assert added.code == 0
    refused = hitstream("definitions", "add", "--site", "e2e-site", "--key", "x!", "--title", "")
    assert refused.code == 2 and "bad_key" in refused.err
    wait_for_definitions(clickhouse, len(keys), hits_settings)

    done = subprocess.run(
        ["node", str(E2E / "run_browser.mjs"), "--gateway", gateway, "--sessions", "2"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    summary = json.loads(done.stdout.decode().strip().splitlines()[-1])
    pushed = [s["pushed"] for s in summary["sessions"]]
    assert len(pushed) == 2 and all(p.count("reached_platinum") == 2 for p in pushed)
    good = sum(1 for p in pushed for k in p if k in keys)  # 16: 4 keys x 2 loads x 2 sessions
    bad = sum(1 for p in pushed for k in p if k not in keys)  # "bad key!" once per page load

    wait_for_rows(clickhouse, "SELECT count() FROM events", good, worker=worker)
    wait_for_rows(clickhouse, "SELECT count() FROM dead_letters", bad, worker=worker)
    time.sleep(1)
    assert rows(clickhouse, "SELECT count() FROM events") == [(good,)]
    assert rows(clickhouse, "SELECT uniqExact(reason), any(reason) FROM dead_letters") == [
        (1, "bad_event_key")
    ]
    sessions = {s["cookies"]["hs_sid"].split(".")[0] for s in summary["sessions"]}
    assert len(sessions) == 2
    counted = rows(
        clickhouse,
        "SELECT session_id, name, count(), countIf(first_in_session = 1 AND counted = 1), "
        "any(experiments) FROM events GROUP BY session_id, name ORDER BY session_id, name",
    )
    assert counted == [
        (session, key, 2, 1, {"exp-e2e": "B"})
        for session in sorted(sessions)
        for key in sorted(keys)
    ]
    assert rows(
        clickhouse,
        "SELECT event_key, sessions_with_event, occurrences FROM monetate_event_counts "
        "WHERE tenant = 'e2e-site' AND experiment_id = 'exp-e2e' AND variation_id = 'B' "
        "ORDER BY event_key",
    ) == [(key, 2, 4) for key in sorted(keys)]
