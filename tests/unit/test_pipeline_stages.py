"""The pure stages: validate, retry decision, derive, and the sink's replay recognition."""

from __future__ import annotations

import pytest

from pipeline import seen
from pipeline.derive import derive
from pipeline.gaps import OffsetWatch
from pipeline.progress import Progress
from pipeline.rows import COLUMNS, RowBundle, builder, dead_letter_bundle, dead_letter_row
from pipeline.validate import validate
from schemas import rawhit
from schemas.event import Lineage
from schemas.formats import ParseContext
from tests.unit.factories import event, letter, raw_hit

CONTEXT = ParseContext(late_horizon_ms=7 * 86_400_000)


def raw(query: str, **headers: str) -> bytes:
    return rawhit.encode(raw_hit(query=query, headers={"host": "hits.example", **headers}))


# --- validate ---------------------------------------------------------------------------------


def test_validate_gives_events_with_their_lineage() -> None:
    validated = validate(raw("a=1&u=v1&n=e&x2=3"), partition=3, offset=77, context=CONTEXT)
    result = validated.events
    assert len(result) == 1 and validated.dead_letters == ()
    assert result[0].lineage == Lineage(partition=3, offset=77, index=0)
    assert (result[0].tenant, result[0].visitor_id, result[0].experiments) == (
        "1",
        "v1",
        {"2": "3"},
    )


@pytest.mark.parametrize(
    ("data", "reason", "stage"),
    [
        (b"\xff\xfe not json", "envelope_not_json", "validate"),
        (b"[1, 2]", "envelope_not_object", "validate"),
        (b'{"v": 2}', "envelope_version", "validate"),
        (raw("a=1&n=e"), "missing_user_id", "validate"),
        (
            raw("a=1&u=v", **{rawhit.REJECT_HEADER: "body_too_large: more than 65536 bytes"}),
            "body_too_large",
            "gateway",
        ),
    ],
    ids=["not-json", "not-object", "version", "no-u", "gateway-refused"],
)
def test_validate_turns_bad_input_into_a_dead_letter(data: bytes, reason: str, stage: str) -> None:
    validated = validate(data, partition=1, offset=9, context=CONTEXT)
    assert validated.events == () and len(validated.dead_letters) == 1
    result = validated.dead_letters[0]
    assert (result.reason, result.stage, result.lineage.offset) == (reason, stage, 9)
    assert result.raw  # the raw message travels with its dead letter


def test_unsupported_kind_is_a_dead_letter_not_a_crash() -> None:
    data = rawhit.encode(rawhit.RawHit(hit_id="h", kind="native", received_at_ms=1))
    [result] = validate(data, 0, 0, CONTEXT).dead_letters
    assert result.reason == "unsupported_kind"


# --- retries and copies (pipeline/seen.py) ---------------------------------------------------


def test_first_event_is_not_a_retry_and_is_remembered() -> None:
    verdict, stored = seen.judge_retry(None, "e1", 7, 1000, window_ms=60_000)
    assert verdict is seen.Verdict.FIRST and stored == seen.FirstSeen("e1", 7, 1000)


def test_repeat_within_window_is_a_retry_of_the_first() -> None:
    first = seen.FirstSeen("e1", 7, 1000)
    assert seen.judge_retry(first, "e2", 9, 50_000, 60_000) == (seen.Verdict.RETRY, None)


def test_redelivered_first_event_is_still_the_first() -> None:
    first = seen.FirstSeen("e1", 7, 1000)
    assert seen.judge_retry(first, "e1", 7, 1000, 60_000) == (seen.Verdict.FIRST, None)


def test_the_same_event_at_another_offset_is_a_copy_unless_deliberate() -> None:
    first = seen.FirstSeen("e1", 7, 1000)
    assert seen.judge_retry(first, "e1", 8, 1000, 60_000) == (seen.Verdict.COPY, None)
    assert seen.judge_retry(first, "e1", 8, 1000, 60_000, deliberate=True) == (
        seen.Verdict.FIRST,
        None,
    )


