"""deploy/prometheus/alerts.yml under promtool: valid rules, and each alert's unit tests pass.

promtool comes from Debian's `prometheus` package (`make prometheus-deps`, part of `make test`,
installs it when missing); without it, and without root to install it, these tests skip.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

PROMETHEUS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULES = PROMETHEUS / "alerts.yml"
RULE_TESTS = PROMETHEUS / "alerts_test.yml"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not found: `make prometheus-deps` installs Debian's prometheus package "
    "(needs root for apt-get)",
)


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], capture_output=True, text=True, timeout=120, check=False
    )


def _alerts() -> set[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule}


def test_every_alert_has_unit_tests_that_expect_it_to_fire() -> None:
    cases = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    tested = [t for case in cases for t in case.get("alert_rule_test", [])]
    fired = {t["alertname"] for t in tested if t["exp_alerts"]}
    quiet = {t["alertname"] for t in tested if not t["exp_alerts"]}
    expected = {
        "HitstreamSampleRatioMismatch",
        "HitstreamSpoolDropping",
        "HitstreamConsumerLag",
        "HitstreamDeadLetterRate",
    }
    assert expected <= _alerts()
    assert fired == _alerts(), "each alert needs a case where it fires"
    assert quiet == _alerts(), "each alert needs a case where it stays quiet"


@needs_promtool
def test_the_rules_are_valid() -> None:
    done = _promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(_alerts())} rules found" in done.stdout


@needs_promtool
def test_each_alert_fires_and_stays_quiet_where_its_unit_tests_say() -> None:
    done = _promtool("test", "rules", str(RULE_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout
