"""Tests of `pipeline.decide`, the processing stage's decisions, with dicts for the tables.

Each test feeds `hits.raw` messages through `decide` as the worker would (apply the updates, keep
the tables) and checks the rows, dead letters, copies, retries and table writes it gives.
"""

from __future__ import annotations

import orjson

from pipeline import seen
from pipeline.decide import CONVERSIONS, SEEN, SESSIONS, TABLES, Context, Decided, RawMessage
from pipeline.decide import decide as decide_batch
from pipeline.definitions import index
from pipeline.rows import COLUMNS
from schemas import monetate, rawhit
from schemas import monetate_definitions as defs
from schemas.formats import ParseContext
from tests.unit.factories import RECEIVED, octeth_hit, raw_hit

CONTEXT = Context(ParseContext(late_horizon_ms=7 * 86_400_000), b"secret", 3_600_000)
Tables = dict[str, dict[bytes, bytes]]


def tables() -> Tables:
    return {name: {} for name in TABLES}


def optimizely(hit_id: str, query: str = "a=1&u=v1&n=buy&x100=7&g=100,555", at: int = 0) -> bytes:
    return rawhit.encode(raw_hit(hit_id=hit_id, received_at_ms=RECEIVED + at, query=query))


def run(
    state: Tables,
    *messages: tuple[int, bytes],
    context: Context = CONTEXT,
    deliberate: bool = False,
) -> Decided:
    """Decide (offset, value) messages of partition 0 as one batch and apply the updates."""
    batch = [RawMessage(0, offset, b"k", value, deliberate) for offset, value in messages]
    decided = decide_batch(batch, state, context)
    for name, values in decided.updates.items():
        state[name].update(values)
    return decided


def rows_of(decided: Decided, table: str) -> list[dict[str, object]]:
    """The rows of `table`, each by column name (the catalogue, `pipeline.rows.COLUMNS`)."""
    return [
        dict(zip(COLUMNS[table], row, strict=True))
        for b in decided.bundles
        for row in b.tables.get(table, [])
    ]


def test_a_first_hit_gives_its_rows_with_one_table_write() -> None:
    state = tables()
    decided = run(state, (5, optimizely("h1")))
    assert [len(rows_of(decided, t)) for t in ("events", "impressions", "conversions")] == [1, 1, 1]
    assert [e.experiment for e in decided.exposures] == ["100"]
    assert sum(len(v) for v in decided.updates.values()) == 1  # the retry key serves both
    [(key, value)] = state[SEEN].items()
    assert key.startswith(b"r\x1f1\x1f") and seen.decode(value).offset == 5  # type: ignore[union-attr]


def test_a_later_copy_of_a_hit_is_dropped_and_a_redelivered_first_is_kept() -> None:
    state = tables()
    first = run(state, (5, optimizely("h1")))
    copy = run(state, (9, optimizely("h1")))
    assert copy.bundles == [] and [c.offset for c in copy.copies] == [9] and not copy.exposures
    again = run(state, (5, optimizely("h1")))  # the first copy, redelivered after a crash
    assert again.bundles == first.bundles and not again.copies


def test_a_batch_sees_its_own_writes() -> None:
    decided = run(tables(), (5, optimizely("h1")), (6, optimizely("h1")), (7, optimizely("h2")))
    assert [c.offset for c in decided.copies] == [6]
    assert len(rows_of(decided, "events")) == 2
    [retry] = [r for r in rows_of(decided, "events") if r["hit_id"] == "h2"]
    assert retry["duplicate_of"] is not None  # h2 is a client retry of h1's event


def test_a_client_retry_is_stored_once_as_an_event_and_its_copy_dropped() -> None:
    state = tables()
    [first] = rows_of(run(state, (5, optimizely("h1"))), "events")
    retry = run(state, (6, optimizely("h2")))  # the same query again: an exact client retry
    [event] = rows_of(retry, "events")
    assert event["duplicate_of"] == first["event_id"] and retry.retries == 1
    assert not rows_of(retry, "impressions") and not rows_of(retry, "conversions")
    assert not retry.exposures
    assert seen.hit_key("h2") in state[SEEN]  # a retry is keyed by hit id too
    assert run(state, (8, optimizely("h2"))).copies  # so a copy of the retry is dropped
    redelivered = run(state, (6, optimizely("h2")))
    assert rows_of(redelivered, "events") == [event]


