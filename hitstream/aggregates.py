"""`hitstream aggregates rebuild|check`: the per-visitor results aggregates (deploy.aggregates).

Replay and re-drive rebuild what they touch themselves; run `rebuild` by hand after deleting raw
rows some other way, after restoring a backup, or once after upgrading to the aggregates (they
start empty: `hitstream aggregates rebuild --all`). `check` exits 1 when an experiment's
aggregates differ from the raw views.
"""

from __future__ import annotations

import argparse
import datetime as dt

from clickhouse_connect.driver.client import Client

from deploy import aggregates
from deploy.aggregates import Scope
from deploy.clickhouse_client import connect
from hitstream.replay_range import Bound, parse_bound
from schemas.settings import Settings

EXAMPLES = """\
examples:
  hitstream aggregates rebuild --tenant 1234567 --experiment 87654321
  hitstream aggregates rebuild --tenant 1234567 --from 2026-11-22T00:00:00Z --to 2026-11-23
  hitstream aggregates rebuild --tenant 1234567          # every experiment of the tenant
  hitstream aggregates rebuild --all                     # everything (after upgrading)
  hitstream aggregates check --tenant 1234567 --experiment 87654321
"""


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "aggregates",
        help="rebuild or check the per-visitor results aggregates",
        description="The results read per-visitor aggregates kept up to date as rows arrive; "
        "rebuild them from the raw tables, or check that they equal the raw views.",
        epilog=EXAMPLES,
    )
    verbs = parser.add_subparsers(dest="verb", required=True)
    rebuild = verbs.add_parser(
        "rebuild",
        help="delete and recompute aggregates from the raw tables",
        description="examples:\n"
        "  hitstream aggregates rebuild --tenant 1234567 --experiment 87654321\n"
        "  hitstream aggregates rebuild --tenant 1234567 --from 2026-11-22T00:00:00Z\n"
        "  hitstream aggregates rebuild --all",
    )
    check = verbs.add_parser(
        "check",
        help="compare the aggregates with the raw views (EXCEPT both ways)",
        description="example: hitstream aggregates check --tenant 1234567 --experiment 87654321",
    )
    for verb in (rebuild, check):
        verb.add_argument("--tenant", default="")
        verb.add_argument("--experiment", default="")
        verb.add_argument("--all", action="store_true", help="every tenant")
    rebuild.add_argument("--from", dest="start", type=parse_bound, help="ISO-8601 or epoch ms")
    rebuild.add_argument("--to", dest="stop", type=parse_bound, help="default: now")


def _time(bound: Bound | None, default: dt.datetime) -> dt.datetime:
    if bound is None:
        return default
    if bound.kind != "time":
        raise SystemExit("--from/--to take times (ISO-8601 or epoch ms), not offsets")
    return dt.datetime.fromtimestamp(bound.value / 1000, dt.UTC)


def scopes(client: Client, args: argparse.Namespace) -> list[Scope]:
    """The experiments (or tenants, or everything) the arguments name."""
    if args.all == bool(args.tenant):
        raise SystemExit("give --tenant (optionally --experiment or --from/--to) or --all")
    if args.all:
        return [Scope()]
    if getattr(args, "start", None) is not None or getattr(args, "stop", None) is not None:
        if args.experiment:
            raise SystemExit("--experiment and --from/--to exclude each other")
        since = _time(args.start, dt.datetime(1970, 1, 1, tzinfo=dt.UTC))
        until = _time(args.stop, dt.datetime.now(dt.UTC))
        return aggregates.in_range(client, args.tenant, since, until)
    return [Scope(tenant=args.tenant, experiment=args.experiment)]


def _name(scope: Scope) -> str:
    if not scope.tenant:
        return "everything"
    return f"tenant {scope.tenant}" + (
        f" experiment {scope.experiment}" if scope.experiment else ""
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    client = connect(settings)
    try:
        chosen = scopes(client, args)
        if args.verb == "rebuild":
            for scope in chosen:
                aggregates.rebuild(client, scope)
                print(f"rebuilt {_name(scope)}")
            if chosen:
                aggregates.refresh_snapshots(client)
            print(f"{len(chosen)} rebuilt" + ("; results snapshots refreshed" if chosen else ""))
            return 0
        differ = 0
        for scope in chosen:
            for view, (missing, extra) in aggregates.check(client, scope).items():
                state = "equal" if missing == extra == 0 else "DIFFERENT"
                differ += state != "equal"
                print(f"{_name(scope)} {view}: {state} ({missing} raw rows missing, {extra} extra)")
        return 1 if differ else 0
    finally:
        client.close()
