"""A batch whose insert reached ClickHouse but whose answer was a cluster error is retried with
the same dedup token, and the real engine stores it once."""

from __future__ import annotations

from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from deploy.clickhouse_client import connect
from pipeline import sink as sink_module
from pipeline.sink import ClickHouseSink
from schemas.settings import Settings
from tests.unit.test_sink_errors import letters

pytestmark = pytest.mark.integration


class LostAnswer:
    """A real client whose first `failures` inserts are stored, then answered KEEPER_EXCEPTION
    (as a replica that lost its Keeper session while committing the part)."""

    def __init__(self, client: Client, failures: int) -> None:
        self.client = client
        self.failures = failures
        self.tokens: list[str] = []

    def insert(self, *args: Any, **kwargs: Any) -> Any:
        self.tokens.append(kwargs["settings"]["insert_deduplication_token"])
        summary = self.client.insert(*args, **kwargs)
        if self.failures:
            self.failures -= 1
            raise DatabaseError("Received ClickHouse exception, code: 999", code=999)
        return summary

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


async def test_an_insert_stored_before_its_error_is_stored_once(
    hits_settings: Settings, clickhouse: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def instant(seconds: float) -> None:
        pass

    monkeypatch.setattr(sink_module.asyncio, "sleep", instant)
    wrapper = LostAnswer(connect(hits_settings), failures=2)
    sink = ClickHouseSink(lambda: wrapper, retry_max_s=0.01)  # type: ignore[arg-type,return-value]
    try:
        assert await sink.write(letters(20)) == 20
    finally:
        wrapper.client.close()
    assert len(wrapper.tokens) == 3 and len(set(wrapper.tokens)) == 1
    assert clickhouse.query("SELECT count(), uniqExact(dlq_id) FROM dead_letters").result_rows == [
        (20, 20)
    ]
