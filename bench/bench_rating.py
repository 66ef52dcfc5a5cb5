"""Rating benchmark: rate 100,000 synthetic call records of one month, then build the
monthly export (CSV and JSON) from them. Figures are printed, never asserted (DESIGN,
Testing).

    python -m bench.bench_rating [N]          # or through `make bench`

The records mimic a month of 50 sites of 20 users: three quarters to France (fixed,
mobile, DROM), the rest abroad (included or not), special numbers, emergency and internal
calls, durations from a few seconds to half an hour, over 5,000 distinct numbers (the
destination look-up is memoised per number, as in service).
"""

from __future__ import annotations

import gc
import random
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


def synthetic_records(n: int, sites: int = 50, seed: int = 25) -> list[CallRecord]:
    rng = random.Random(seed)
    numbers = _numbers(rng, 5000)
    out = []
    for i in range(n):
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


def main(n: int = 100_000) -> None:
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


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
