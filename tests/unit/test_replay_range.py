"""Pure parts of `hitstream replay` and `hitstream dlq`: bounds, ranges, spans, selection."""

from __future__ import annotations

import pytest

from hitstream.replay_range import (
    Bound,
    StoredLetter,
    parse_bound,
    partition_range,
    position_condition,
    redrive_selection,
    spans,
    unfixable,
)
from schemas import rawhit, replay


@pytest.mark.parametrize(
    ("text", "bound"),
    [
        ("0", Bound("offset", 0)),
        ("123456", Bound("offset", 123456)),
        ("999999999999", Bound("offset", 999_999_999_999)),
        ("1000000000000", Bound("time", 1_000_000_000_000)),
        ("1790000000000", Bound("time", 1_790_000_000_000)),
        ("5000ms", Bound("time", 5000)),
        ("2026-11-22T00:00:00Z", Bound("time", 1_795_305_600_000)),
        ("2026-11-22T00:00:00+00:00", Bound("time", 1_795_305_600_000)),
        ("2026-11-22T01:00:00+01:00", Bound("time", 1_795_305_600_000)),
        ("2026-11-22", Bound("time", 1_795_305_600_000)),  # no zone: UTC
        ("2026-11-22T00:00:00.250", Bound("time", 1_795_305_600_250)),
        (" 42 ", Bound("offset", 42)),
    ],
)
def test_bounds_are_offsets_epoch_ms_or_iso_times(text: str, bound: Bound) -> None:
    assert parse_bound(text) == bound


@pytest.mark.parametrize("text", ["", "-5", "yesterday", "12ab", "ms", "2026-13-01"])
def test_bad_bounds_are_refused_with_what_is_accepted(text: str) -> None:
    with pytest.raises(ValueError, match="offset, epoch milliseconds"):
        parse_bound(text)


def test_offset_range_is_half_open_and_clamped_to_the_partition() -> None:
    assert partition_range(Bound("offset", 10), Bound("offset", 20), 0, 100, {}) == (10, 20)
    assert partition_range(Bound("offset", 0), None, 5, 100, {}) == (5, 100)  # compacted away
    assert partition_range(Bound("offset", 90), Bound("offset", 500), 0, 100, {}) == (90, 100)
    assert partition_range(Bound("offset", 30), Bound("offset", 20), 0, 100, {}) == (30, 30)
    assert partition_range(Bound("offset", 200), None, 0, 100, {}) == (100, 100)


def test_time_bounds_use_kafkas_offsets_and_none_means_the_end() -> None:
    start, stop = Bound("time", 1_000), Bound("time", 2_000)
    assert partition_range(start, stop, 0, 100, {"from": 40, "to": 70}) == (40, 70)
    # nothing at or after the stop time: up to the end; nothing after the start: empty
    assert partition_range(start, stop, 0, 100, {"from": 40, "to": None}) == (40, 100)
    assert partition_range(start, stop, 0, 100, {"from": None, "to": None}) == (100, 100)
    # a time range mixed with an offset bound
    assert partition_range(start, Bound("offset", 50), 0, 100, {"from": 40}) == (40, 50)


def test_spans_compress_offsets_into_inclusive_runs() -> None:
    assert spans([]) == []
    assert spans([7, 1, 3, 2, 2]) == [(1, 3), (7, 7)]
    assert spans(range(5, 10)) == [(5, 9)]


def test_position_condition_covers_every_event_of_the_offsets() -> None:
    assert position_condition([]) == "0"
    assert position_condition([(1, 2)]) == "src_pos BETWEEN 1024 AND 3071"
    assert position_condition([(0, 0), (5, 5)]) == (
        "src_pos BETWEEN 0 AND 1023 OR src_pos BETWEEN 5120 AND 6143"
    )


def letter(
    stage: str = "validate",
    raw: str | None = None,
    partition: int = 0,
    position: int = 0,
    hit_id: str = "h1",
) -> StoredLetter:
    hit = rawhit.RawHit(hit_id=hit_id, kind="optimizely", received_at_ms=1, query="a=1")
    return StoredLetter(
        dlq_id="d",
        hit_id=hit_id,
        stage=stage,
        reason="missing_user_id",
        detail="",
        source="optimizely",
        received_at_ms=1,
        raw=rawhit.encode(hit).decode() if raw is None else raw,
        partition=partition,
        position=position,
    )


def test_only_validate_letters_holding_an_envelope_can_be_redriven() -> None:
    assert unfixable(letter()) is None
    assert "stage gateway" in (unfixable(letter(stage="gateway")) or "")
    assert "stage sink" in (unfixable(letter(stage="sink")) or "")
    assert "envelope_not_json" in (unfixable(letter(raw="not json")) or "")
    assert "envelope_version" in (unfixable(letter(raw='{"v": 2}')) or "")


def test_redrive_selection_publishes_each_hit_once_in_order() -> None:
    bad_keys = [letter(position=3 * 1024 + 1), letter(position=3 * 1024 + 2)]  # one beacon
    copied = letter(position=9 * 1024)  # the same hit again: an unsettled earlier re-drive
    chosen, skipped = redrive_selection(
        [
            letter(partition=1, position=5 * 1024, hit_id="h2"),
            *bad_keys,
            copied,
            letter(stage="gateway", hit_id="h3"),
        ]
    )
    assert [(x.hit_id, x.partition, x.offset) for x in chosen] == [("h1", 0, 3), ("h2", 1, 5)]
    assert [why for _, why in skipped] == ["stage gateway: the raw hit was not kept whole"]


def test_replay_header_marks_a_copy_and_nothing_else() -> None:
    name, value = replay.header(3, 1200)
    assert replay.replay_of([(name, value)]) == "3@1200"
    assert replay.replay_of({name: value}) == "3@1200"
    assert replay.replay_of([("other", b"x")]) is None
    assert replay.replay_of(None) is None
    assert replay.replay_of([]) is None
