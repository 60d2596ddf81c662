"""`hitstream`: the operator's and analyst's command line.

hitstream settings [--markdown]   every HITS_* variable, its default and meaning
hitstream migrate                 apply the ClickHouse DDL (deploy/clickhouse/*.sql)
hitstream topics                  create the hits topics
hitstream experiments add|list|remove   the experiment registry
hitstream definitions add|list|remove   the Monetate event definitions
hitstream octeth account|key|list ...    the Octeth registry (accounts, keys, lists)
hitstream results <experiment> --tenant T   experiment results (rates, lifts, p-values, SRM)
"""

from __future__ import annotations

import argparse
import asyncio

from hitstream import definitions, experiments, octeth
from results import report
from schemas.settings import FIELDS, env_name, load_settings


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hitstream", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    settings_cmd = sub.add_parser(
        "settings",
        help="list the HITS_* settings",
        description="example: hitstream settings --markdown",
    )
    settings_cmd.add_argument("--markdown", action="store_true")
    sub.add_parser(
        "migrate",
        help="apply the ClickHouse DDL",
        description="example: HITS_CLICKHOUSE_URL=http://127.0.0.1:8123 hitstream migrate",
    )
    sub.add_parser(
        "topics",
        help="create the hits topics",
        description="example: HITS_KAFKA_BOOTSTRAP=127.0.0.1:9092 hitstream topics",
    )
    experiments.add_parser(sub)
    definitions.add_parser(sub)
    octeth.add_parser(sub)
    report.add_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "settings":
        print(settings_table(args.markdown))
        return 0
    settings = load_settings()
    if args.command == "experiments":
        return experiments.run(args, settings)
    if args.command == "definitions":
        return definitions.run(args, settings)
    if args.command == "octeth":
        return octeth.run(args, settings)
    if args.command == "results":
        return report.run(args, settings)
    if args.command == "migrate":
        from deploy.migrate import migrate

        for name in migrate(settings):
            print(f"applied {name}")
    elif args.command == "topics":
        from deploy.topics import ensure_topics

        for name, count in sorted(asyncio.run(ensure_topics(settings)).items()):
            print(f"{name}: {count} partitions")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
