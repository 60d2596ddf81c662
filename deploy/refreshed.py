"""A value read from ClickHouse and swapped in whole by `refresh`, for the worker's and the
gateway's registries (experiments, event definitions, experiment splits, Octeth credentials).

A failed read keeps the last value: a ClickHouse outage must not stop parsing, counting or
answering. `loaded` tells whether one read has succeeded (or the value was given at start).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Generic, TypeVar

from clickhouse_connect.driver.client import Client

log = logging.getLogger(__name__)

T = TypeVar("T")


class Refreshed(Generic[T]):
    name = "value"  # for the log lines

    def __init__(
        self, connect: Callable[[], Client] | None, initial: T, loaded: bool = False
    ) -> None:
        """`connect` None: a fixed value (tests); `refresh` then does nothing."""
        self._connect = connect
        self.value = initial
        self.loaded = loaded

    def read(self, client: Client) -> T:
        raise NotImplementedError

    def describe(self, value: T) -> str:
        """What the log says of a new value (sizes, never secrets)."""
        return ""

    def changed(self) -> None:
        """Called after a new value was swapped in."""

    async def refresh(self) -> None:
        if self._connect is None:
            return
        try:
            found = await asyncio.to_thread(self._read)
        except Exception as exc:
            log.warning("%s not refreshed: %s", self.name, exc)
            return
        fresh = found != self.value or not self.loaded
        self.value, self.loaded = found, True
        if fresh:
            log.info("%s: %s", self.name, self.describe(found))
            self.changed()

    def _read(self) -> T:
        assert self._connect is not None
        client = self._connect()
        try:
            return self.read(client)
        finally:
            client.close()
