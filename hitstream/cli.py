"""`hitstream`: the operator's and analyst's command line.

hitstream settings [--markdown]   every HITS_* variable, its default and meaning
hitstream migrate                 apply the ClickHouse DDL (deploy/clickhouse/*.sql)
hitstream topics                  create the hits topics
hitstream experiments add|list|remove   the experiment registry
hitstream definitions add|list|remove   the Monetate event definitions
hitstream octeth account|key|list ...    the Octeth registry (accounts, keys, lists)
hitstream results <experiment> --tenant T   experiment results (rates, lifts, p-values, SRM)
hitstream replay --from T|offset [--to T|offset] [--partition N]   re-process raw hits (idempotent)
hitstream dlq list|show|redrive   dead letters by reason; re-drive the fixable ones
hitstream aggregates rebuild|check --tenant T [--experiment E]   the results aggregates
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from hitstream import aggregates, definitions, dlq, experiments, octeth, replay
from results import report
from schemas.settings import FIELDS, Settings, env_name, load_settings

EXAMPLES = """examples:
  hitstream settings --markdown > settings.md
  hitstream migrate && hitstream topics
  hitstream experiments add --tenant 1234567 --experiment 87654321 --variations 1111111,2222222
  hitstream definitions list --site shop-eu
  KEY=$(hitstream octeth key add --account acme)
  hitstream results 87654321 --tenant 1234567 --json
  hitstream replay --from 2026-11-22T00:00:00Z --to 2026-11-23T00:00:00Z
  hitstream dlq list --reason missing_user_id
  hitstream dlq redrive --reason missing_user_id --dry-run
  hitstream aggregates rebuild --tenant 1234567 --experiment 87654321
  hitstream <command> --help       each command and subcommand shows its own examples
"""


def settings_table(markdown: bool) -> str:
    rows = [
        (env_name(f), str(f.default) if f.default != "" else '""', f.metadata["doc"])
        for f in FIELDS
    ]
    if markdown:
        return "\n".join(
            [
                "| variable | default | meaning |",
                "|---|---|---|",
                *(f"| `{n}` | `{d}` | {doc} |" for n, d, doc in rows),
            ]
        )
    return "\n".join(f"{n:<32} {d:<28} {doc}" for n, d, doc in rows)


Run = Callable[[argparse.Namespace, Settings], int]
AddParser = Callable[["argparse._SubParsersAction[CommandParser]"], None]
# Commands that live in their own module: (name, its add_parser, its run).
MODULES: tuple[tuple[str, AddParser, Run], ...] = (
    ("experiments", experiments.add_parser, experiments.run),
    ("definitions", definitions.add_parser, definitions.run),
    ("octeth", octeth.add_parser, octeth.run),
    ("results", report.add_parser, report.run),
    ("replay", replay.add_parser, replay.run),
    ("dlq", dlq.add_parser, dlq.run),
    ("aggregates", aggregates.add_parser, aggregates.run),
)


def print_settings(args: argparse.Namespace) -> int:
    """Needs no Settings: it must work while a HITS_* variable is wrong."""
    print(settings_table(args.markdown))
    return 0


def run_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from deploy import migrate

    return migrate.run(settings, args.print)


def run_topics(args: argparse.Namespace, settings: Settings) -> int:
    from deploy import topics

    return topics.run(settings, args.check)


def configured(run: Run) -> Callable[[argparse.Namespace], int]:
    """`run` given the Settings of the environment, read when the command runs."""
    return lambda args: run(args, load_settings())


class CommandParser(argparse.ArgumentParser):
    """An argument parser whose help keeps its description's and epilog's line breaks (the
    examples); `add_subparsers` makes every command's parser one too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree (a unit test walks it: every command shows examples); each
    command's parser names the function that runs it (`args.run`)."""
    parser = CommandParser(prog="hitstream", description=__doc__, epilog=EXAMPLES)
    sub = parser.add_subparsers(dest="command", required=True)
    settings_cmd = sub.add_parser(
        "settings",
        help="list the HITS_* settings",
        description="Every HITS_* variable, its default and meaning (the README's table).\n\n"
        "examples:\n  hitstream settings\n  hitstream settings --markdown",
    )
    settings_cmd.add_argument("--markdown", action="store_true")
    settings_cmd.set_defaults(run=print_settings)
    migrate = sub.add_parser(
        "migrate",
        help="apply the ClickHouse DDL",
        description="Apply deploy/clickhouse/*.sql in order (idempotent); --print shows the "
        "statements (rewritten for HITS_CLICKHOUSE_CLUSTER) without running them.\n\n"
        "examples:\n  hitstream migrate\n"
        "  HITS_CLICKHOUSE_URL=https://ch.internal:8443 HITS_CLICKHOUSE_USER=hitstream_admin \\\n"
        "    HITS_CLICKHOUSE_PASSWORD=... hitstream migrate\n"
        "  HITS_CLICKHOUSE_CLUSTER=main hitstream migrate --print",
    )
    migrate.add_argument("--print", action="store_true", help="print the DDL, run nothing")
    migrate.set_defaults(run=configured(run_migrate))
    topics = sub.add_parser(
        "topics",
        help="create the hits topics",
        description="Create the missing hits topics with HITS_PARTITIONS partitions, "
        "HITS_KAFKA_REPLICATION_FACTOR replicas, HITS_KAFKA_MIN_INSYNC_REPLICAS and the "
        "retention of HITS_KAFKA_RETENTION; check the existing ones. --check only reports what "
        "differs from the settings (exit 1 when something does), for a start-up script.\n\n"
        "examples:\n  hitstream topics\n"
        "  HITS_KAFKA_BOOTSTRAP=kafka:9092 HITS_PARTITIONS=16 HITS_KAFKA_REPLICATION_FACTOR=3 "
        "HITS_KAFKA_MIN_INSYNC_REPLICAS=2 hitstream topics\n"
        "  hitstream topics --check",
    )
    topics.add_argument("--check", action="store_true", help="only check the topics")
    topics.set_defaults(run=configured(run_topics))
    for name, add_parser, run in MODULES:
        add_parser(sub)
        sub.choices[name].set_defaults(run=configured(run))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
