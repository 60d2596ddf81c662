"""The Octeth registry as the gateway sees it: credentials (sha256 only) and lists, per account.

Read from ClickHouse (`deploy/clickhouse/006_octeth.sql`, managed with `hitstream octeth`) and
refreshed every `REFRESH_S` seconds by a background task: a new key or list is usable within
seconds, without a restart. A ClickHouse outage keeps the last snapshot.

A lookup hashes the presented credential (sha256) and compares it in constant time with the
stored hash (`hmac.compare_digest`); the index is keyed by the hash, which reveals nothing about
the key. Also reads the property catalogue (`octeth_properties`) for the properties endpoint.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from clickhouse_connect.driver.client import Client

from deploy.refreshed import Refreshed

REFRESH_S = 2.0
CREDENTIALS = """SELECT kind, credential_sha256, account FROM octeth_credentials FINAL
                 WHERE deleted = 0 AND account IN
                   (SELECT account FROM octeth_accounts FINAL WHERE deleted = 0)"""
LISTS = "SELECT list_id, account FROM octeth_lists FINAL WHERE deleted = 0"
PROPERTIES = """SELECT event, groupArray(DISTINCT key) FROM octeth_properties
                WHERE tenant = {list:String} GROUP BY event"""


def digest(secret: str) -> str:
    """Hex sha256 of a credential: what the registry stores instead of the credential."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Snapshot:
    # (kind, sha256 hex) -> (sha256 hex, account)
    credentials: Mapping[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    lists: Mapping[str, frozenset[int]] = field(default_factory=dict)  # account -> list ids


def snapshot(
    credentials: Iterable[tuple[str, str, str]], lists: Iterable[tuple[int, str]]
) -> Snapshot:
    """A snapshot from (kind, sha256 hex, account) and (list id, account) rows."""
    by_account: dict[str, set[int]] = defaultdict(set)
    for list_id, account in lists:
        by_account[str(account)].add(int(list_id))
    return Snapshot(
        {(str(k), str(h)): (str(h), str(a)) for k, h, a in credentials},
        {a: frozenset(ids) for a, ids in by_account.items()},
    )


class OctethRegistry(Refreshed[Snapshot]):
    """Credentials and lists; `connect` None: a fixed in-memory registry (tests)."""

    name = "octeth registry"

    def __init__(
        self, connect: Callable[[], Client] | None = None, initial: Snapshot | None = None
    ) -> None:
        super().__init__(connect, initial or Snapshot(), loaded=initial is not None)

    @property
    def snapshot(self) -> Snapshot:
        return self.value

    def account(self, kind: str, secret: str) -> str | None:
        """The account of a presented credential, or None when it is unknown."""
        presented = digest(secret)
        # The index is keyed by the hash (which tells nothing about the key); the final check is
        # a constant-time comparison of the stored hash with the presented one.
        found = self.snapshot.credentials.get((kind, presented))
        if found is None or not hmac.compare_digest(found[0], presented):
            return None
        return found[1]

    def lists(self, account: str) -> frozenset[int]:
        return self.snapshot.lists.get(account, frozenset())

    def read(self, client: Client) -> Snapshot:
        credentials = client.query(CREDENTIALS).result_rows
        lists = client.query(LISTS).result_rows
        return snapshot(
            ((str(k), str(h), str(a)) for k, h, a in credentials),
            ((int(i), str(a)) for i, a in lists),
        )

    def describe(self, value: Snapshot) -> str:
        return f"{len(value.credentials)} credentials, {len(value.lists)} accounts with lists"

    async def refresh_forever(self, every: float = REFRESH_S) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(every)

    def _read_properties(self, list_id: int) -> dict[str, list[str]]:
        assert self._connect is not None
        client = self._connect()
        try:
            rows = client.query(PROPERTIES, parameters={"list": str(list_id)}).result_rows
        finally:
            client.close()
        return {str(event): [str(k) for k in keys] for event, keys in rows}

    async def properties(self, list_id: int) -> dict[str, list[str]]:
        """Event name -> property keys seen on the list's events (raises when ClickHouse fails)."""
        if self._connect is None:
            return {}
        return await asyncio.to_thread(self._read_properties, list_id)
