"""`hitstream octeth`: the Octeth registry (accounts, API keys, session ids, lists).

Keys and session ids are stored as their sha256 only: `key add` prints a new random key once,
and it cannot be shown again. The gateway sees every change within seconds (no restart).
"""

from __future__ import annotations

import argparse
import hashlib
import secrets

from clickhouse_connect.driver.client import Client

from deploy.clickhouse_client import connect
from schemas.settings import Settings


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "octeth",
        help="manage the Octeth registry",
        description="examples:\n  hitstream octeth account add --account acme --name 'ACME'\n"
        "  hitstream octeth account list\n"
        "  hitstream octeth key add --account acme            (prints the key once)\n"
        "  hitstream octeth key add --account acme --session  (a SessionID instead)\n"
        "  hitstream octeth list add --account acme --list 3",
    )
    nouns = parser.add_subparsers(dest="noun", required=True)
    account = nouns.add_parser(
        "account",
        help="accounts",
        description="Octeth accounts: the owners of API keys and lists.\n\n"
        "examples:\n  hitstream octeth account add --account acme --name 'ACME'\n"
        "  hitstream octeth account list",
    ).add_subparsers(dest="verb", required=True)
    add = account.add_parser(
        "add",
        help="add an account",
        description="Add (or rename) an account.\n\n"
        "example:\n  hitstream octeth account add --account acme --name 'ACME'",
    )
    add.add_argument("--account", required=True)
    add.add_argument("--name", default="")
    account.add_parser(
        "list",
        help="list accounts, their lists and credential counts",
        description="One line per account: name, title, lists, credential count.\n\n"
        "example:\n  hitstream octeth account list",
    )
    key = nouns.add_parser(
        "key",
        help="API keys",
        description="API keys and session ids, stored as sha256 only.\n\n"
        "examples:\n  KEY=$(hitstream octeth key add --account acme)\n"
        "  hitstream octeth key add --account acme --session",
    ).add_subparsers(dest="verb", required=True)
    key_add = key.add_parser(
        "add",
        help="mint a new key (printed once)",
        description="Mint a random key for an account and print it once (only its sha256 is "
        "stored); the gateway accepts it within seconds.\n\n"
        "examples:\n  KEY=$(hitstream octeth key add --account acme)\n"
        "  hitstream octeth key add --account acme --session   (a SessionID)",
    )
    key_add.add_argument("--account", required=True)
    key_add.add_argument("--session", action="store_true", help="a SessionID, not an APIKey")
    lists = nouns.add_parser(
        "list",
        help="lists",
        description="Octeth lists (ListID) and the account that owns each.\n\n"
        "example:\n  hitstream octeth list add --account acme --list 94",
    ).add_subparsers(dest="verb", required=True)
    list_add = lists.add_parser(
        "add",
        help="give a list to an account",
        description="Give a list to an account: its keys may then send events for ListID.\n\n"
        "example:\n  hitstream octeth list add --account acme --list 94",
    )
    list_add.add_argument("--account", required=True)
    list_add.add_argument("--list", required=True, type=int, dest="list_id")


def new_key() -> str:
    return secrets.token_urlsafe(32)


def run(args: argparse.Namespace, settings: Settings) -> int:
    client = connect(settings)
    try:
        if args.noun == "account" and args.verb == "add":
            client.insert(
                "octeth_accounts", [[args.account, args.name, 0]], ["account", "name", "deleted"]
            )
            print(f"account {args.account}: saved")
            return 0
        if args.noun == "account":
            result = client.query(
                "SELECT a.account, a.name, "
                "(SELECT groupArray(list_id) FROM octeth_lists FINAL "
                " WHERE deleted = 0 AND account = a.account), "
                "(SELECT count() FROM octeth_credentials FINAL "
                " WHERE deleted = 0 AND account = a.account) "
                "FROM octeth_accounts AS a FINAL WHERE a.deleted = 0 ORDER BY a.account"
            )
            for name, title, list_ids, keys in result.result_rows:
                ids = ",".join(str(i) for i in sorted(list_ids)) or "-"
                print(f"{name}\t{title or '-'}\tlists {ids}\tcredentials {keys}")
            return 0
        if not _account_exists(client, args.account):
            raise SystemExit(f"no account {args.account}: add it with `octeth account add`")
        if args.noun == "key":
            key = new_key()
            kind = "session_id" if args.session else "api_key"
            client.insert(
                "octeth_credentials",
                [[kind, hashlib.sha256(key.encode()).hexdigest(), args.account, 0]],
                ["kind", "credential_sha256", "account", "deleted"],
            )
            print(key)
            return 0
        if args.list_id < 1:
            raise SystemExit("--list must be a positive integer")
        client.insert(
            "octeth_lists", [[args.list_id, args.account, 0]], ["list_id", "account", "deleted"]
        )
        print(f"list {args.list_id} of {args.account}: saved")
        return 0
    finally:
        client.close()


def _account_exists(client: Client, account: str) -> bool:
    result = client.query(
        "SELECT count() FROM octeth_accounts FINAL WHERE account = {a:String} AND deleted = 0",
        parameters={"a": account},
    )
    return int(result.result_rows[0][0]) > 0
