"""Tests of `pipeline.expiry`: sweeps by event time delete only what no decision still needs."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pipeline import seen, sessions
from pipeline.expiry import Expiry, Watermarks

T0 = 1_700_000_000_000
H = sessions.SESSION_HORIZON_MS
WINDOW = 60_000
GRACE = 3_600_000


def session_expiry() -> Expiry:
    return Expiry("sessions", H, GRACE, H // 4, seen.received_at)


def test_a_sweep_is_due_on_the_first_event_then_each_interval() -> None:
    expiry = session_expiry()
    assert expiry.due(0, T0)
    assert not expiry.due(0, T0 + H // 4 - 1)
    assert expiry.due(1, T0)  # partitions are independent
    assert expiry.due(0, T0 + H // 4)
    assert not expiry.due(0, T0 + H // 4 + 1)
    expiry.forget()  # a rebalance: the next event sweeps again
    assert expiry.due(0, T0 + H // 4 + 1)


def test_expired_keys_are_those_behind_horizon_and_grace() -> None:
    expiry = session_expiry()
    items = [
        (b"old", seen.encode(seen.FirstSeen("e1", -1, T0))),
        (b"edge", seen.encode(seen.FirstSeen("e2", -1, T0 + 1))),
        (b"new", seen.encode(seen.FirstSeen("e3", -1, T0 + H))),
    ]
    assert expiry.expired(items, T0 + H + GRACE + 1) == [b"old"]
    assert expiry.expired(items, T0 + H + GRACE) == []


late = st.integers(0, GRACE)


@given(stored=st.integers(T0, T0 + 3 * H), watermark=st.integers(T0, T0 + 3 * H), lag=late)
def test_a_deleted_session_key_was_ignored_by_every_hit_within_the_grace(
    stored: int, watermark: int, lag: int
) -> None:
    """Deleting an expired key changes no decision for a hit up to the grace behind the newest."""
    value = seen.FirstSeen("first", -1, stored)
    expired = session_expiry().expired([(b"k", seen.encode(value))], watermark) == [b"k"]
    ignored, _ = seen.first_within(value, "later", watermark - lag, H)
    assert ignored or not expired


@given(stored=st.integers(T0, T0 + 5 * GRACE), watermark=st.integers(T0, T0 + 5 * GRACE), lag=late)
def test_a_deleted_retry_key_was_ignored_by_every_hit_within_the_grace(
    stored: int, watermark: int, lag: int
) -> None:
    value = seen.FirstSeen("first", 1, stored)
    expiry = Expiry("retries", WINDOW, GRACE, WINDOW, seen.received_at)
    expired = expiry.expired([(b"k", seen.encode(value))], watermark) == [b"k"]
    verdict, _ = seen.judge_retry(value, "later", 2, watermark - lag, WINDOW)
    assert verdict is not seen.Verdict.RETRY or not expired


def test_keys_are_kept_no_longer_than_horizon_plus_grace() -> None:
    expiry = Expiry("retries", WINDOW, GRACE, WINDOW, seen.received_at)
    value = seen.encode(seen.FirstSeen("e", 1, T0))
    assert expiry.expired([(b"k", value)], T0 + WINDOW + GRACE + 1) == [b"k"]


def test_watermarks_never_move_back() -> None:
    marks = Watermarks()
    assert marks.advance(0, T0) == T0
    assert marks.advance(0, T0 - 1_000) == T0  # a late event
    assert marks.advance(1, T0 - 5) == T0 - 5
    assert marks.advance(0, T0 + 7) == T0 + 7
    marks.forget()
    assert marks.advance(0, T0 - 9) == T0 - 9
