"""The operator guide's sizing table is `bench.sizing.table()`, and the arithmetic holds."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from bench.sizing import HEADROOM, MEASURED, TARGETS, plan, table

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "operator-guide.md"


def test_the_guide_shows_the_computed_table() -> None:
    assert table() in GUIDE.read_text(), "regenerate it: .venv/bin/python -m bench.sizing"


def test_the_guide_states_the_figures_the_table_comes_from() -> None:
    text = GUIDE.read_text()
    for figure in ("6,394 hits/s", "1,187 events/s", "98,102 rows/s", "2026-12-07"):
        assert figure in text


def test_each_process_runs_at_most_at_the_headroom_of_its_ceiling() -> None:
    for target in TARGETS:
        p = plan(MEASURED, target)
        assert target / (p.gateways - 1) <= MEASURED.gateway_hits_per_s * HEADROOM
        assert target / p.workers <= MEASURED.worker_events_per_s * HEADROOM
        assert target / (p.workers - 1) > MEASURED.worker_events_per_s * HEADROOM  # no spare
        assert p.partitions >= 2 * p.workers and p.partitions % 12 == 0


def test_a_faster_worker_needs_fewer_workers_and_partitions() -> None:
    batched = dataclasses.replace(MEASURED, worker_events_per_s=10 * MEASURED.worker_events_per_s)
    before, after = plan(MEASURED, 100_000), plan(batched, 100_000)
    assert after.workers == 17 and before.workers == 169
    assert after.partitions < before.partitions
    assert after.gateways == before.gateways
