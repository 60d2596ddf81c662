"""The gateway's murmur2 partitioner gives Kafka's partitions (Java test vectors and aiokafka's)."""

from __future__ import annotations

import random

import pytest
from aiokafka.partitioner import DefaultPartitioner

from gateway.partitioner import murmur2, partition

# org.apache.kafka.common.utils.UtilsTest#testMurmur2 (signed Java ints).
JAVA = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize(("data", "expected"), JAVA.items(), ids=[k.decode() for k in JAVA])
def test_java_vectors(data: bytes, expected: int) -> None:
    assert murmur2(data) == expected & 0xFFFFFFFF


def test_same_partition_as_aiokafka_for_random_keys() -> None:
    rng = random.Random(7)
    partitions = list(range(12))
    default = DefaultPartitioner()
    for _ in range(3000):
        key = rng.randbytes(rng.randint(0, 90))
        assert partition(key, partitions, partitions) == default(key, partitions, partitions)


def test_no_key_picks_an_available_partition() -> None:
    assert {partition(None, [0, 1, 2, 3], [2]) for _ in range(20)} == {2}
