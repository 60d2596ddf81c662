"""The exact reconciliation of a chaos run: ClickHouse against the ledger and the model."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from clickhouse_connect.driver.client import Client

from tests.chaos.traffic import BAD_REASONS, TAG_PATTERN, Ledger, Reference

EVENT_TAG = "if(source = 'monetate', JSONExtractString(properties, 'attempt'), dimensions['1'])"


@dataclass
class Reconciliation:
    rows: dict[str, int]
    lost: int  # accepted attempts not in ClickHouse
    duplicated: int  # rows beyond one per attempt, events and dead letters
    stored_unanswered: int  # attempts without a 200 that were stored (at most once each)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def progress(client: Client) -> tuple[int, ...]:
    """Counts that grow while the pipeline works (to see when it has settled)."""
    return tuple(
        int(v)
        for v in client.query(
            "SELECT (SELECT count() FROM events), (SELECT count() FROM dead_letters), "
            "(SELECT count() FROM impressions), (SELECT count() FROM conversions)"
        ).result_rows[0]
    )


def _one(client: Client, sql: str) -> Any:
    return client.query(sql).result_rows[0]


def reconcile(client: Client, ledger: Ledger, reference: Reference) -> Reconciliation:
    problems: list[str] = []
    events, hit_ids, not_retries, first_in_session = _one(
        client,
        "SELECT count(), uniqExact(hit_id), countIf(duplicate_of IS NULL), "
        "countIf(first_in_session = 1 AND source = 'monetate') FROM events",
    )
    impressions, impression_ids = _one(
        client, "SELECT count(), uniqExact(impression_id) FROM impressions"
    )
    conversions, conversion_ids = _one(
        client, "SELECT count(), uniqExact(conversion_id) FROM conversions"
    )
    event_tags = Counter(r[0] for r in client.query(f"SELECT {EVENT_TAG} FROM events").result_rows)
    letters = client.query(
        f"SELECT extract(raw, '{TAG_PATTERN}'), reason FROM dead_letters"
    ).result_rows
    letter_tags = Counter(tag for tag, _ in letters)
    reasons = Counter(reason for _, reason in letters)

    def check(name: str, got: object, want: object) -> None:
        if got != want:
            problems.append(f"{name}: {got} != {want}")

    check("events count() vs uniqExact(hit_id)", events, hit_ids)
    check("events not a client retry vs good logical hits", not_retries, reference.good)
    check("impressions", (impressions, impression_ids), (reference.impressions,) * 2)
    check("conversions", (conversions, conversion_ids), (reference.conversions,) * 2)
    check("first-in-session Monetate events", first_in_session, reference.first_in_session)
    unexpected = set(reasons) - BAD_REASONS
    check("dead-letter reasons beyond the injected ones", sorted(unexpected), [])

    duplicated = sum(c - 1 for c in event_tags.values()) + sum(c - 1 for c in letter_tags.values())
    check("rows stored more than once", duplicated, 0)
    lost = len(ledger.accepted_good - set(event_tags)) + len(ledger.accepted_bad - set(letter_tags))
    check("accepted attempts lost", lost, 0)
    phantom_events = set(event_tags) - ledger.accepted_good - ledger.unanswered_good
    phantom_letters = set(letter_tags) - ledger.accepted_bad - ledger.unanswered_bad
    check("event rows of no attempt", len(phantom_events), 0)
    check("dead letters of no injected bad hit", len(phantom_letters), 0)
    stored_unanswered = len(set(event_tags) & ledger.unanswered_good) + len(
        set(letter_tags) & ledger.unanswered_bad
    )
    check(
        "events count() vs accepted + stored unanswered",
        events,
        len(ledger.accepted_good) + len(set(event_tags) & ledger.unanswered_good),
    )
    rows = {
        "events": events,
        "impressions": impressions,
        "conversions": conversions,
        "dead_letters": len(letters),
        "first_in_session": first_in_session,
    }
    return Reconciliation(rows, lost, duplicated, stored_unanswered, problems)