def test_repeat_after_window_starts_a_new_window() -> None:
    first = seen.FirstSeen("e1", 7, 1000)
    assert seen.judge_retry(first, "e3", 9, 61_001, 60_000) == (
        seen.Verdict.FIRST,
        seen.FirstSeen("e3", 9, 61_001),
    )


@pytest.mark.parametrize(
    "value", [seen.FirstSeen("0f6b-uuid", 12, 1_700_000_000_123), seen.FirstSeen("", -1, 0)]
)
def test_first_seen_round_trips(value: seen.FirstSeen) -> None:
    assert seen.decode(seen.encode(value)) == value
    assert seen.received_at(seen.encode(value)) == value.received_at_ms
    assert seen.decode(None) is None


def test_a_value_no_codec_wrote_is_refused() -> None:
    with pytest.raises(ValueError):
        seen.decode(b"no separators")


# --- derive -----------------------------------------------------------------------------------


def named(bundle: RowBundle, table: str) -> list[dict[str, object]]:
    return [dict(zip(COLUMNS[table], row, strict=True)) for row in bundle.tables[table]]


def test_goal_equal_to_an_experiment_is_an_impression_others_are_conversions() -> None:
    bundle = derive(event())
    assert len(bundle.tables["events"]) == 1
    [impression] = named(bundle, "impressions")
    assert (impression["experiment_id"], impression["variation_id"]) == ("100", "7")
    assert impression["visitor_id"] == "v1"
    conversions = named(bundle, "conversions")
    assert [row["goal_id"] for row in conversions] == ["555", "556"]
    assert all(row["value_cents"] == 500 for row in conversions)
    assert all((row["src_partition"], row["src_pos"]) == (2, 40 * 1024) for row in conversions)


def test_derived_ids_are_deterministic_and_distinct() -> None:
    first, again = derive(event()), derive(event())
    assert first.tables == again.tables
    ids = [row["conversion_id"] for row in named(first, "conversions")]
    ids += [row["impression_id"] for row in named(first, "impressions")]
    assert len(set(ids)) == 3


def test_event_without_goals_is_only_an_event() -> None:
    assert set(derive(event(goals=())).tables) == {"events"}


def test_retry_duplicate_is_stored_as_an_event_but_derives_nothing() -> None:
    bundle = derive(event(), duplicate_of="e0")
    assert set(bundle.tables) == {"events"}
    assert named(bundle, "events")[0]["duplicate_of"] == "e0"


def test_bundle_position_orders_events_within_the_raw_partition() -> None:
    a = derive(event(lineage=Lineage(partition=2, offset=40, index=1)))
    b = derive(event(lineage=Lineage(partition=2, offset=41, index=0)))
    assert a.partition == b.partition == 2 and a.position < b.position


def test_a_row_builder_follows_the_catalogue_order_and_refuses_a_missing_or_unknown_column() -> (
    None
):
    values = {column: repr(column) for column in COLUMNS["octeth_properties"]}
    assert builder("octeth_properties", "", values)() == list(COLUMNS["octeth_properties"])
    with pytest.raises(ValueError, match="no value for \\['key'\\]"):
        builder("octeth_properties", "", {c: "1" for c in values if c != "key"})
    with pytest.raises(ValueError, match="not its columns: \\['nope'\\]"):
        builder("octeth_properties", "", {**values, "nope": "1"})


def test_a_dead_letter_row_names_its_columns_and_clamps_its_time() -> None:
    old = letter(received_at_ms=-(10**15), raw="r", lineage=Lineage(partition=3, offset=9, index=2))
    row = dict(zip(COLUMNS["dead_letters"], dead_letter_row(old), strict=True))
    assert (row["hit_id"], row["stage"], row["raw"]) == ("h1", "validate", "r")
    assert row["received_at"] == -2208988800000
    assert (row["src_partition"], row["src_pos"]) == (3, 9 * 1024 + 2)
    assert dead_letter_row(old, 5)[-1] == 5


# --- progress (replay recognition) ------------------------------------------------------------


