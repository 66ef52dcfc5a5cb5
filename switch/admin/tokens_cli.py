"""`wte tokens create|list|revoke`: the admin API's tokens, from the operator's shell
(issue 18). The token is printed once; only its sha256 is stored.

    wte tokens create --role operator|customer-admin [--customer ID] [--name TEXT]
    wte tokens list [--customer ID]
    wte tokens revoke ID
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import time
from pathlib import Path
from typing import TextIO


def add_arguments(parser: argparse.ArgumentParser, default_config: str,
                  default_data: str) -> None:
    sub = parser.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")
    create = sub.add_parser("create", help="create a token and print it (once)")
    create.add_argument("--role", required=True, choices=["operator", "customer-admin"])
    create.add_argument("--customer", default=None,
                        help="the customer of a customer-admin token (required for it)")
    create.add_argument("--name", default="", help="what the token is for")
    listing = sub.add_parser("list", help="the tokens as JSON lines (never the secret)")
    listing.add_argument("--customer", default=None, help="only this customer's")
    revoke = sub.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("id")
    for p in (create, listing, revoke):
        p.add_argument("--config", default=default_config, help="configuration YAML")
        p.add_argument("--data-dir", default=default_data,
                       help="where the SQLite database lives")


def tokens_main(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from switch.storage.cli import database_url, db_upgrade

    url = database_url(args.data_dir)
    db_upgrade(url)
    if args.tokens_command == "create":
        if (args.role == "customer-admin") != (args.customer is not None):
            err.write("error: --customer is required for a customer-admin token, and only "
                      "for it\n")
            return 2
        if args.customer is not None and not _customer_exists(Path(args.config),
                                                              args.customer, err):
            return 1
    return asyncio.run(_run(url, args, out, err))


def _customer_exists(config: Path, customer: str, err: TextIO) -> bool:
    from dialplan import load_plan_data
    from dialplan.yamlsource import load_yaml_file

    if not config.is_file():  # no plan to check against: the operator knows best
        return True
    plan = load_plan_data(load_yaml_file(config))
    if any(c.id == customer for c in plan.customers):
        return True
    err.write(f"error: no customer {customer} in {config}\n")
    return False


async def _run(url: str, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from switch.storage.admin_api import SqlAdminApi
    from switch.storage.engine import create_engine

    engine = create_engine(url)
    try:
        store = SqlAdminApi(engine)
        if args.tokens_command == "create":
            info, token = await store.create_token(args.role, args.customer,
                                                   args.name or args.role,
                                                   f"cli:{getpass.getuser()}", time.time())
            await store.audit(at=time.time(), actor=f"cli:{getpass.getuser()}",
                              role="operator", customer=info.customer, action="token.create",
                              target=info.id, detail={"role": info.role, "name": info.name},
                              source="cli")
            out.write(json.dumps({**info.as_json(), "token": token}) + "\n")
            err.write("the token is shown once: keep it now\n")
            return 0
        if args.tokens_command == "list":
            for info in await store.tokens(args.customer):
                out.write(json.dumps(info.as_json()) + "\n")
            return 0
        if not await store.revoke(args.id, time.time()):
            err.write(f"error: no live token {args.id}\n")
            return 1
        await store.audit(at=time.time(), actor=f"cli:{getpass.getuser()}", role="operator",
                          customer=None, action="token.revoke", target=args.id, detail={},
                          source="cli")
        out.write(f"revoked {args.id}\n")
        return 0
    finally:
        await engine.dispose()
