"""`hitstream definitions`: Monetate API event definitions (key, title, conditions)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson

from deploy import event_definitions as store
from deploy.clickhouse_client import connect
from schemas import monetate_definitions as defs
from schemas.settings import Settings


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "definitions",
        help="manage the Monetate event definitions",
        description="examples:\n  hitstream definitions add --site shop-eu --key reached_platinum "
        "--title 'Reached platinum' --condition page_url contains /account\n"
        "  hitstream definitions add --json definition.json   (or - for stdin)\n"
        "  hitstream definitions list --site shop-eu\n"
        "  hitstream definitions remove --site shop-eu --key reached_platinum\n"
        "conditions: FIELD OP VALUE; FIELD page_url|referrer|device_type|property:<name>, "
        "OP equals|contains|starts_with|regex|in (VALUE of in: comma-separated)",
    )
    verbs = parser.add_subparsers(dest="verb", required=True)
    add = verbs.add_parser(
        "add",
        help="add or replace a definition",
        description="Add or replace one Monetate event definition (key, title, conditions).\n\n"
        "examples:\n"
        "  hitstream definitions add --site shop-eu --key reached_platinum \\\n"
        "    --title 'Reached platinum' --condition page_url contains /account\n"
        "  hitstream definitions add --site shop-eu --key mobile_cart --title 'Mobile cart' \\\n"
        "    --condition device_type in mobile,tablet\n"
        "  hitstream definitions add --json definition.json\n"
        "  cat definition.json | hitstream definitions add --json -",
    )
    add.add_argument("--site")
    add.add_argument("--key")
    add.add_argument("--title")
    add.add_argument("--description", default="")
    add.add_argument(
        "--condition", nargs=3, action="append", default=[], metavar=("FIELD", "OP", "VALUE")
    )
    add.add_argument("--json", help="a definition as JSON (version 1), a file or - for stdin")
    show = verbs.add_parser(
        "list",
        help="list the definitions",
        description="Stored definitions, one per line; invalid stored ones go to stderr.\n\n"
        "examples:\n  hitstream definitions list\n  hitstream definitions list --site shop-eu",
    )
    show.add_argument("--site")
    remove = verbs.add_parser(
        "remove",
        help="remove a definition",
        description="Delete one definition; its events are then flagged undefined.\n\n"
        "example:\n  hitstream definitions remove --site shop-eu --key reached_platinum",
    )
    remove.add_argument("--site", required=True)
    remove.add_argument("--key", required=True)


def definition_of(args: argparse.Namespace) -> defs.EventDefinition | defs.Invalid:
    """The definition the `add` arguments describe, validated."""
    if args.json:
        try:
            data = sys.stdin.buffer.read() if args.json == "-" else Path(args.json).read_bytes()
        except OSError as exc:
            return defs.Invalid((defs.Problem("unreadable", "--json", str(exc)),))
        return defs.decode(data)
    missing = [f"--{name}" for name in ("site", "key", "title") if getattr(args, name) is None]
    if missing:
        return defs.Invalid(
            tuple(defs.Problem("missing", m, "required without --json") for m in missing)
        )
    conditions = [
        {"field": f, "op": op, "value": value.split(",") if op == "in" else value}
        for f, op, value in args.condition
    ]
    return defs.from_dict(
        {
            "v": defs.VERSION,
            "site": args.site,
            "key": args.key,
            "title": args.title,
            "description": args.description,
            "conditions": conditions,
        }
    )


def describe(invalid: defs.Invalid) -> str:
    return "invalid definition:\n" + "\n".join(
        f"  {p.where or '-'}: {p.message} ({p.code})" for p in invalid.problems
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    definition = definition_of(args) if args.verb == "add" else None
    if isinstance(definition, defs.Invalid):
        print(describe(definition), file=sys.stderr)
        return 2
    client = connect(settings)
    try:
        if definition is not None:
            store.save(client, definition)
            print(f"definition {definition.key!r} of {definition.site}: saved")
        elif args.verb == "remove":
            if not store.remove(client, args.site, args.key):
                print(f"no definition {args.key!r} of {args.site}", file=sys.stderr)
                return 1
            print(f"definition {args.key!r} of {args.site}: removed")
        else:
            good, bad = store.load(client, args.site)
            for item in good:
                conditions = orjson.dumps(defs.to_dict(item)["conditions"]).decode()
                print(f"{item.site}\t{item.key}\t{item.title}\t{conditions}")
            for site, key, invalid in bad:
                print(f"{site}\t{key}\t(stored, ignored) {describe(invalid)}", file=sys.stderr)
        return 0
    finally:
        client.close()
