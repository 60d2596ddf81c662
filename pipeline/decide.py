"""The processing stage, pure: `hits.raw` messages and the tables' values in; rows, dead letters,
table updates, exposures and triggers out. No Faust, no Kafka, no I/O.

For each raw message, in order:
1. validate: the wire format becomes canonical events and/or dead letters (`pipeline.validate`);
2. copies of a hit are dropped, exact client retries found (`pipeline.seen`, table `seen`);
3. Monetate events are judged against their definitions and first-in-session decided (`sessions`);
4. an Octeth conversion's first per (list, conversion id) decided (`octeth_conversions`);
5. rows derived (`pipeline.derive`): the event, impressions (a goal id equal to an experiment id),
   conversions, Octeth identities and properties; impressions also feed the live SRM alarm.

`tables` maps each table name in `TABLES` to a read-only mapping standing for that table (in the
worker: the Faust tables; in tests: dicts). The decisions of a batch see the batch's own earlier
updates, and `Decided.updates` lists what the caller must write back, table by table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from pipeline import octeth, seen, sessions, validate
from pipeline.definitions import judge
from pipeline.derive import derive
from pipeline.exposures import Exposure, exposures
from pipeline.rows import RowBundle, dead_letter_bundle
from schemas import monetate
from schemas.deadletter import DeadLetter
from schemas.event import Event
from schemas.formats import ParseContext
from schemas.monetate_definitions import EventDefinition

SEEN, SESSIONS, CONVERSIONS = "seen", "sessions", "octeth_conversions"
TABLES = (SEEN, SESSIONS, CONVERSIONS)


class Readable(Protocol):
    """What a decision reads of a table: a dict, or a Faust table's store (`pipeline.stage`)."""

    def get(self, key: bytes, /) -> bytes | None: ...


Tables = Mapping[str, Readable]


@dataclass(frozen=True, slots=True)
class RawMessage:
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    deliberate: bool = False  # a `hitstream replay` / `dlq redrive` copy (schemas.replay)


@dataclass(frozen=True, slots=True)
class Context:
    parse: ParseContext
    identity_secret: bytes
    retry_window_ms: int
    definition: Callable[[str, str], EventDefinition | None] = lambda tenant, key: None


@dataclass(slots=True)
class Decided:
    bundles: list[RowBundle] = field(default_factory=list)  # every row, dead letters included
    dead_letters: list[DeadLetter] = field(default_factory=list)
    updates: dict[str, dict[bytes, bytes]] = field(default_factory=dict)
    exposures: list[Exposure] = field(default_factory=list)
    triggers: list[tuple[bytes | None, bytes]] = field(default_factory=list)
    copies: list[RawMessage] = field(default_factory=list)  # accidental copies, dropped
    retries: int = 0
    events_by_source: dict[str, int] = field(default_factory=dict)
    received_at_ms: dict[int, int] = field(default_factory=dict)  # newest per partition

    def row_count(self) -> int:
        return sum(b.row_count() for b in self.bundles)


class _Overlay:
    """A table as the batch sees it: its stored values under the batch's own updates."""

    __slots__ = ("stored", "written")

    def __init__(self, stored: Readable, written: dict[bytes, bytes]) -> None:
        self.stored, self.written = stored, written

    def get(self, key: bytes) -> seen.FirstSeen | None:
        value = self.written.get(key)
        return seen.decode(value if value is not None else self.stored.get(key))


def decide(batch: Sequence[RawMessage], tables: Tables, context: Context) -> Decided:
    out = Decided(updates={name: {} for name in TABLES})
    views = {name: _Overlay(tables[name], out.updates[name]) for name in TABLES}
    for message in batch:
        _one(message, views, context, out)
    return out


