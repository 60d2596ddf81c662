"""Tests of `pipeline.idle`: a worker without partitions for too long is told to restart."""

from __future__ import annotations

from pipeline.idle import IdleWatch, limit_for


def test_idle_time_counts_from_the_first_check_without_partitions() -> None:
    watch = IdleWatch(limit_s=30)
    assert watch.idle_for(0, 100.0) == 0.0
    assert not watch.exceeded(0, 129.9)
    assert watch.exceeded(0, 130.0)


def test_holding_a_partition_resets_the_clock() -> None:
    watch = IdleWatch(limit_s=30)
    watch.idle_for(0, 100.0)
    assert not watch.exceeded(4, 125.0)  # a rebalance gave it partitions
    assert not watch.exceeded(0, 150.0)  # idle again since 150, not since 100
    assert watch.exceeded(0, 180.0)


def test_the_limit_spans_several_rebalances_and_at_least_30_s() -> None:
    assert limit_for(4.0) == 30.0
    assert limit_for(10.0) == 60.0
