"""`wte schedule set|list`: the night switch from the command line (issue 12).

    wte schedule set SCHEDULE open|closed|auto [--customer ID] [--config FILE] [--data-dir DIR]
    wte schedule list [--config FILE] [--data-dir DIR]

`set` checks the schedule against the plan of `--config` first (a wrong id writes nothing),
then writes the row in the database of `--data-dir` exactly as the switch opens it
(`DATABASE_URL`, else `DIR/wte.db`, brought to the latest schema). It works whether the
switch runs or not: a running switch polls the table and applies the change within a
second; a switch started later loads it. Schedule ids are per customer: an id that several
customers use needs `--customer`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import getpass
import time
from collections.abc import Sequence
from typing import TextIO
from zoneinfo import ZoneInfo

from dialplan import (
    AutoAttendant,
    ConfigError,
    Customer,
    HuntGroup,
    Plan,
    Queue,
    ScheduleMode,
    load_plan_data,
    load_yaml_file,
)
from dialplan.schedule import Schedule, schedule_open
from switch.storage.cli import database_url, db_upgrade
from switch.storage.engine import create_engine
from switch.storage.schedules import ScheduleModeRecord, SqlScheduleModes

HEADER = "customer\tschedule\tmode\topen_now\tchanged_at\tchanged_by"


class ScheduleChoiceError(ValueError):
    """The schedule named on the command line is not (or not uniquely) in the plan."""


def find_schedule(plan: Plan, schedule: str, customer: str | None) -> tuple[Customer, Schedule]:
    """The customer and schedule `schedule` names; ScheduleChoiceError says why not."""
    if customer is not None and not any(c.id == customer for c in plan.customers):
        known = ", ".join(c.id for c in plan.customers)
        raise ScheduleChoiceError(f"no customer {customer!r} in the plan (customers: {known})")
    owners = [c for c in plan.customers
              if schedule in c.schedules and (customer is None or c.id == customer)]
    if not owners:
        where = f"customer {customer}" if customer is not None else "the plan"
        known = ", ".join(f"{c.id}/{s}" for c in plan.customers for s in c.schedules
                          if customer is None or c.id == customer) or "none"
        raise ScheduleChoiceError(f"no schedule {schedule!r} in {where} (schedules: {known})")
    if len(owners) > 1:
        raise ScheduleChoiceError(
            f"schedule {schedule!r} exists in several customers "
            f"({', '.join(c.id for c in owners)}): say which with --customer ID")
    return owners[0], owners[0].schedules[schedule]


def schedule_zone(customer: Customer, schedule: str) -> ZoneInfo:
    """The time zone a schedule is read in: the site of the first group, queue or
    auto-attendant that uses it (routing reads it there), else the first site's."""
    for site in customer.sites:
        groups: tuple[HuntGroup | Queue | AutoAttendant, ...] = (
            *site.hunt_groups, *site.queues, *site.auto_attendants)
        if any(g.schedule is not None and g.schedule.id == schedule for g in groups):
            return site.timezone
    return customer.sites[0].timezone if customer.sites else ZoneInfo("UTC")


def _line(customer: Customer, schedule: Schedule, record: ScheduleModeRecord | None,
          now: dt.datetime) -> str:
    mode = record.mode if record is not None else ScheduleMode.AUTO
    is_open, _why = schedule_open(schedule, now, schedule_zone(customer, schedule.id), mode)
    changed = "-" if record is None else dt.datetime.fromtimestamp(
        record.changed_at, dt.UTC).isoformat(timespec="seconds")
    by = "-" if record is None else record.changed_by
    return (f"{customer.id}\t{schedule.id}\t{mode.value}\t{'yes' if is_open else 'no'}\t"
            f"{changed}\t{by}")


def _load(config: str, out: TextIO) -> Plan | None:
    try:
        return load_plan_data(load_yaml_file(config))
    except ConfigError as exc:
        for issue in exc.issues:
            out.write(f"error: {issue}\n")
        return None
    except OSError as exc:
        out.write(f"error: cannot read {config}: {exc.strerror or exc}\n")
        return None


async def _set(url: str, customer: str, schedule: str, mode: ScheduleMode, by: str,
               now: float) -> ScheduleModeRecord:
    engine = create_engine(url)
    try:
        return await SqlScheduleModes(engine).set(customer, schedule, mode, by, now)
    finally:
        await engine.dispose()


async def _all(url: str) -> list[ScheduleModeRecord]:
    engine = create_engine(url)
    try:
        return await SqlScheduleModes(engine).all()
    finally:
        await engine.dispose()


def schedule_set_main(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    plan = _load(str(args.config), err)
    if plan is None:
        return 2
    try:
        customer, schedule = find_schedule(plan, str(args.schedule), args.customer)
    except ScheduleChoiceError as exc:
        err.write(f"error: {exc}\n")
        return 1
    mode = ScheduleMode(args.mode)
    url = database_url(str(args.data_dir))
    db_upgrade(url)  # idempotent: a fresh data directory gets its schema
    record = asyncio.run(_set(url, customer.id, schedule.id, mode,
                              f"cli:{_who()}", time.time()))
    out.write(HEADER + "\n")
    out.write(_line(customer, schedule, record, dt.datetime.now(dt.UTC)) + "\n")
    return 0


def schedule_list_main(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """One line per schedule of the plan: its mode, whether it is open now, who forced it."""
    plan = _load(str(args.config), err)
    if plan is None:
        return 2
    url = database_url(str(args.data_dir))
    db_upgrade(url)
    records = {(r.customer, r.schedule): r for r in asyncio.run(_all(url))}
    now = dt.datetime.now(dt.UTC)
    out.write(HEADER + "\n")
    for c in plan.customers:
        for sid, schedule in c.schedules.items():
            out.write(_line(c, schedule, records.get((c.id, sid)), now) + "\n")
    return 0


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "unknown"


def add_schedule_arguments(parser: argparse.ArgumentParser, default_config: str,
                           default_data: str) -> Sequence[argparse.ArgumentParser]:
    """The `set` and `list` actions under `wte schedule` (their `func` is set by the
    caller, which owns stdout)."""
    sub = parser.add_subparsers(dest="schedule_command", required=True, metavar="ACTION")
    set_ = sub.add_parser(
        "set", help="force a schedule open or closed, or back to its hours (auto)",
        description="The night switch: works whether the switch runs or not; a running "
        "switch applies it within a second, and the state survives restarts.")
    set_.add_argument("schedule", metavar="SCHEDULE", help="the schedule id of the plan")
    set_.add_argument("mode", choices=[m.value for m in ScheduleMode],
                      help="open, closed, or auto (follow the hours and holidays)")
    set_.add_argument("--customer", default=None, metavar="ID",
                      help="the customer, when several have a schedule of that id")
    list_ = sub.add_parser("list", help="every schedule: its mode and whether it is open now")
    for p in (set_, list_):
        p.add_argument("--config", default=default_config,
                       help=f"configuration YAML (default {default_config})")
        p.add_argument("--data-dir", default=default_data,
                       help=f"where the database lives (default {default_data}/)")
    return set_, list_
