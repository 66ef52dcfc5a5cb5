"""`wte`: the command line of the switch.

    wte serve --config FILE [--sip-host H] [--sip-port P] [--rtp-ports MIN-MAX] [--data-dir DIR]
              [--node-id ID]
    wte cluster up --nodes N [--sip-port P] [--config FILE] [--run-dir DIR]
    wte db upgrade [--data-dir DIR]
    wte registrations [--config FILE] [--data-dir DIR]
    wte plan check FILE...
    wte plan explain FILE --from 501410 --dial 0612345678 [--at 2026-12-25T10:00]
    wte calls [--data-dir DIR] [--limit N]
    wte scenario run FILE... [--target HOST:PORT] [--engine own|pjsua2] [--junit out.xml]
                             [--carrier HOST:PORT] [--api-token TOKEN]
    wte devices [--data-dir DIR]
    wte provisioning create-code --user 501412 [--days 7] [--config FILE] [--data-dir DIR]
    wte billing export --month YYYY-MM [--customer ID] [--format csv|json]
    wte schedule set SCHEDULE open|closed|auto [--customer ID] [--config FILE] [--data-dir DIR]
    wte schedule list [--config FILE] [--data-dir DIR]
    wte announcements add FILE --customer ID --name NAME [--config FILE] [--data-dir DIR]
    wte announcements list [--customer ID] [--data-dir DIR]
    wte tokens create --role operator|customer-admin [--customer ID] [--name TEXT]
    wte tokens list [--customer ID] | wte tokens revoke ID
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import sys
import time
from pathlib import Path

DEFAULT_CONFIG = "config/example.yaml"
DEFAULT_DATA = "var"


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    # No log line needs its caller's file and line; skipping that lookup (findCaller walks
    # the stack) saves about a tenth of the CPU of a call at hundreds of calls per second.
    logging._srcfile = None
    # nor its thread, process or multiprocessing names: the format shows none of them, and
    # each LogRecord otherwise asks for all three
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # alembic narrates every plugin it loads at INFO; keep its migrations, drop the chatter
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def _cmd_serve(args: argparse.Namespace) -> int:
    from switch.app import ServeOptions, run
    from switch.transport.limits import raise_nofile_limit

    # every connection and RTP port is a descriptor: the soft default (often 1024) would
    # let a few hundred idle connections stop new calls (issue 20.3)
    raise_nofile_limit()

    return run(ServeOptions(config=Path(args.config), data_dir=Path(args.data_dir),
                            sip_host=args.sip_host, sip_port=args.sip_port,
                            rtp_ports=args.rtp_ports, node_id=args.node_id))


def _node_id(text: str) -> str:
    from switch.cluster.node import valid_node_id

    if not valid_node_id(text):
        raise argparse.ArgumentTypeError(f"{text!r}: want up to 48 letters, digits, '.', '_', '-'")
    return text


def _port_range(text: str) -> tuple[int, int]:
    low, sep, high = text.partition("-")
    try:
        lo, hi = int(low), int(high)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not MIN-MAX") from None
    if not sep or not 1024 <= lo < hi <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: want MIN-MAX within 1024-65535")
    return lo, hi


def _cmd_db_upgrade(args: argparse.Namespace) -> int:
    from switch.storage.cli import database_url, db_upgrade

    url = database_url(args.data_dir)
    db_upgrade(url)
    logging.getLogger("switch").info("database is at the latest schema")
    return 0


def _cmd_registrations(args: argparse.Namespace) -> int:
    from switch.storage.cli import database_url, list_registrations

    url = database_url(args.data_dir)
    return asyncio.run(list_registrations(url, sys.stdout, time.time()))


def _cmd_calls(args: argparse.Namespace) -> int:
    from switch.storage.cli import database_url, list_call_records

    return asyncio.run(list_call_records(database_url(args.data_dir), sys.stdout, args.limit))


def _cmd_calllog(args: argparse.Namespace) -> int:
    from dialplan import User, load_plan_data
    from dialplan.yamlsource import load_yaml_file
    from switch.storage.cli import database_url
    from switch.storage.user_settings import print_call_log

    plan = load_plan_data(load_yaml_file(Path(args.config)))
    owners = [c.id for c in plan.customers if isinstance(c.by_full_number.get(args.user), User)]
    if not owners:
        sys.stdout.write(f"error: no user {args.user} in {args.config}\n")
        return 1
    return asyncio.run(print_call_log(database_url(args.data_dir), owners[0], args.user,
                                      sys.stdout, mark_read=args.mark_read, limit=args.limit))


def _cmd_scenario_run(args: argparse.Namespace) -> int:
    from scenarios.cli import scenario_main

    return scenario_main(list(args.files), args.target, args.engine, args.junit, sys.stdout,
                         carrier=args.carrier, api_token=args.api_token)


def _cmd_devices(args: argparse.Namespace) -> int:
    from switch.storage.devices import devices_main

    return devices_main(args, sys.stdout)


def _cmd_billing_export(args: argparse.Namespace) -> int:
    from switch.storage.billing import run_export

    return run_export(args, sys.stdout)


def _cmd_schedule_set(args: argparse.Namespace) -> int:
    from switch.schedule_cli import schedule_set_main

    return schedule_set_main(args, sys.stdout, sys.stderr)


def _cmd_schedule_list(args: argparse.Namespace) -> int:
    from switch.schedule_cli import schedule_list_main

    return schedule_list_main(args, sys.stdout, sys.stderr)


def _cmd_tokens(args: argparse.Namespace) -> int:
    from switch.admin.tokens_cli import tokens_main

    return tokens_main(args, sys.stdout, sys.stderr)


def _cmd_announcements(args: argparse.Namespace) -> int:
    from switch.announcements import announcements_main

    return announcements_main(args, sys.stdout, sys.stderr)


def _cmd_cluster(args: argparse.Namespace) -> int:
    from switch.cluster.launcher import cluster_up

    return cluster_up(args, sys.stdout)


def _cmd_plan_check(args: argparse.Namespace) -> int:
    from dialplan.cli import plan_check

    return plan_check(list(args.files), sys.stdout)


def _cmd_plan_explain(args: argparse.Namespace) -> int:
    from dialplan.cli import plan_explain

    at = dt.datetime.fromisoformat(args.at) if args.at else None
    return plan_explain(args.file, args.caller, args.dial, at, sys.stdout)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wte",
        description="A SIP telephony core: registrar, B2BUA, multi-site dialplan and media.",
    )
    parser.add_argument("--log-level", default="info", help="debug, info, warning or error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the switch on a configuration file",
                           description="Run the switch: SIP over UDP and TCP on the SIP port "
                           "P, TLS on P+1, WebSocket on P+2, secure WebSocket on P+3, the HTTP "
                           "API on P+4; RTP on the configured media.port_min..port_max "
                           "(default 20000-29999). Stops cleanly on SIGINT/SIGTERM; "
                           "SIGHUP reloads the dialplan.")
    serve.add_argument("--config", default=DEFAULT_CONFIG,
                       help=f"configuration YAML (default {DEFAULT_CONFIG})")
    serve.add_argument("--sip-host", default=None, help="address to listen on (default from config)")
    serve.add_argument("--sip-port", type=int, default=None,
                       help="UDP and TCP port P; TLS P+1, WS P+2, WSS P+3, HTTP P+4")
    serve.add_argument("--rtp-ports", type=_port_range, default=None, metavar="MIN-MAX",
                       help="RTP port range (default media.port_min-port_max of the "
                       "config, 20000-29999); may not hold a signalling port")
    serve.add_argument("--data-dir", default=DEFAULT_DATA,
                       help="database, certificates and recordings (default var/)")
    serve.add_argument("--node-id", type=_node_id, default=None,
                       help="this node's id in a cluster on PostgreSQL (default: host name "
                       "and SIP port); letters, digits, '.', '_', '-'")
    serve.set_defaults(func=_cmd_serve)

    db = sub.add_parser("db", help="database schema commands")
    dbsub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    up = dbsub.add_parser("upgrade", help="apply every migration (alembic upgrade head)")
    up.add_argument("--config", default=DEFAULT_CONFIG, help="configuration YAML (unused today)")
    up.add_argument("--data-dir", default=DEFAULT_DATA, help="where the SQLite database lives")
    up.set_defaults(func=_cmd_db_upgrade)

    regs = sub.add_parser("registrations", help="list the registered phones, one binding per line",
                          description="Reads the database, so it works while the switch runs "
                          "and after it stopped or died.")
    regs.add_argument("--config", default=DEFAULT_CONFIG, help="configuration YAML")
    regs.add_argument("--data-dir", default=DEFAULT_DATA, help="where the SQLite database lives")
    regs.set_defaults(func=_cmd_registrations)

    calls = sub.add_parser("calls", help="print the latest call records as JSON lines",
                           description="Newest first; works while the switch runs and after.")
    calls.add_argument("--config", default=DEFAULT_CONFIG, help="configuration YAML")
    calls.add_argument("--data-dir", default=DEFAULT_DATA, help="where the SQLite database lives")
    calls.add_argument("--limit", type=int, default=100, help="how many records (default 100)")
    calls.set_defaults(func=_cmd_calls)

    clog = sub.add_parser("calllog", help="a user's placed, received and missed calls (JSON)",
                          description="The first line counts missed calls not read yet.")
    clog.add_argument("user", help="the user's full internal number, e.g. 501410")
    clog.add_argument("--config", default=DEFAULT_CONFIG, help="configuration YAML")
    clog.add_argument("--data-dir", default=DEFAULT_DATA, help="where the SQLite database lives")
    clog.add_argument("--limit", type=int, default=50, help="how many calls (default 50)")
    clog.add_argument("--mark-read", action="store_true", help="reset the missed counter")
    clog.set_defaults(func=_cmd_calllog)

    plan = sub.add_parser("plan", help="check or explain a dialplan")
    psub = plan.add_subparsers(dest="plan_command", required=True, metavar="ACTION")
    check = psub.add_parser("check", help="validate plan files; print every error or a summary")
    check.add_argument("files", nargs="+", metavar="FILE")
    check.set_defaults(func=_cmd_plan_check)
    explain = psub.add_parser("explain", help="show the routing decision for a dialed string")
    explain.add_argument("file", metavar="FILE")
    explain.add_argument("--from", dest="caller", required=True, help="caller's internal number")
    explain.add_argument("--dial", required=True, help="what the caller dials")
    explain.add_argument("--at", default=None,
                         help="ISO date and time; without a zone, the local time of the site "
                         "whose schedule decides (default: now, in the site's time zone)")
    explain.set_defaults(func=_cmd_plan_explain)
    scen = sub.add_parser("scenario", help="scripted call scenarios for testers")
    ssub = scen.add_subparsers(dest="scenario_command", required=True, metavar="ACTION")
    srun = ssub.add_parser("run", help="run scenario files (a directory means its *.yaml)",
                           description="Runs against --target, or starts a switch on the "
                           "example configuration when no target is given. Prints progress, "
                           "then 'N passed, M failed'.")
    srun.add_argument("files", nargs="+", metavar="FILE")
    srun.add_argument("--target", default=None, metavar="HOST:PORT",
                      help="a running switch (default: start one)")
    srun.add_argument("--engine", choices=["own", "pjsua2"], default="own",
                      help="own user agent (fast, concurrent) or pjsua2 (independent)")
    srun.add_argument("--junit", default=None, metavar="FILE", help="write JUnit XML here")
    srun.add_argument("--carrier", default=None, metavar="HOST:PORT",
                      help="where the target's carrier trunk points (with --target; default "
                      "the example's 127.0.0.1:5090)")
    srun.add_argument("--api-token", default=None, metavar="TOKEN",
                      help="with --target: read call records (expect_record) through the "
                      "switch's admin API on its HTTP port (SIP port + 4) with this operator "
                      "or customer-admin token")
    srun.set_defaults(func=_cmd_scenario_run)

    devices = sub.add_parser("devices", help="list the devices seen registering (JSON lines)",
                             description="User, vendor, model, firmware, MAC, transport, "
                             "source and last registration of every registered device.")
    devices.add_argument("--data-dir", default=DEFAULT_DATA,
                         help="where the SQLite database lives")
    devices.set_defaults(func=_cmd_devices)

    prov = sub.add_parser("provisioning", help="zero-touch provisioning: activation codes")
    from switch.storage.provisioning import add_provisioning_arguments

    add_provisioning_arguments(prov, DEFAULT_CONFIG, DEFAULT_DATA)

    billing = sub.add_parser("billing", help="monthly billing export")
    bsub = billing.add_subparsers(dest="billing_command", required=True, metavar="ACTION")
    bexp = bsub.add_parser("export", help="per site packs, pool, minutes and charges by zone; "
                           "per call the rated lines")
    from switch.storage.billing import add_export_arguments

    add_export_arguments(bexp, DEFAULT_CONFIG, DEFAULT_DATA)
    bexp.set_defaults(func=_cmd_billing_export)

    sched = sub.add_parser("schedule", help="the night switch: force schedules open or closed")
    from switch.schedule_cli import add_schedule_arguments

    sset, slist = add_schedule_arguments(sched, DEFAULT_CONFIG, DEFAULT_DATA)
    sset.set_defaults(func=_cmd_schedule_set)
    slist.set_defaults(func=_cmd_schedule_list)
    ann = sub.add_parser("announcements", help="customers' announcements and music on hold")
    from switch.announcements import add_arguments as add_announcement_arguments

    add_announcement_arguments(ann, DEFAULT_CONFIG, DEFAULT_DATA)
    ann.set_defaults(func=_cmd_announcements)
    tokens = sub.add_parser("tokens", help="admin API tokens: create (shown once), list, revoke")
    from switch.admin.tokens_cli import add_arguments as add_token_arguments

    add_token_arguments(tokens, DEFAULT_CONFIG, DEFAULT_DATA)
    tokens.set_defaults(func=_cmd_tokens)
    clus = sub.add_parser("cluster", help="Kamailio and N nodes on PostgreSQL, for a try")
    from switch.cluster.launcher import add_arguments as add_cluster_arguments

    add_cluster_arguments(clus, DEFAULT_CONFIG)
    clus.set_defaults(func=_cmd_cluster)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.log_level)
    from switch.storage.cli import guarded

    # a database that cannot be used (corrupt file, no schema) is one clear line, status 2
    result: int = guarded(args.func)(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
