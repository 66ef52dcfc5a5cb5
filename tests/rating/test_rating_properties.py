"""Properties of the pool over arbitrary months of calls (hypothesis)."""

from __future__ import annotations

from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from rating.engine import RateClass, rate_records
from rating.tariff import RatingConfig

from .conftest import SITES, epoch, make_config, record

CONFIG: RatingConfig = make_config(minutes_per_user=2)
CALLEES = ["0612345678", "0562070499", "0262412345", "00376312345", "0899123456", "112",
           "00376712345"]
T0 = epoch("2026-11-01 00:00:00")

calls = st.lists(
    st.tuples(st.sampled_from(["01", "02", "03"]), st.sampled_from(CALLEES),
              st.integers(0, 40 * 86400), st.integers(0, 400)),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(calls)
def test_pools_are_never_overdrawn_and_splits_add_up(spec: list[tuple[str, str, int, int]]) -> None:
    records = [record(n, s, T0 + t, d, rid=f"p{i:03d}") for i, (s, n, t, d) in enumerate(spec)]
    rated = rate_records(records, CONFIG, SITES)
    drawn: dict[tuple[str, str], int] = defaultdict(int)
    exhausted: set[tuple[str, str]] = set()
    for x in rated:
        key = (x.site, x.month)
        assert x.amount >= 0 and x.drawn_seconds <= x.seconds
        if x.rate_class is not RateClass.INCLUDED:
            assert x.drawn_seconds == 0
            continue
        if key in exhausted:
            assert x.drawn_seconds == 0 or x.seconds == 0
        drawn[key] += x.drawn_seconds
        if x.charged_seconds:
            exhausted.add(key)
            if x.drawn_seconds:  # split: the rest, per second, nothing twice
                assert x.charged_seconds == x.seconds - x.drawn_seconds
            else:
                assert x.charged_seconds == max(30, x.seconds)
        else:
            assert x.drawn_seconds == x.seconds
    for (site, _), used in drawn.items():
        assert used <= SITES[("acme", site)].pool_seconds(CONFIG)
