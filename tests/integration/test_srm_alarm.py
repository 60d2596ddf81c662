"""The live sample-ratio alarm on the real stack: exposures through the gateway and the worker,
an alert on the alerts topic for a skewed 50/50 experiment and none for a balanced one."""

from __future__ import annotations

import asyncio
import math
import re

import pytest
from clickhouse_connect.driver.client import Client

from deploy.local.ports import wait_until
from hitstream.experiments import COLUMNS
from schemas.settings import Settings
from schemas.topics import ALERTS
from tests.integration.conftest import Worker, get, read_topic, wait_for_rows

pytestmark = pytest.mark.integration

TENANT, SKEWED, BALANCED = "7001", "9001", "9002"


@pytest.fixture
def registered(clickhouse: Client) -> None:
    """Both experiments planned 50/50 (before the worker starts: it reads them at start)."""
    rows = [
        [TENANT, experiment, variation, int(variation == "1"), 1.0, "", 0]
        for experiment in (SKEWED, BALANCED)
        for variation in ("1", "2")
    ]
    clickhouse.insert("experiments", rows, column_names=COLUMNS)


def expose(gateway: str, experiment: str, variation: str, visitor: str) -> None:
    status, _, _ = get(
        f"{gateway}/event?a={TENANT}&n=view&u={visitor}&x{experiment}={variation}&g={experiment}"
    )
    assert status == 200


def first_exposures(settings: Settings, experiment: str) -> float:
    _, _, body = get(f"http://127.0.0.1:{settings.worker_web_port}/metrics")
    pattern = (
        rf'^hitstream_srm_first_exposures_total{{experiment="{experiment}",tenant="{TENANT}"}}'
        r" (\S+)$"
    )
    match = re.search(pattern, body.decode(), re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_skewed_split_alerts_once_and_balanced_split_never(
    registered: None, gateway: str, worker: Worker, clickhouse: Client, hits_settings: Settings
) -> None:
    wait_until(
        lambda: "experiment splits: 2 experiments" in worker.log_text(),
        timeout=60,
        what="the worker reading the experiment splits",
        alive=lambda: worker.process is not None and worker.process.poll() is None,
    )
    # skewed: 80/20 over 250 visitors; balanced: 125/125, and 40 of its visitors exposed again
    # to variation 1 (not first exposures: counted, they would make it 165/125 and alarm)
    for i in range(250):
        expose(gateway, SKEWED, "1" if i % 5 else "2", f"s{i}")
        expose(gateway, BALANCED, "12"[i % 2], f"b{i}")
    for i in range(40):
        expose(gateway, BALANCED, "1", f"b{2 * i + 1}")
    wait_for_rows(clickhouse, "SELECT count() FROM impressions", 540, worker=worker)
    wait_until(
        lambda: (
            first_exposures(hits_settings, SKEWED) >= 250
            and first_exposures(hits_settings, BALANCED) >= 250
        ),
        timeout=60,
        what="the alarm agent counting every exposure",
        alive=lambda: worker.process is not None and worker.process.poll() is None,
    )
    assert first_exposures(hits_settings, BALANCED) == 250  # re-exposures are not counted
    assert first_exposures(hits_settings, SKEWED) == 250

    alerts = asyncio.run(read_topic(hits_settings, ALERTS, within=5))
    assert [(a["tenant"], a["experiment"]) for a in alerts] == [(TENANT, SKEWED)]
    alert = alerts[0]
    assert alert["kind"] == "sample_ratio_mismatch" and alert["variations"] == ["1", "2"]
    assert alert["expected_shares"] == [0.5, 0.5]
    # raised as soon as the evidence reached 1/alpha, long before the 250th visitor
    assert alert["log_bayes_factor"] >= -math.log(hits_settings.srm_alpha)
    assert alert["counts"][0] > alert["counts"][1] and alert["exposures"] < 120
    _, _, body = get(f"http://127.0.0.1:{hits_settings.worker_web_port}/metrics")
    text = body.decode()
    assert f'hitstream_srm_alarm{{experiment="{SKEWED}",tenant="{TENANT}"}} 1.0' in text
    assert f'hitstream_srm_alarm{{experiment="{BALANCED}",tenant="{TENANT}"}} 0.0' in text
    assert f'hitstream_srm_alerts_total{{experiment="{SKEWED}",tenant="{TENANT}"}} 1.0' in text
