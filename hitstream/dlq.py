"""`hitstream dlq list|show|redrive`: dead letters for operators, and re-driving the fixable ones.

Read from the ClickHouse `dead_letters` table rather than the `hits.dlq` topic: it is indexed by
source and reason, queryable by time, holds 30 days and more, and shows the current state (a
replay or re-drive that fixed a hit deletes its dead letter there; the topic keeps history).

`redrive` re-publishes each fixable letter's raw message, byte for byte, on its raw partition, so
it goes through the current parser, then deletes the rows it supersedes once the worker stored
the copy: the letter itself and every row of the same hit id after it (an earlier re-drive or
replay). A re-driven hit is never doubled, re-driving twice included (see `hitstream.replay`).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from typing import Any

import orjson
from clickhouse_connect.driver.client import Client

from deploy.clickhouse_client import connect
from hitstream.replay_range import StoredLetter, parse_bound, redrive_selection
from hitstream.supersede import (
    Message,
    RebuildFailed,
    SettleTimeout,
    producer,
    republish,
    settle,
)
from pipeline.rows import COLUMNS
from schemas import rawhit
from schemas.settings import Settings
from schemas.topics import RAW

# The `dead_letters` columns (the catalogue, `pipeline.rows.COLUMNS`) as `letters` reads them.
_COLUMNS = COLUMNS["dead_letters"]
_READ = {"dlq_id": "toString(dlq_id)", "received_at": "toUnixTimestamp64Milli(received_at)"}
SELECT = ", ".join(_READ.get(column, column) for column in _COLUMNS)

EXAMPLES = """\
examples:
  hitstream dlq list                                  # the newest 50, and totals by reason
  hitstream dlq list --reason missing_user_id --since 2026-11-22T00:00:00Z --limit 200
  hitstream dlq show 7d0c1b2e-5b7e-4f0e-9c3a-1a2b3c4d5e6f      # one hit: why, and the raw hit
  hitstream dlq redrive --reason missing_user_id --dry-run      # what would be re-driven
  hitstream dlq redrive --reason missing_user_id                # after the parser fix is deployed

Only validate-stage letters holding a whole raw hit are re-driven (gateway letters lost their
body, sink letters hold rows). Re-driving is idempotent: a hit is never stored twice.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "dlq",
        help="list, show and re-drive dead letters",
        description="Inspect dead letters (the ClickHouse dead_letters table) by reason and "
        "re-drive the fixable ones through the current parser.",
        epilog=EXAMPLES,
    )
    verbs = parser.add_subparsers(dest="verb", required=True)
    listing = verbs.add_parser(
        "list",
        help="dead letters, newest first, and totals by reason",
        description="example: hitstream dlq list --reason missing_user_id --since 2026-11-22",
    )
    listing.add_argument("--reason")
    listing.add_argument("--since", type=parse_bound, help="ISO-8601 time or epoch ms")
    listing.add_argument("--limit", type=int, default=50)
    show = verbs.add_parser(
        "show",
        help="every dead letter of one hit, with its raw hit",
        description="example: hitstream dlq show 7d0c1b2e-5b7e-4f0e-9c3a-1a2b3c4d5e6f",
    )
    show.add_argument("hit_id")
    redrive = verbs.add_parser(
        "redrive",
        help="re-publish fixable dead letters' raw hits (idempotent)",
        description="examples:\n  hitstream dlq redrive --reason missing_user_id --dry-run\n"
        "  hitstream dlq redrive --reason missing_user_id",
    )
    redrive.add_argument("--reason")
    redrive.add_argument("--dry-run", action="store_true")
    redrive.add_argument("--timeout", type=float, default=600.0, help="seconds for the worker")


def _where(reason: str | None, since_ms: int | None) -> tuple[str, dict[str, Any]]:
    conditions: list[str] = ["1"]
    parameters: dict[str, Any] = {}
    if reason:
        conditions.append("reason = {reason:String}")
        parameters["reason"] = reason
    if since_ms is not None:
        conditions.append("received_at >= fromUnixTimestamp64Milli({since:Int64})")
        parameters["since"] = since_ms
    return " AND ".join(conditions), parameters


def letters(
    client: Client, where: str, parameters: dict[str, Any], limit: int | None = None
) -> list[StoredLetter]:
    sql = f"SELECT {SELECT} FROM dead_letters WHERE {where} ORDER BY received_at DESC, src_pos"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    rows = client.query(sql, parameters=parameters).result_rows
    return [_letter(dict(zip(_COLUMNS, row, strict=True))) for row in rows]


