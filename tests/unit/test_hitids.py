"""Hit-id dedup: the pure decision under replay, and the gateway key of keyless hits."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from pipeline import hitids
from pipeline.expiry import Expiry
from pipeline.validate import Validated, validate
from schemas import rawhit
from schemas.formats import ParseContext
from schemas.settings import Settings
from tests.unit.recording_publisher import RecordingPublisher

RECEIVED = 1_700_000_000_000


def run(offsets: list[int], table: dict[str, bytes], hit: str = "h1") -> list[int]:
    """Feed copies of `hit` at `offsets` through the decision; return the offsets processed."""
    processed = []
    for offset in offsets:
        duplicate, stored = hitids.first_copy(hitids.decode(table.get(hit)), offset, RECEIVED)
        if stored is not None:
            table[hit] = hitids.encode(stored)
        if not duplicate:
            processed.append(offset)
    return processed


def test_the_first_copy_is_processed_and_later_copies_are_dropped() -> None:
    assert run([10, 57, 90], {}) == [10]


def test_a_redelivered_first_copy_is_still_the_first() -> None:
    table: dict[str, bytes] = {}
    assert run([10, 57], table) == [10]
    # the worker died before committing: Kafka redelivers from offset 10, the table survived
    assert run([10, 57], table) == [10]
    assert hitids.decode(table["h1"]) == hitids.FirstCopy(10, RECEIVED)


@pytest.mark.parametrize("redelivered_from", [0, 1, 2])
def test_any_replay_processes_exactly_the_first_copies(redelivered_from: int) -> None:
    log = [(0, "a"), (1, "b"), (2, "a"), (3, "c"), (4, "b"), (5, "a")]
    table: dict[str, bytes] = {}
    first = [o for o, h in log if run([o], table, h)]
    again = [o for o, h in log[redelivered_from:] if run([o], table, h)]
    assert first == [0, 1, 3]
    assert again == [o for o in first if o >= redelivered_from]


def test_identity_of_reads_events_and_dead_letters() -> None:
    context = ParseContext(late_horizon_ms=86_400_000)

    def hit(query: str) -> bytes:
        return rawhit.encode(
            rawhit.RawHit(hit_id="h9", kind="optimizely", received_at_ms=RECEIVED, query=query)
        )

    assert hitids.identity_of(validate(hit("a=1&u=v&n=e"), 0, 1, context)) == ("h9", RECEIVED)
    assert hitids.identity_of(validate(hit("a=1&n=e"), 0, 1, context)) == ("h9", RECEIVED)
    assert hitids.identity_of(validate(b"\xff not json", 0, 1, context)) == ("", 0)
    assert hitids.identity_of(Validated()) == ("", 0)


def test_expiry_keeps_a_key_for_the_grace_and_deletes_it_after() -> None:
    grace = 3_600_000
    expiry = Expiry("hit_ids", hitids.HORIZON_MS, grace, grace // 4, hitids.received_at)
    value = hitids.encode(hitids.FirstCopy(5, RECEIVED))
    assert expiry.expired([(b"h1", value)], RECEIVED + grace) == []
    assert expiry.expired([(b"h1", value)], RECEIVED + grace + 1) == [b"h1"]


async def test_a_hit_without_visitor_is_keyed_by_its_hit_id(tmp_path: Path) -> None:
    """Without a key the partitioner would pick a random partition for each copy."""
    publisher = RecordingPublisher()
    app = create_app(Settings(spool_dir=str(tmp_path / "spool")), publisher)
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/event?a=1&n=no_visitor")).status == 200
        assert (await client.get("/event?a=1&u=v&n=e")).status == 200
    [(_, value, key), (_, _, keyed)] = publisher.sent
    assert key == rawhit.decode(value).hit_id.encode()
    assert keyed == b"1:v"
