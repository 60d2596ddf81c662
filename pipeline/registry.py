"""The experiment registry as the worker sees it: read from ClickHouse, refreshed on a timer.

The validate stage only reads `context`; the refresh swaps in a new immutable `ParseContext`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace

from clickhouse_connect.driver.client import Client

from schemas.formats import ParseContext

log = logging.getLogger(__name__)

QUERY = """SELECT experiment_id, groupArray(variation_id)
           FROM (SELECT experiment_id, variation_id, argMax(deleted, updated_at) AS gone
                 FROM experiments GROUP BY experiment_id, variation_id)
           WHERE gone = 0 GROUP BY experiment_id"""


def variations_by_experiment(rows: list[tuple[str, list[str]]]) -> dict[str, frozenset[str]]:
    merged: dict[str, set[str]] = defaultdict(set)
    for experiment, variations in rows:
        merged[experiment].update(variations)
    return {experiment: frozenset(v) for experiment, v in merged.items()}


class Registry:
    def __init__(self, context: ParseContext, connect: Callable[[], Client]) -> None:
        self.context = context
        self._connect = connect

    def _read(self) -> dict[str, frozenset[str]]:
        client = self._connect()
        try:
            return variations_by_experiment(
                [(str(e), [str(v) for v in vs]) for e, vs in client.query(QUERY).result_rows]
            )
        finally:
            client.close()

    async def refresh(self) -> None:
        """Reload; on failure keep the last registry (a ClickHouse outage must not stop parsing)."""
        try:
            experiments = await asyncio.to_thread(self._read)
        except Exception as exc:
            log.warning("experiment registry not refreshed: %s", exc)
            return
        if experiments != self.context.experiments:
            self.context = replace(self.context, experiments=experiments)
            log.info("experiment registry: %d experiments", len(experiments))
