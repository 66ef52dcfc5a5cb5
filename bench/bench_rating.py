"""Rating benchmark: rate 100,000 synthetic call records of one month, then build the
monthly export (CSV and JSON) from them. Figures are printed, never asserted (DESIGN,
Testing).

    python -m bench.bench_rating [N] [PG_N]   # or through `make bench`

Then, on PostgreSQL (TEST_DATABASE_URL, default the test server at 127.0.0.1:5432, in a
schema of its own dropped afterwards): PG_N records (default 1,000,000, or
WTE_BENCH_PG_RECORDS) loaded with COPY, and the `wte billing export` path timed: read the
month from the database, rate, sum, render CSV; and the live pool count (issue 25: one
transaction per ended call) in counts per second. Skipped when PostgreSQL does not answer.

The records mimic a month of 50 sites of 20 users: three quarters to France (fixed,
mobile, DROM), the rest abroad (included or not), special numbers, emergency and internal
calls, durations from a few seconds to half an hour, over 5,000 distinct numbers (the
destination look-up is memoised per number, as in service).
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dialplan.packs import Pack  # noqa: E402
from rating.cdr import CallRecord  # noqa: E402
from rating.engine import SiteInfo, destination, rate_records  # noqa: E402
from rating.export import build_export, to_csv, to_json  # noqa: E402
from rating.tariff import load_rating  # noqa: E402

MONTH_START = 1_793_487_600.0  # 2026-11-01 00:00 Europe/Paris
MONTH_SECONDS = 30 * 86400


def _numbers(rng: random.Random, n: int) -> list[tuple[str, str]]:
    """(callee, decision) pool: national mostly, some abroad, special, emergency, internal."""
    kinds: list[tuple[int, Callable[[], str], str]] = [
        (40, lambda: f"+335{rng.randrange(10**8):08d}", "external"),  # fixed (05)
        (25, lambda: f"+336{rng.randrange(10**8):08d}", "external"),  # mobile (06)
        (5, lambda: f"+262692{rng.randrange(10**6):06d}", "external"),  # Réunion mobile
        (3, lambda: f"+590590{rng.randrange(10**6):06d}", "external"),  # Guadeloupe fixed
        (8, lambda: f"+4930{rng.randrange(10**8):08d}", "external"),  # Berlin, included
        (3, lambda: f"+376{rng.choice('36')}{rng.randrange(10**5):05d}", "external"),  # AD
        (3, lambda: f"+7912{rng.randrange(10**7):07d}", "external"),  # Russia mobile
        (2, lambda: f"+33899{rng.randrange(10**6):06d}", "external"),  # premium
        (1, lambda: "3639", "external"),
        (1, lambda: "112", "emergency"),
        (9, lambda: f"50{rng.randrange(10):01d}{rng.randrange(400, 420)}", "user"),
    ]
    weights = [k[0] for k in kinds]
    out = []
    for _ in range(n):
        _, make, decision = rng.choices(kinds, weights)[0]
        out.append((make(), decision))
    return out


def synthetic_records(n: int, sites: int = 50, seed: int = 25,
                      first_id: int = 0) -> list[CallRecord]:
    rng = random.Random(seed)
    numbers = _numbers(rng, 5000)
    out = []
    for i in range(first_id, first_id + n):
        callee, decision = rng.choice(numbers)
        start = MONTH_START + rng.random() * MONTH_SECONDS
        seconds = int(rng.expovariate(1 / 180)) + 1
        out.append(CallRecord(
            id=f"r{i:07d}", call_id=f"c{i}", caller="501410", callee=callee,
            dialed=f"sip:{callee}@bench", decision=decision, site=f"{i % sites:02d}",
            customer="bench", start=start, answer=start + 4, end=start + 4 + seconds,
            disposition="answered", status=200, emergency=decision == "emergency",
            billable=decision != "emergency",
        ))
    return out


def main(n: int = 100_000, pg_n: int | None = None) -> None:
    config = load_rating(REPO / "config" / "rating.yaml")
    paris = ZoneInfo("Europe/Paris")
    sites = {("bench", f"{s:02d}"): SiteInfo("bench", f"{s:02d}", f"Site {s}", paris,
                                             {Pack.CALLING: 15, Pack.WORKSPACE: 5})
             for s in range(50)}
    records = synthetic_records(n)
    print(f"rating: {n} call records, 50 sites x 20 users, one month")
    for label in ("cold (destination look-ups uncached)", "warm"):
        if label.startswith("cold"):
            destination.cache_clear()
        gc.collect()
        w0, c0 = time.perf_counter(), time.process_time()
        rated = rate_records(records, config, sites)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        print(f"  rate, {label}: {n / wall:,.0f} calls/s, {wall * 1e6 / n:.1f} us wall "
              f"{cpu * 1e6 / n:.1f} us CPU per call ({len(rated)} lines)")
    gc.collect()
    w0, c0 = time.perf_counter(), time.process_time()
    exp = build_export(records, config, sites, "2026-11")
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    print(f"  export (rate + sum by site and zone): {wall:.2f} s wall, {cpu:.2f} s CPU")
    for name, fn in (("CSV", to_csv), ("JSON", to_json)):
        w0 = time.perf_counter()
        text = fn(exp)
        print(f"  render {name}: {time.perf_counter() - w0:.2f} s, {len(text) / 1e6:.1f} MB")
    del records, rated, exp
    gc.collect()
    if pg_n is None:
        pg_n = int(os.environ.get("WTE_BENCH_PG_RECORDS", "1000000"))
    asyncio.run(_pg_export(pg_n))


DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


async def _pg_export(n: int) -> None:
    import asyncpg
    from sqlalchemy.engine import make_url

    from rating.export import render
    from rating.live import LiveRater
    from switch.storage.billing import _stored_fields, read_month_records
    from switch.storage.engine import create_engine
    from switch.storage.models import Base
    from switch.storage.pool import SqlPoolStore

    base = os.environ.get("TEST_DATABASE_URL") or DEFAULT_PG
    dsn = make_url(base).set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        admin = await asyncpg.connect(dsn, timeout=3)
    except Exception as exc:
        print(f"  PostgreSQL export: skipped, no server at {make_url(base)} ({exc!r})")
        return
    schema = f"wte_bench_{secrets.token_hex(4)}"
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    url = f"{base}{'&' if '?' in base else '?'}schema={schema}"
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        fields = _stored_fields()
        w0 = time.perf_counter()
        chunk = 100_000
        for lo in range(0, n, chunk):
            part = synthetic_records(min(chunk, n - lo), seed=25 + lo, first_id=lo)
            await admin.copy_records_to_table(
                "call_records", schema_name=schema, columns=fields,
                records=[tuple(getattr(r, f) for f in fields) for r in part])
        await admin.execute(f'ANALYZE "{schema}".call_records')
        print(f"  PostgreSQL: {n:,} call records loaded (COPY) in {time.perf_counter() - w0:.1f} s")
        config = load_rating(REPO / "config" / "rating.yaml")
        paris = ZoneInfo("Europe/Paris")
        sites = {("bench", f"{s:02d}"): SiteInfo("bench", f"{s:02d}", f"Site {s}", paris,
                                                 {Pack.CALLING: 15, Pack.WORKSPACE: 5})
                 for s in range(50)}
        destination.cache_clear()
        gc.collect()
        w0, c0 = time.perf_counter(), time.process_time()
        records = await read_month_records(engine, "2026-11")
        read = time.perf_counter() - w0
        exp = build_export(records, config, sites, "2026-11")
        rated = time.perf_counter() - w0
        text = render(exp, "csv")
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        print(f"  export of a month of {len(records):,} records from PostgreSQL: {wall:.1f} s "
              f"wall ({read:.1f} s read, {rated - read:.1f} s rate and sum, "
              f"{wall - rated:.1f} s CSV of {len(text) / 1e6:.0f} MB), {cpu:.1f} s CPU")
        del records, exp, text
        # the live pool: one transaction per ended call, as the switch counts them
        store = SqlPoolStore(engine)
        rater = LiveRater(config, sites)
        live = synthetic_records(2000, seed=7, first_id=10_000_000)
        w0 = time.perf_counter()
        for r in live:
            await store.count(r, rater, now=0.0)
        wall = time.perf_counter() - w0
        print(f"  live pool count on PostgreSQL: {len(live) / wall:,.0f} ended calls/s "
              f"({wall * 1e3 / len(live):.2f} ms each, one transaction)")
    finally:
        await engine.dispose()
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000,
         int(sys.argv[2]) if len(sys.argv) > 2 else None)
