"""The gateway spool: durable, ordered, bounded, and honest about torn writes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.spool import Record, Spool, SpoolFull, encode_record


def record(i: int) -> Record:
    return Record("hits.raw", f"k{i}".encode(), f"value-{i}".encode() * 3)


async def test_appends_come_back_in_order_and_survive_a_restart(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20)
    await asyncio.gather(*(spool.append(record(i)) for i in range(50)))
    again = Spool(tmp_path, 1 << 20)  # a new process after kill -9
    assert again.records == 50
    assert [r for _, _, r in again.peek(100)] == [record(i) for i in range(50)]


async def test_acknowledged_records_are_not_read_again(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20)
    for i in range(10):
        await spool.append(record(i))
    batch = spool.peek(4)
    segment, offset, _ = batch[-1]
    spool.acknowledge(segment, offset, len(batch))
    assert [r for _, _, r in Spool(tmp_path, 1 << 20).peek(100)] == [
        record(i) for i in range(4, 10)
    ]


async def test_fully_drained_spool_leaves_no_segment_and_keeps_working(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20)
    await spool.append(record(1))
    segment, offset, _ = spool.peek(1)[0]
    spool.acknowledge(segment, offset, 1)
    assert spool.records == 0 and not list(tmp_path.glob("*.seg"))
    await spool.append(record(2))
    assert [r for _, _, r in Spool(tmp_path, 1 << 20).peek(10)] == [record(2)]


async def test_a_torn_last_frame_is_dropped_not_misread(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20)
    await spool.append(record(1))
    [segment_file] = tmp_path.glob("*.seg")
    with segment_file.open("ab") as out:
        out.write(encode_record(record(2))[:-3])  # a crash in the middle of a write
    assert [r for _, _, r in Spool(tmp_path, 1 << 20).peek(10)] == [record(1)]


async def test_a_full_spool_refuses_instead_of_growing(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 200)
    await spool.append(record(1))
    with pytest.raises(SpoolFull):
        for i in range(20):
            await spool.append(record(i))
    assert spool.full()


async def test_a_drain_racing_appends_loses_nothing(tmp_path: Path) -> None:
    """The drainer acknowledges (in a thread) while appends are written (in threads): found by
    the chaos suite, where a drained-empty spool deleted the segment a new append was written to.
    """
    spool = Spool(tmp_path, 1 << 30)
    drained: list[Record] = []
    appended = 0
    done = False

    async def drain() -> None:
        while True:
            batch = await asyncio.to_thread(spool.peek, 7)
            if not batch:
                if done:
                    return
                await asyncio.sleep(0)
                continue
            drained.extend(r for _, _, r in batch)
            segment, offset, _ = batch[-1]
            await asyncio.to_thread(spool.acknowledge, segment, offset, len(batch))

    drainer = asyncio.create_task(drain())
    for round_ in range(1000):
        await asyncio.gather(*(spool.append(record(round_ * 3 + j)) for j in range(3)))
        appended += 3
        await asyncio.sleep(0)
    done = True
    await asyncio.wait_for(drainer, 30)
    left = [r for _, _, r in Spool(tmp_path, 1 << 30).peek(10_000)]
    assert sorted(r.key for r in drained + left) == sorted(record(i).key for i in range(appended))
    assert (spool.records, left) == (0, [])
