"""The producer examples of docs/integrations/direct-producers.md, run as written.

Each example's code block is taken from the guide (only the broker address and the topic are
swapped for the test's), run against the real broker, and its hit must reach the `events`
table through a real worker: the guide's contract is what the pipeline accepts.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from deploy.local.kafka_local import LIBS
from schemas.settings import Settings
from schemas.topics import RAW
from tests.integration.conftest import Worker, wait_for_rows

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "integrations" / "direct-producers.md"
EVENTS = "SELECT count() FROM events WHERE tenant = '42' AND visitor_id = 'v1'"


def example(language: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", GUIDE.read_text(), flags=re.S)
    assert len(blocks) == 1, f"one {language} example expected in {GUIDE.name}"
    return str(blocks[0])


def test_the_python_example_produces_a_hit_the_worker_stores(
    hits_settings: Settings, worker: Worker, clickhouse: Client, tmp_path: Path
) -> None:
    code = example("python").replace("127.0.0.1:9092", hits_settings.kafka_bootstrap)
    code = code.replace(f'"{RAW}"', repr(hits_settings.topic(RAW)))
    script = tmp_path / "producer.py"
    script.write_text(code)
    subprocess.run([sys.executable, str(script)], cwd=ROOT, check=True, timeout=60)
    wait_for_rows(clickhouse, EVENTS, 1, worker=worker)


@pytest.mark.skipif(shutil.which("javac") is None, reason="no JDK")
def test_the_java_example_produces_a_hit_the_worker_stores(
    hits_settings: Settings, worker: Worker, clickhouse: Client, tmp_path: Path
) -> None:
    """Compiled against the kafka-clients and Jackson jars the local broker already resolved."""
    (tmp_path / "RawHitProducer.java").write_text(example("java"))
    classpath = f"{LIBS}/*"
    subprocess.run(
        ["javac", "-cp", classpath, "-d", str(tmp_path), str(tmp_path / "RawHitProducer.java")],
        check=True,
        timeout=120,
    )
    subprocess.run(
        [
            "java",
            "-cp",
            f"{tmp_path}:{classpath}",
            "RawHitProducer",
            hits_settings.kafka_bootstrap,
            hits_settings.topic(RAW),
        ],
        check=True,
        timeout=60,
        capture_output=True,
    )
    wait_for_rows(clickhouse, EVENTS, 1, worker=worker)
