"""Monetate event definitions as the worker sees them: read from ClickHouse, refreshed on a timer.

Like `pipeline.registry`: `event_definitions FINAL WHERE deleted = 0` (deploy/event_definitions)
is re-read on the registry timer and swapped in whole; a failed read keeps the last set (a
ClickHouse outage must not stop counting). `judge` is the pure decision per event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from clickhouse_connect.driver.client import Client

from deploy import event_definitions as store
from deploy.refreshed import Refreshed
from schemas.event import Event
from schemas.monetate_definitions import EventDefinition, matches

log = logging.getLogger(__name__)

UNDEFINED_EVENT_KEY = "undefined_event_key"  # well-formed key, no definition: stored, not counted
CONDITIONS_NOT_MET = "conditions_not_met"  # defined, but a condition does not hold: not counted

Index = dict[tuple[str, str], EventDefinition]


def judge(definition: EventDefinition | None, event: Event) -> tuple[bool, tuple[str, ...]]:
    """(whether `event` counts, flags to add): it counts when defined and its conditions hold."""
    if definition is None:
        return False, (UNDEFINED_EVENT_KEY,)
    if not matches(definition, event):
        return False, (CONDITIONS_NOT_MET,)
    return True, ()


def index(definitions: list[EventDefinition]) -> Index:
    return {(d.site, d.key): d for d in definitions}


class Definitions(Refreshed[Index]):
    name = "event definitions"

    def __init__(self, connect: Callable[[], Client]) -> None:
        super().__init__(connect, {})

    def get(self, tenant: str, key: str) -> EventDefinition | None:
        return self.value.get((tenant, key))

    def read(self, client: Client) -> Index:
        good, bad = store.load(client)
        for site, key, invalid in bad:
            log.warning("event definition %s/%s ignored: %s", site, key, invalid.problems)
        return index(good)

    def describe(self, value: Index) -> str:
        return f"{len(value)}"
