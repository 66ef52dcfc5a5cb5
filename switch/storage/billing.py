"""`wte billing export`: read a month of call records from the database and write the
monthly export (rating.export) as CSV or JSON.

    wte billing export --month 2026-11 [--customer ID] [--format csv|json]
                       [--config PLAN.yaml] [--rating RATING.yaml] [--data-dir DIR]

The reading is here; the rating and the sums are pure (rating.engine, rating.export).
Functions write to the stream they are given; nothing here prints.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:  # the plan, rating and database code load when a command runs
    from sqlalchemy.ext.asyncio import AsyncEngine

    from rating.cdr import CallRecord

log = logging.getLogger(__name__)

DEFAULT_RATING = "config/rating.yaml"
_BATCH = 10_000


def _stored_fields() -> list[str]:
    """The record fields the table stores (as switch.storage.cdrs reads them)."""
    from rating.cdr import CallRecord

    from .models import CallRecordRow

    return [f.name for f in dataclasses.fields(CallRecord)
            if f.name in CallRecordRow.__table__.columns]


async def read_month_records(
    engine: AsyncEngine, month: str, customer: str | None = None
) -> list[CallRecord]:
    """The answered calls placed by users that may belong to `month` (its UTC bounds
    widened by the time zone offsets; rating.export keeps each site's own month)."""
    from sqlalchemy import select

    from rating.cdr import CallRecord
    from rating.export import month_window

    from .models import CallRecordRow

    fields = _stored_fields()
    columns: list[Any] = [getattr(CallRecordRow, name) for name in fields]
    lo, hi = month_window(month)
    q = (select(*columns)
         .where(CallRecordRow.start >= lo, CallRecordRow.start < hi,
                CallRecordRow.answer.is_not(None), CallRecordRow.customer.is_not(None))
         .order_by(CallRecordRow.start, CallRecordRow.id))
    if customer is not None:
        q = q.where(CallRecordRow.customer == customer)
    out: list[CallRecord] = []
    async with engine.connect() as conn:
        result = await conn.stream(q.execution_options(yield_per=_BATCH))
        async for part in result.partitions(_BATCH):
            out.extend(CallRecord(**dict(zip(fields, row, strict=True))) for row in part)
    return out


def add_export_arguments(p: argparse.ArgumentParser, default_config: str = "config/example.yaml",
                         default_data: str = "var") -> None:
    p.add_argument("--month", required=True, help="calendar month, YYYY-MM")
    p.add_argument("--customer", default=None, help="one customer id (default: all)")
    p.add_argument("--format", choices=("csv", "json"), default="csv")
    p.add_argument("--config", default=default_config, help="the plan (sites, users, packs)")
    p.add_argument("--rating", default=DEFAULT_RATING, help="bundle and tariff sheet YAML")
    p.add_argument("--data-dir", default=default_data, help="where the SQLite database lives")


async def export_month(url: str, args: argparse.Namespace, out: TextIO) -> int:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError

    from dialplan.loader import load_plan
    from dialplan.yamlsource import ConfigError
    from rating.export import build_export, on_net_of, render, sites_from_plan
    from rating.tariff import load_rating

    from .engine import create_engine, is_sqlite

    try:
        plan = load_plan(args.config)
        config = load_rating(args.rating)
    except ConfigError as exc:
        for issue in exc.issues:
            out.write(f"{issue}\n")
        return 1
    if is_sqlite(url):
        db = make_url(url).database
        if db and db != ":memory:" and not Path(db).exists():
            out.write(f"error: no database at {db}: run `wte db upgrade` first\n")
            return 1
    engine = create_engine(url)
    try:
        records = await read_month_records(engine, args.month, args.customer)
    except DBAPIError as exc:
        out.write(f"error: cannot read call records ({exc.orig}): run `wte db upgrade` first\n")
        return 1
    finally:
        await engine.dispose()
    exp = build_export(records, config, sites_from_plan(plan), args.month,
                       customer=args.customer, on_net=on_net_of(plan))
    log.info("billing export month=%s customer=%s records=%d lines=%d", args.month,
             args.customer, len(records), len(exp.calls))
    out.write(render(exp, args.format))
    return 0


def run_export(args: argparse.Namespace, out: TextIO) -> int:
    """The `wte billing export` command on parsed arguments; the exit status."""
    from rating.export import month_window

    from .cli import StorageError, database_url

    try:
        month_window(args.month)
    except ValueError as exc:
        out.write(f"error: {exc}\n")
        return 2
    try:
        return asyncio.run(export_month(database_url(args.data_dir), args, out))
    except StorageError as exc:
        out.write(f"error: {exc}\n")
        return 1


def billing_export_main(argv: Sequence[str], out: TextIO) -> int:
    """Stand-alone entry point: `python -m switch.storage.billing --month 2026-11`."""
    p = argparse.ArgumentParser(prog="wte billing export", description=__doc__)
    add_export_arguments(p)
    return run_export(p.parse_args(list(argv)), out)


if __name__ == "__main__":
    import sys

    sys.exit(billing_export_main(sys.argv[1:], sys.stdout))