def _letter(row: dict[str, Any]) -> StoredLetter:
    return StoredLetter(
        dlq_id=row["dlq_id"],
        hit_id=row["hit_id"],
        stage=row["stage"],
        reason=row["reason"],
        detail=row["detail"],
        source=row["source"],
        received_at_ms=int(row["received_at"]),
        raw=row["raw"],
        partition=int(row["src_partition"]),
        position=int(row["src_pos"]),
    )


def _time(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4]


def list_letters(client: Client, args: argparse.Namespace) -> int:
    since = args.since.value if args.since and args.since.kind == "time" else None
    if args.since and args.since.kind != "time":
        raise SystemExit("--since takes a time (ISO-8601 or epoch ms)")
    where, parameters = _where(args.reason, since)
    for letter in letters(client, where, parameters, args.limit):
        print(
            f"{_time(letter.received_at_ms)}  {letter.stage:<8} {letter.reason:<24} "
            f"{letter.source or '-':<10} {letter.hit_id or '-':<36} "
            f"raw[{letter.partition}]@{letter.offset}  {letter.detail[:80]}"
        )
    totals = client.query(
        f"SELECT reason, stage, count() FROM dead_letters WHERE {where} GROUP BY ALL "
        "ORDER BY 3 DESC, 1",
        parameters=parameters,
    ).result_rows
    print("totals: " + (", ".join(f"{r} ({s}) {n}" for r, s, n in totals) or "none"))
    return 0


def show_letters(client: Client, hit_id: str) -> int:
    found = letters(client, "hit_id = {hit:String}", {"hit": hit_id})
    if not found:
        print(f"no dead letter for hit {hit_id}", file=sys.stderr)
        return 1
    for letter in found:
        print(f"hit {letter.hit_id}  dead letter {letter.dlq_id}")
        print(f"  stage {letter.stage}, reason {letter.reason}: {letter.detail}")
        print(f"  source {letter.source or '-'}, received {_time(letter.received_at_ms)}")
        print(f"  from hits.raw[{letter.partition}]@{letter.offset}")
        try:
            hit = rawhit.to_dict(rawhit.decode(letter.raw.encode()))
        except rawhit.RawHitError:
            print("  raw message (not an envelope): " + letter.raw)
        else:
            print("  raw hit: " + orjson.dumps(hit, option=orjson.OPT_INDENT_2).decode())
    return 0


async def redrive(client: Client, settings: Settings, args: argparse.Namespace) -> int:
    where, parameters = _where(args.reason, None)
    chosen, skipped = redrive_selection(letters(client, where, parameters))
    for letter, why in skipped:
        print(f"skipped {letter.hit_id or '-'} ({letter.reason}): {why}", file=sys.stderr)
    if args.dry_run or not chosen:
        verb = "would be re-driven" if args.dry_run else "re-driven"
        print(f"{len(chosen)} hits {verb}, {len(skipped)} skipped")
        return 0
    messages = [Message(x.partition, x.offset, None, x.raw.encode()) for x in chosen]
    kafka = producer(settings)
    await kafka.start()
    try:
        copies = await republish(kafka, settings.topic(RAW), messages)
    finally:
        await kafka.stop()
    try:
        deleted = await settle(settings, client, copies, args.timeout)
    except SettleTimeout as exc:
        print(f"redrive: {exc}; nothing was deleted. Run it again.", file=sys.stderr)
        return 1
    except RebuildFailed as exc:
        print(f"redrive: superseded rows were deleted, but {exc}", file=sys.stderr)
        return 1
    still = letters(
        client,
        "hit_id IN {hits:Array(String)}",
        {"hits": sorted({x.hit_id for x in chosen})},
    )
    print(
        f"{len(chosen)} hits re-driven, {len(skipped)} skipped; "
        f"{len(chosen) - len({x.hit_id for x in still})} now stored, "
        f"{len(still)} dead letters remain for them; "
        f"superseded rows deleted: {sum(deleted.values())}"
    )
    return 0


def run(args: argparse.Namespace, settings: Settings) -> int:
    client = connect(settings)
    try:
        if args.verb == "list":
            return list_letters(client, args)
        if args.verb == "show":
            return show_letters(client, args.hit_id)
        return asyncio.run(redrive(client, settings, args))
    finally:
        client.close()
