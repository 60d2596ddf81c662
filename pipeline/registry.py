"""The experiment registry as the worker sees it: read from ClickHouse, refreshed on a timer.

The validate stage only reads `context`; the refresh swaps in a new immutable `ParseContext`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace

from clickhouse_connect.driver.client import Client

from deploy.refreshed import Refreshed
from schemas.formats import ParseContext

QUERY = """SELECT experiment_id, groupArray(variation_id)
           FROM (SELECT experiment_id, variation_id, argMax(deleted, updated_at) AS gone
                 FROM experiments GROUP BY experiment_id, variation_id)
           WHERE gone = 0 GROUP BY experiment_id"""


def variations_by_experiment(rows: list[tuple[str, list[str]]]) -> dict[str, frozenset[str]]:
    merged: dict[str, set[str]] = defaultdict(set)
    for experiment, variations in rows:
        merged[experiment].update(variations)
    return {experiment: frozenset(v) for experiment, v in merged.items()}


class Registry(Refreshed[dict[str, frozenset[str]]]):
    """Experiment id -> variations; `context` is the `ParseContext` that carries them."""

    name = "experiment registry"

    def __init__(self, context: ParseContext, connect: Callable[[], Client]) -> None:
        super().__init__(connect, dict(context.experiments))
        self.context = context

    def read(self, client: Client) -> dict[str, frozenset[str]]:
        return variations_by_experiment(
            [(str(e), [str(v) for v in vs]) for e, vs in client.query(QUERY).result_rows]
        )

    def describe(self, value: dict[str, frozenset[str]]) -> str:
        return f"{len(value)} experiments"

    def changed(self) -> None:
        if self.value != self.context.experiments:
            self.context = replace(self.context, experiments=self.value)