def bundle(position: int, partition: int = 0, stage: str = "derive") -> RowBundle:
    return RowBundle(stage, partition, position, {"events": [[f"row{position}"]]})


def test_plan_skips_positions_already_stored() -> None:
    progress = Progress()
    progress.load({0}, [("events", "derive", 0, 5)])
    [batch] = progress.plan([bundle(4), bundle(5), bundle(6), bundle(7)])
    assert batch.rows == [["row6"], ["row7"]]
    assert batch.ranges == {("derive", 0): (6, 7)}


def test_plan_skips_redeliveries_inside_one_batch() -> None:
    progress = Progress()
    progress.load({0}, [])
    [batch] = progress.plan([bundle(1), bundle(2), bundle(1), bundle(2), bundle(3)])
    assert batch.rows == [["row1"], ["row2"], ["row3"]]


def test_commit_advances_marks_so_a_replay_stores_nothing() -> None:
    progress = Progress()
    progress.load({0, 1}, [])
    bundles = [bundle(1), bundle(2, partition=1), bundle(3)]
    for batch in progress.plan(bundles):
        progress.commit(batch)
    assert progress.plan(bundles) == []


def test_marks_are_per_table_stage_and_partition() -> None:
    progress = Progress()
    progress.load({0}, [("events", "derive", 0, 10)])
    batches = progress.plan(
        [bundle(3, partition=0), dead_letter_bundle(letter()), bundle(3, partition=1)]
    )
    assert {b.table: len(b.rows) for b in batches} == {"events": 1, "dead_letters": 1}


def test_unloaded_partitions_are_read_once_until_a_rebalance() -> None:
    progress = Progress()
    assert progress.unloaded([bundle(1, 0), bundle(1, 3)]) == {0, 3}
    progress.load({0, 3}, [])
    assert progress.unloaded([bundle(2, 3)]) == set()
    progress.forget()
    assert progress.unloaded([bundle(2, 3)]) == {3}


def test_dedup_token_is_deterministic_for_the_same_ranges() -> None:
    progress = Progress()
    progress.load({0}, [])
    [a] = progress.plan([bundle(1), bundle(2)])
    [b] = Progress(loaded={0}).plan([bundle(1), bundle(2)])
    [c] = Progress(loaded={0}).plan([bundle(1), bundle(3)])
    assert a.dedup_token() == b.dedup_token() != c.dedup_token()


# --- offset holes (faust #596 guard) ----------------------------------------------------------


def test_contiguous_offsets_and_redeliveries_pass() -> None:
    watch = OffsetWatch()
    assert [watch.check("t", 0, o, committed=3) for o in (3, 4, 5, 4, 5, 6)] == [None] * 6


def test_a_hole_after_delivered_messages_is_reported() -> None:
    watch = OffsetWatch()
    assert watch.check("t", 3, 3, committed=3) is None
    assert watch.check("t", 3, 4, committed=None) is None
    assert watch.check("t", 3, 15, committed=None) == "t[3]: got offset 15, expected 5"


def test_a_hole_at_the_head_is_reported_against_the_committed_offset() -> None:
    assert OffsetWatch().check("t", 1, 9, committed=5) == "t[1]: got offset 9, expected 5"


def test_partitions_are_watched_separately_and_reset_on_rebalance() -> None:
    watch = OffsetWatch()
    watch.check("t", 0, 10, committed=10)
    assert watch.check("t", 1, 0, committed=None) is None
    watch.reset()
    assert watch.check("t", 0, 4, committed=4) is None


def test_every_allowed_log_level_is_one_faust_accepts() -> None:
    """HITS_LOG_LEVEL=WARNING once made the worker exit at start ('warning' is not Faust's)."""
    from faust.cli.base import LOGLEVELS

    from pipeline.worker import _FAUST_LEVELS
    from schemas.settings import SettingsError, load_settings

    for level in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        try:
            load_settings({"HITS_LOG_LEVEL": level})
        except SettingsError:
            continue
        assert _FAUST_LEVELS[level].upper() in LOGLEVELS  # Faust compares case-insensitively
