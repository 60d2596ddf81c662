"""The gateway's and the worker's logs through the real stack: JSON lines, nothing secret.

A real gateway and worker (subprocesses, DEBUG level, JSON logs) take Octeth events carrying
emails and an API key, a wrong API key, a Monetate beacon and Optimizely hits with an email in a
dimension, plus bad input that is dead-lettered. Once ClickHouse has the rows and dead letters
and both processes have stopped, every line of their output must be a JSON object with time,
level, logger and message, and no line may hold an email address, an API key, the admin key,
the identity secret or a password.
"""

from __future__ import annotations

import base64
import re
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from clickhouse_connect.driver.client import Client

from deploy.local import services
from deploy.local.localstack import start_gateway
from schemas.settings import Settings
from tests.integration.conftest import Hitstream, Worker, register_octeth_key, wait_for_rows

pytestmark = pytest.mark.integration

EMAILS = ("ada.lovelace@example.com", "grace+ops@test.example.org")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
UID = uuid.uuid4().hex
ADMIN_KEY = f"admin-key-{UID}"
IDENTITY_SECRET = f"identity-secret-{UID}"
CLICKHOUSE_PASSWORD = f"clickhouse-password-{UID}"
SASL_PASSWORD = f"sasl-password-{UID}"
WRONG_KEY = f"wrong-api-key-{UID}"


@pytest.fixture
def hits_settings(hits_settings: Settings) -> Settings:
    """Conftest's isolated settings with every secret set, DEBUG level and JSON logs.

    The local ClickHouse engine ignores passwords and PLAINTEXT Kafka ignores the SASL login, so
    both are set here only to prove they never reach a log; a container's password is kept.
    """
    return replace(
        hits_settings,
        log_level="DEBUG",
        log_format="json",
        admin_key=ADMIN_KEY,
        identity_secret=IDENTITY_SECRET,
        clickhouse_password=hits_settings.clickhouse_password or CLICKHOUSE_PASSWORD,
        kafka_sasl_username="hitstream",
        kafka_sasl_password=SASL_PASSWORD,
        registry_refresh_s=0.5,
    )


def request(url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> int:
    req = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


SENT: list[bytes] = []  # Octeth bodies sent, looked for (base64, as in a raw hit) in the logs


def octeth(gateway: str, body: dict[str, Any]) -> int:
    SENT.append(orjson.dumps(body))
    return request(f"{gateway}/api/v1/event", SENT[-1])


def send_everything(gateway: str, key: str) -> None:
    base = {"APIKey": key, "ListID": 94}
    first = {**base, "event": "signup", "uuid": "u1", "email": EMAILS[0]}
    deadline = time.monotonic() + 15  # the gateway sees the new key within seconds
    while (status := octeth(gateway, first)) == 401 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert status == 200
    conversion = {
        **base,
        "event": "conversion",
        "uuid": "u2",
        "email": EMAILS[1],
        "properties": {
            "conversion-id": "o1",
            "conversion-name": "Order",
            "conversion-value": 50,
            "note": EMAILS[0],
        },
    }
    assert octeth(gateway, conversion) == 200
    assert octeth(gateway, {**conversion, "APIKey": WRONG_KEY}) == 401
    assert octeth(gateway, {**base, "event": "", "email": "not-an-email@"}) == 422
    # Optimizely: a good hit with an email in a dimension, and one without a visitor (dead letter)
    assert request(f"{gateway}/event?a=1&u=v1&n=view&x2=3&s1={EMAILS[0]}") == 200
    assert request(f"{gateway}/event?a=1&n=nobody&g=5&s1={EMAILS[1]}") == 200
    # Monetate: a beacon with an email in a page URL, and a body that is not JSON (dead letter)
    at = time.time_ns() // 1_000_000
    beacon = {
        "v": 1,
        "site": "shop",
        "visitor": "v9",
        "session": "s9",
        "session_start": at,
        "sent_at": at,
        "page": {"url": f"https://s/p?e={EMAILS[0]}", "referrer": "", "device": "desktop"},
        "experiments": {"exp1": "A"},
        "events": [{"key": "signup", "at": at, "seq": 0}],
    }
    plain = {"Content-Type": "text/plain"}
    assert request(f"{gateway}/monetate/collect", orjson.dumps(beacon), plain) == 200
    assert request(f"{gateway}/monetate/collect", b"not json " + EMAILS[1].encode(), plain) == 200
    # the admin API, with the right key and a wrong one
    admin = f"{gateway}/admin/monetate/definitions"
    assert request(admin, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) == 200
    assert request(admin, headers={"Authorization": f"Bearer {WRONG_KEY}"}) == 401


def problems(line: str, secrets: tuple[str, ...]) -> list[str]:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return [f"not JSON: {line[:200]}"]
    if not isinstance(record, dict):
        return [f"not an object: {line[:200]}"]
    found = [f"no {k}" for k in ("time", "level", "logger", "message") if k not in record]
    if EMAIL.search(line):
        found.append("an email address")
    found += [f"secret {s[:8]}..." for s in secrets if s in line]
    return found


def test_logs_are_json_lines_without_secrets(
    hits_settings: Settings,
    clickhouse: Client,
    worker: Worker,
    tmp_path: Path,
    hitstream: Hitstream,
) -> None:
    gateway_log = tmp_path / "gateway-json.log"
    gateway = start_gateway(hits_settings, gateway_log)
    try:
        key = register_octeth_key(hitstream)  # while the gateway runs: it learns of it
        url = f"http://{hits_settings.gateway_host}:{hits_settings.gateway_port}"
        send_everything(url, key)
        wait_for_rows(clickhouse, "SELECT count() FROM dead_letters", 2, worker=worker)
        wait_for_rows(clickhouse, "SELECT count() FROM identities", 2, worker=worker)
        wait_for_rows(
            clickhouse, "SELECT count() FROM events WHERE source = 'optimizely'", 1, worker=worker
        )
    finally:
        services.stop(gateway)
        worker.stop()

    secrets = (key, WRONG_KEY, ADMIN_KEY, IDENTITY_SECRET, CLICKHOUSE_PASSWORD, SASL_PASSWORD)
    # the raw hit carries an Octeth body base64-encoded: keys and emails must not leak that way
    secrets += tuple(base64.b64encode(body).decode()[:40] for body in SENT)
    records: list[dict[str, Any]] = []
    for log in (gateway_log, worker.log):
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
        assert len(lines) >= 3, f"{log.name}: only {len(lines)} lines"
        bad = {i: p for i, line in enumerate(lines) if (p := problems(line, secrets))}
        assert not bad, f"{log.name}: {len(bad)} bad lines, e.g. " + "; ".join(
            f"line {i}: {p}" for i, p in list(bad.items())[:5]
        )
        records += [orjson.loads(line) for line in lines]
    # The worker says where: a dead letter's log record carries its hit id and position.
    located = [r for r in records if "dead-lettered" in r["message"]]
    assert located, "no dead-letter log record"
    assert all({"hit_id", "topic", "partition", "offset"} <= set(r) for r in located)
    assert {r["logger"] for r in records} >= {"gateway", "pipeline.stage"}
