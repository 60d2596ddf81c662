"""`hitstream experiments`: the experiment registry (variations, control, planned split)."""

from __future__ import annotations

import argparse

from deploy.clickhouse_client import connect
from schemas.settings import Settings

COLUMNS = ["tenant", "experiment_id", "variation_id", "is_control", "weight", "name", "deleted"]


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "experiments",
        help="manage the experiment registry",
        description="examples:\n  hitstream experiments add --tenant 1234567 --experiment "
        "87654321 --variations 1111111,2222222 --control 1111111\n"
        "  hitstream experiments list\n"
        "  hitstream experiments remove --tenant 1234567 --experiment 87654321",
    )
    verbs = parser.add_subparsers(dest="verb", required=True)
    add = verbs.add_parser(
        "add",
        help="add or replace an experiment",
        description="Add an experiment, or replace its variations, control and planned split.\n\n"
        "examples:\n"
        "  hitstream experiments add --tenant 1234567 --experiment 87654321 \\\n"
        "    --variations 1111111,2222222 --control 1111111 --name 'Checkout button'\n"
        "  hitstream experiments add --tenant 1234567 --experiment 880001 \\\n"
        "    --variations 770001,770002,770003 --weights 50,25,25\n"
        "  hitstream experiments add --tenant 1234567 --experiment 87654321 \\\n"
        "    --variations 1111111,2222222 --guardrails 555,-556",
    )
    add.add_argument("--tenant", required=True)
    add.add_argument("--experiment", required=True)
    add.add_argument("--variations", required=True, help="comma-separated variation ids")
    add.add_argument("--control", help="the control variation (default: the first)")
    add.add_argument("--weights", help="comma-separated planned shares (default: equal)")
    add.add_argument("--name", default="")
    add.add_argument(
        "--guardrails",
        help="comma-separated goal ids that must not get worse (-id: lower is better, e.g. "
        "errors); the results flag a variation that degrades one significantly",
    )
    verbs.add_parser(
        "list",
        help="list the registry",
        description="One line per experiment: tenant, id, name, variations, control, split.\n\n"
        "example:\n  hitstream experiments list",
    )
    remove = verbs.add_parser(
        "remove",
        help="remove an experiment",
        description="Mark an experiment deleted (its stored hits stay).\n\n"
        "example:\n  hitstream experiments remove --tenant 1234567 --experiment 87654321",
    )
    remove.add_argument("--tenant", required=True)
    remove.add_argument("--experiment", required=True)


def rows_for(args: argparse.Namespace) -> list[list[object]]:
    variations = [v.strip() for v in args.variations.split(",") if v.strip()]
    if not variations:
        raise SystemExit("--variations needs at least one id")
    weights = (
        [float(w) for w in args.weights.split(",")] if args.weights else [1.0] * len(variations)
    )
    if len(weights) != len(variations) or any(w <= 0 for w in weights):
        raise SystemExit("--weights needs one positive share per variation")
    control = args.control or variations[0]
    if control not in variations:
        raise SystemExit(f"--control {control} is not one of the variations")
    return [
        [args.tenant, args.experiment, v, int(v == control), w, args.name, 0]
        for v, w in zip(variations, weights, strict=True)
    ]


GOAL_COLUMNS = ["tenant", "experiment_id", "goal_id", "role", "higher_is_better", "deleted"]


def guardrail_rows(args: argparse.Namespace) -> list[list[object]]:
    goals = [g.strip() for g in (args.guardrails or "").split(",") if g.strip()]
    return [
        [args.tenant, args.experiment, g.lstrip("-"), "guardrail", int(not g.startswith("-")), 0]
        for g in goals
    ]


def run(args: argparse.Namespace, settings: Settings) -> int:
    client = connect(settings)
    try:
        if args.verb == "add":
            client.insert("experiments", rows_for(args), column_names=COLUMNS)
            guardrails = guardrail_rows(args)
            kept = {row[2] for row in guardrails}
            before = client.query(
                "SELECT goal_id FROM experiment_goals FINAL WHERE tenant = {t:String} "
                "AND experiment_id = {e:String} AND deleted = 0",
                parameters={"t": args.tenant, "e": args.experiment},
            )
            guardrails += [
                [args.tenant, args.experiment, g, "guardrail", 1, 1]
                for (g,) in before.result_rows
                if g not in kept
            ]  # replaced: the goals no longer listed are unmarked
            if guardrails:
                client.insert("experiment_goals", guardrails, column_names=GOAL_COLUMNS)
            print(f"experiment {args.experiment} of {args.tenant}: saved")
        elif args.verb == "remove":
            current = client.query(
                "SELECT variation_id FROM experiments FINAL WHERE tenant = {t:String} "
                "AND experiment_id = {e:String}",
                parameters={"t": args.tenant, "e": args.experiment},
            )
            client.insert(
                "experiments",
                [[args.tenant, args.experiment, v, 0, 1.0, "", 1] for (v,) in current.result_rows],
                column_names=COLUMNS,
            )
            print(f"experiment {args.experiment} of {args.tenant}: removed")
        else:
            result = client.query(
                "SELECT tenant, experiment_id, name, groupArray(variation_id), "
                "anyIf(variation_id, is_control = 1), groupArray(weight) FROM experiments FINAL "
                "WHERE deleted = 0 GROUP BY tenant, experiment_id, name ORDER BY 1, 2"
            )
            for tenant, experiment, name, variations, control, weights in result.result_rows:
                split = "/".join(f"{w:g}" for w in weights)
                print(
                    f"{tenant}\t{experiment}\t{name or '-'}\tvariations "
                    f"{','.join(variations)}\tcontrol {control}\tsplit {split}"
                )
        return 0
    finally:
        client.close()
