"""Tests of `pipeline.sessions` with `pipeline.seen.first_within`: a key's first event in a
session, decided on replayable data."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.seen import FirstSeen, decode, encode, first_within
from pipeline.sessions import SESSION_HORIZON_MS, table_key

T0 = 1_700_000_000_000
H = SESSION_HORIZON_MS


@pytest.mark.parametrize(
    ("stored", "event_id", "received", "expected"),
    [
        (None, "e1", T0, (True, FirstSeen("e1", -1, T0))),
        (FirstSeen("e1", -1, T0), "e1", T0, (True, None)),  # the first, redelivered
        (FirstSeen("e1", -1, T0), "e1", T0 + H, (True, None)),
        (FirstSeen("e1", -1, T0), "e2", T0 + 1, (False, None)),
        (FirstSeen("e1", -1, T0), "e2", T0 - 5, (False, None)),  # received earlier, seen later
        (FirstSeen("e1", -1, T0), "e2", T0 + H, (False, None)),  # horizon inclusive
        (FirstSeen("e1", -1, T0), "e2", T0 + H + 1, (True, FirstSeen("e2", -1, T0 + H + 1))),
        (FirstSeen("e1", -1, T0), "e1", T0 + H + 1, (True, FirstSeen("e1", -1, T0 + H + 1))),
    ],
)
def test_first_within(
    stored: FirstSeen | None,
    event_id: str,
    received: int,
    expected: tuple[bool, FirstSeen | None],
) -> None:
    assert first_within(stored, event_id, received, H) == expected


def run(table: dict[bytes, bytes], stream: list[tuple[str, str, int]]) -> list[tuple[str, bool]]:
    """Feed (event id, key, receive time) through one session's table, as the agent would."""
    decided = []
    for event_id, name, received in stream:
        key = table_key("shop", "s1", name)
        assert key is not None
        is_first, new = first_within(decode(table.get(key)), event_id, received, H)
        if new is not None:
            table[key] = encode(new)
        decided.append((event_id, is_first))
    return decided


STREAM = [("e1", "buy", T0), ("e2", "buy", T0 + 1), ("e3", "view", T0 + 2), ("e4", "buy", T0 + 3)]


def test_only_the_first_of_each_key_counts() -> None:
    assert run({}, STREAM) == [("e1", True), ("e2", False), ("e3", True), ("e4", False)]


def test_replay_and_redelivery_decide_the_same() -> None:
    table: dict[bytes, bytes] = {}
    first = run(table, STREAM)
    assert run(table, STREAM) == first  # full replay over the kept table
    assert run(table, STREAM[1:3] + STREAM[:1]) == [("e2", False), ("e3", True), ("e1", True)]
    assert run({}, STREAM) == first  # replay after the table was lost


@given(st.lists(st.tuples(st.sampled_from(["e1", "e2", "e3"]), st.integers(0, 3 * H)), max_size=20))
def test_one_first_per_horizon(stream: list[tuple[str, int]]) -> None:
    stream = sorted(stream, key=lambda item: item[1])
    decided = run({}, [(event_id, "buy", received) for event_id, received in stream])
    if stream:
        first, window = stream[0][0], [r - stream[0][1] <= H for _, r in stream]
        assert decided[0] == (first, True)
        # within the horizon of the first, exactly the first's (re)deliveries are first
        for (event_id, is_first), inside in zip(decided, window, strict=True):
            if inside:
                assert is_first == (event_id == first)
    assert run({}, [(e, "buy", r) for e, r in stream]) == decided  # deterministic


def test_table_key() -> None:
    assert table_key("shop", "s1", "Event Key") == b"shop\x1fs1\x1fEvent Key"
    assert table_key("shop", "s1", "a") != table_key("shop", "s", "1\x1fa")
    assert table_key("shop", "", "a") is None


def test_codec() -> None:
    value = FirstSeen("6f1d4c1e-3b7a-5e0c-9a51-7c1f4b2d8e90", -1, T0)
    assert encode(value) == b"6f1d4c1e-3b7a-5e0c-9a51-7c1f4b2d8e90|-1|1700000000000"
    assert decode(encode(value)) == value
    assert decode(None) is None


@pytest.mark.parametrize("data", [b"", b"e1|x|5", b"1||5", b"1|e1|x", b"1|e1", b"1|a|b|c"])
def test_decode_refuses_what_encode_never_wrote(data: bytes) -> None:
    with pytest.raises(ValueError):
        decode(data)