def test_a_dead_letter_is_stored_once_however_often_its_hit_arrives() -> None:
    state = tables()
    bad = optimizely("h3", query="a=1&n=no_visitor")
    decided = run(state, (1, bad))
    assert [d.reason for d in decided.dead_letters] == ["missing_user_id"]
    assert rows_of(decided, "dead_letters") and seen.hit_key("h3") in state[SEEN]
    assert run(state, (2, bad)).copies and not run(state, (1, bad)).copies


def test_a_deliberate_copy_is_decided_again_with_the_same_ids_and_no_writes() -> None:
    state = tables()
    first = run(state, (5, optimizely("h1")), (6, optimizely("h3", query="a=1&n=x")))
    before = {name: dict(values) for name, values in state.items()}
    replayed = run(
        state, (20, optimizely("h1")), (21, optimizely("h3", query="a=1&n=x")), deliberate=True
    )
    assert not replayed.copies and state == before
    ids = [r["event_id"] for r in rows_of(replayed, "events")]
    assert ids == [r["event_id"] for r in rows_of(first, "events")]
    assert rows_of(replayed, "dead_letters") != []


def test_retry_state_older_than_the_window_starts_a_new_window() -> None:
    state = tables()
    run(state, (1, optimizely("h1")))
    later = run(state, (2, optimizely("h2", at=CONTEXT.retry_window_ms + 1)))
    assert later.retries == 0 and rows_of(later, "impressions")


def monetate_hit(hit_id: str, *keys: str, session: str = "s1", seqs: tuple[int, ...] = ()) -> bytes:
    body = {
        "v": 1,
        "site": "shop",
        "visitor": "v1",
        "session": session,
        "page": {"url": "https://s/", "device": "mobile", "view": "pv1"},
        "experiments": {"e": "A"},
        "events": [
            {"key": k, "at": RECEIVED, **({"seq": seqs[i]} if seqs else {})}
            for i, k in enumerate(keys)
        ],
    }
    _, hit = monetate.direct_hit(orjson.dumps(body), hit_id=hit_id, received_at_ms=RECEIVED)
    return rawhit.encode(hit)


def test_monetate_first_in_session_and_definitions() -> None:
    known = index([defs.EventDefinition(site="shop", key="buy", title="Buy", conditions=())])
    context = Context(
        CONTEXT.parse, b"s", CONTEXT.retry_window_ms, lambda tenant, key: known.get((tenant, key))
    )
    state = tables()
    decided = run(state, (1, monetate_hit("m1", "buy", "buy", "view")), context=context)
    events = rows_of(decided, "events")
    decided_rows = [(r["name"], r["first_in_session"], r["counted"]) for r in events]
    assert decided_rows == [("buy", 1, 1), ("buy", 0, 1), ("view", 1, 0)]
    assert len(state[SESSIONS]) == 2
    other = run(state, (2, monetate_hit("m2", "buy", session="s2")), context=context)
    # a new session counts again
    assert [r["first_in_session"] for r in rows_of(other, "events")] == [1]


def test_octeth_conversions_count_once_per_list_and_conversion_id() -> None:
    def conversion(hit_id: str, visitor: str) -> bytes:
        body = {
            "APIKey": "k",
            "ListID": 94,
            "uuid": visitor,
            "event": "conversion",
            "properties": {"conversion-id": "o-2", "conversion-name": "O", "conversion-value": 5},
        }
        return rawhit.encode(octeth_hit(body, hit_id))

    state = tables()
    first = run(state, (1, conversion("o1", "u1")))
    second = run(state, (2, conversion("o2", "u2")))
    flags = [r["is_duplicate"] for d in (first, second) for r in rows_of(d, "conversions")]
    assert flags == [0, 1] and len(state[CONVERSIONS]) == 1
    assert first.triggers and second.triggers  # non-silent Octeth events go to hits.triggers


def test_copy_detection_undoes_what_the_copy_wrote() -> None:
    """A hit whose second event turns out a copy (same event, another offset) leaves no write."""
    state = tables()
    run(state, (1, monetate_hit("m1", "x", "b", seqs=(0, 1))))
    before = dict(state[SEEN])
    decided = run(state, (2, monetate_hit("m1", "a", "b", seqs=(5, 1))))
    assert [c.offset for c in decided.copies] == [2] and not decided.bundles
    assert state[SEEN] == before  # a's retry key, written before b was found a copy, undone