def _one(message: RawMessage, views: dict[str, _Overlay], context: Context, out: Decided) -> None:
    result = validate.validate(
        message.value, message.partition, message.offset, context.parse, context.identity_secret
    )
    hit_id, received_at_ms = _identity(result)
    if received_at_ms:
        newest = out.received_at_ms.get(message.partition, received_at_ms)
        out.received_at_ms[message.partition] = max(newest, received_at_ms)
    written = views[SEEN].written
    before: dict[bytes, bytes | None] = {}  # what this hit overwrote in `seen`, to undo a copy
    hit_key = seen.hit_key(hit_id) if hit_id else None
    hit_seen = views[SEEN].get(hit_key) if hit_key is not None else None
    copy = seen.is_copy(hit_seen, message.offset)
    if copy and not message.deliberate:
        out.copies.append(message)
        return
    needs_hit_key = not result.events
    judged: list[tuple[Event, str | None]] = []
    for item in result.events:
        duplicate_of = None
        if item.fingerprint:
            key = seen.retry_key(item.tenant, item.fingerprint)
            stored = views[SEEN].get(key)
            verdict, value = seen.judge_retry(
                stored,
                item.event_id,
                message.offset,
                item.received_at_ms,
                context.retry_window_ms,
                message.deliberate,
            )
            if verdict is seen.Verdict.COPY:
                for undo, old in before.items():  # nothing of a copy is kept
                    if old is None:
                        del written[undo]
                    else:
                        written[undo] = old
                out.copies.append(message)
                return
            if value is not None:
                before.setdefault(key, written.get(key))
                written[key] = seen.encode(value)
            if verdict is seen.Verdict.RETRY and stored is not None:
                duplicate_of, needs_hit_key = stored.first_id, True
        else:
            needs_hit_key = True
        judged.append((item, duplicate_of))
    if hit_key is not None and needs_hit_key and hit_seen is None:
        written[hit_key] = seen.encode(seen.FirstSeen("", message.offset, received_at_ms))
    for letter in result.dead_letters:
        out.dead_letters.append(letter)
        out.bundles.append(dead_letter_bundle(letter))
    for item, duplicate_of in judged:
        _derive(item, duplicate_of, message, views, context, out)


def _derive(
    item: Event,
    duplicate_of: str | None,
    message: RawMessage,
    views: dict[str, _Overlay],
    context: Context,
    out: Decided,
) -> None:
    out.events_by_source[item.source] = out.events_by_source.get(item.source, 0) + 1
    if duplicate_of is not None:
        out.retries += 1
    first, counted = False, True
    if item.source == monetate.SOURCE:
        counted, flags = judge(context.definition(item.tenant, item.name), item)
        if flags:
            item = replace(item, flags=tuple(sorted({*item.flags, *flags})))
        key = sessions.table_key(item.tenant, item.session_id, item.name)
        if key is not None:
            first = _first(views[SESSIONS], key, item, sessions.SESSION_HORIZON_MS)
    repeat = False
    conversion_key = octeth.conversion_key(item)
    if conversion_key is not None:
        repeat = not _first(views[CONVERSIONS], conversion_key, item, None)
    bundle = derive(
        item, duplicate_of, first_in_session=first, counted=counted, conversion_duplicate=repeat
    )
    out.bundles.append(bundle)
    out.exposures.extend(exposures(bundle))
    trigger = octeth.trigger(item)
    if trigger is not None:
        out.triggers.append((message.key, trigger))


def _first(view: _Overlay, key: bytes, item: Event, horizon_ms: int | None) -> bool:
    first, value = seen.first_within(view.get(key), item.event_id, item.received_at_ms, horizon_ms)
    if value is not None:
        view.written[key] = seen.encode(value)
    return first


def _identity(result: validate.Validated) -> tuple[str, int]:
    """(hit id, receive time) of a validated raw message; ("", 0) for an unreadable envelope."""
    for item in result.events:
        return item.hit_id, item.received_at_ms
    for letter in result.dead_letters:
        return letter.hit_id, letter.received_at_ms
    return "", 0
