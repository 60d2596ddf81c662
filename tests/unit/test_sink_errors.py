"""The sink's verdict on ClickHouse failures, and its retry with the same dedup token.

A cluster's passing failures (Keeper away, replicas stale or lost, every connection try failed)
must be waited out: before they were, ClickHouse's NO_ZOOKEEPER made the sink treat a batch as
refused data and dead-letter good rows one by one.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from clickhouse_connect.driver.exceptions import (
    DatabaseError,
    DataError,
    OperationalError,
    ProgrammingError,
)

from pipeline import sink as sink_module
from pipeline.rows import RowBundle, dead_letter_bundle
from pipeline.sink import ClickHouseSink
from pipeline.sink_errors import Source, Verdict, classify, source_of, verdict
from schemas.deadletter import DeadLetter
from schemas.event import Lineage

CLUSTER_CODES = {225: "NO_ZOOKEEPER", 279: "ALL_CONNECTION_TRIES_FAILED"}
CLUSTER_CODES |= {369: "ALL_REPLICAS_ARE_STALE", 999: "KEEPER_EXCEPTION"}


@pytest.mark.parametrize(
    ("source", "code", "expected"),
    [
        *((Source.SERVER, code, Verdict.RETRY) for code in CLUSTER_CODES),
        (Source.SERVER, 159, Verdict.RETRY),  # TIMEOUT_EXCEEDED
        (Source.SERVER, 209, Verdict.RETRY),  # SOCKET_TIMEOUT
        (Source.SERVER, 319, Verdict.RETRY),  # UNKNOWN_STATUS_OF_INSERT
        (Source.SERVER, 415, Verdict.RETRY),  # ALL_REPLICAS_LOST
        (Source.SERVER, 286, Verdict.RETRY),  # UNSATISFIED_QUORUM_FOR_PREVIOUS_WRITE
        (Source.SERVER, 27, Verdict.REFUSED),  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
        (Source.SERVER, 53, Verdict.REFUSED),  # TYPE_MISMATCH
        (Source.SERVER, 60, Verdict.REFUSED),  # UNKNOWN_TABLE
        (Source.SERVER, None, Verdict.RETRY),  # a proxy's 502 or 503, no ClickHouse code
        (Source.NO_ANSWER, None, Verdict.RETRY),
        (Source.NO_ANSWER, 62, Verdict.RETRY),  # a code in a transport error's text is not one
        (Source.CLIENT, None, Verdict.REFUSED),
        (Source.OTHER, None, Verdict.BUG),
        (Source.OTHER, 225, Verdict.BUG),
    ],
)
def test_classify(source: Source, code: int | None, expected: Verdict) -> None:
    assert classify(source, code) is expected


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (DatabaseError("Received ClickHouse exception, code: 225", code=225), Verdict.RETRY),
        (DatabaseError("Received ClickHouse exception, code: 999", code=999), Verdict.RETRY),
        (DatabaseError("Code: 369. DB::Exception: All replicas are stale"), Verdict.RETRY),
        (DatabaseError("Code: 279. DB::Exception: All connection tries failed"), Verdict.RETRY),
        (DatabaseError("Received ClickHouse exception, code: 53", code=53), Verdict.REFUSED),
        (DatabaseError("Code: 27. DB::Exception: Cannot parse input"), Verdict.REFUSED),
        (DatabaseError("HTTP driver received HTTP status 503"), Verdict.RETRY),
        (OperationalError("Error executing HTTP request attempt 1"), Verdict.RETRY),
        # a server error of a request clickhouse-connect had to resend is an OperationalError
        (OperationalError("code: 62", code=62), Verdict.REFUSED),
        (OperationalError("code: 225", code=225), Verdict.RETRY),
        (TimeoutError("timed out"), Verdict.RETRY),
        (ConnectionRefusedError(111, "Connection refused"), Verdict.RETRY),
        (ConnectionResetError(), Verdict.RETRY),
        (DataError("value out of range for UInt16"), Verdict.REFUSED),
        (ProgrammingError("Unrecognized column"), Verdict.REFUSED),
        (KeyError("src_partition"), Verdict.BUG),
        (ValueError("Code: 225. looks like one, is not"), Verdict.BUG),
    ],
)
def test_verdict_of_what_clickhouse_connect_raises(exc: BaseException, expected: Verdict) -> None:
    assert verdict(exc) is expected, source_of(exc)


def letters(n: int) -> list[RowBundle]:
    return [
        dead_letter_bundle(
            DeadLetter(
                hit_id=f"h{i}",
                stage="validate",
                reason="missing_user_id",
                detail="",
                source="optimizely",
                received_at_ms=1_700_000_000_000,
                raw=f"raw {i}",
                lineage=Lineage(partition=0, offset=i),
            )
        )
        for i in range(n)
    ]


class FlakyClient:
    """Fails the first `failures` inserts with `error` (after storing them when `stored`)."""

    def __init__(self, failures: list[BaseException], stored: bool) -> None:
        self.failures = failures
        self.stored = stored
        self.attempts: list[tuple[str, int]] = []  # (dedup token, rows)
        self.rows: dict[str, int] = {}  # dedup token -> rows, as ClickHouse dedups them

    def insert(self, table: str, rows: list[Any], **kwargs: Any) -> None:
        token = kwargs["settings"]["insert_deduplication_token"]
        self.attempts.append((token, len(rows)))
        if self.failures:
            error = self.failures.pop(0)
            if self.stored:
                self.rows[token] = len(rows)
            raise error
        self.rows[token] = len(rows)

    def query(self, *args: Any, **kwargs: Any) -> Any:  # the sink's marks: none stored yet
        return SimpleNamespace(result_rows=[])

    def close(self) -> None:
        pass


@pytest.fixture(autouse=True)
def no_back_off(monkeypatch: pytest.MonkeyPatch) -> None:
    async def instant(seconds: float) -> None:
        pass

    monkeypatch.setattr(sink_module.asyncio, "sleep", instant)


@pytest.mark.parametrize("code", sorted(CLUSTER_CODES))
async def test_a_cluster_failure_is_retried_with_the_same_token_and_stored_once(
    code: int,
) -> None:
    """The insert reached the table and its answer was a cluster error: the retry carries the
    same token, so ClickHouse (here: the fake's token map) keeps the rows once."""
    error = DatabaseError(f"Received ClickHouse exception, code: {code}", code=code)
    client = FlakyClient([error, error], stored=True)
    sink = ClickHouseSink(lambda: client, retry_max_s=0.01)  # type: ignore[arg-type,return-value]
    assert await sink.write(letters(5)) == 5
    assert len(client.attempts) == 3
    assert len({token for token, _ in client.attempts}) == 1
    assert [n for _, n in client.attempts] == [5, 5, 5]  # the whole batch each time, not rows
    assert sum(client.rows.values()) == 5


async def test_refused_data_is_stored_row_by_row_not_retried() -> None:
    error = DatabaseError("Received ClickHouse exception, code: 53", code=53)
    client = FlakyClient([error], stored=False)
    sink = ClickHouseSink(lambda: client, retry_max_s=0.01)  # type: ignore[arg-type,return-value]
    assert await sink.write(letters(3)) == 3
    assert [n for _, n in client.attempts] == [3, 1, 1, 1]
    assert len({token for token, _ in client.attempts}) == 4  # one per row: `<token>#<i>`
