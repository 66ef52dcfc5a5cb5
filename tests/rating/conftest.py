"""Shared fixtures of the rating tests: the shipped rating file with pinned test prices, and
call records built the way the switch builds them (dialed string -> dialplan number)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from dialplan import Plan, load_plan
from dialplan.numbers import classify_external
from dialplan.packs import Pack
from dialplan.yamlsource import load_yaml_file
from rating.cdr import CallRecord
from rating.engine import SiteInfo
from rating.tariff import RatingConfig, load_rating_data

ROOT = Path(__file__).resolve().parents[2]
RATING_YAML = ROOT / "config" / "rating.yaml"
PARIS = ZoneInfo("Europe/Paris")
REUNION = ZoneInfo("Indian/Reunion")

# Test prices (the shipped sheet's figures are examples an operator replaces): per minute.
TEST_TARIFF: dict[str, Any] = {
    "currency": "EUR",
    "increments": {"first": 30, "then": 1},
    "connection_fee": "0.10",
    "prices": {
        "france": {"fixed": "0.02", "mobile": "0.05"},
        "drom": {"fixed": "0.05", "mobile": "0.12"},
        "europe": {"fixed": "0.06", "mobile": "0.15"},
        "north_america": {"fixed": "0.04", "mobile": "0.04"},
        "maghreb": {"fixed": "0.25", "mobile": "0.45"},
        "world_1": {"fixed": "0.20", "mobile": "0.35"},
        "world_2": {"fixed": "0.35", "mobile": "0.55"},
        "world_3": {"fixed": "0.90", "mobile": "1.20"},
    },
}


def make_config(minutes_per_user: int = 500) -> RatingConfig:
    src = load_yaml_file(RATING_YAML)
    src.data["tariff"] = TEST_TARIFF
    src.data["bundle"]["minutes_per_user"] = minutes_per_user
    return load_rating_data(src)


@pytest.fixture(scope="session")
def plan() -> Plan:
    return load_plan(ROOT / "config" / "example.yaml")


@pytest.fixture(scope="session")
def config() -> RatingConfig:
    return make_config()


@pytest.fixture(scope="session")
def small_config() -> RatingConfig:
    """2 minutes per user: pools small enough to run out in a test."""
    return make_config(minutes_per_user=2)


SITES: dict[tuple[str, str], SiteInfo] = {
    # 5 users: one pool of 5 x the minutes per user (2.6.1's example)
    ("acme", "01"): SiteInfo("acme", "01", "Toulouse", PARIS,
                             {Pack.CALLING: 2, Pack.SUITE: 2, Pack.WORKSPACE: 1}),
    ("acme", "02"): SiteInfo("acme", "02", "Rennes", PARIS, {Pack.CALLING: 1}),
    ("acme", "03"): SiteInfo("acme", "03", "Saint-Denis", REUNION, {Pack.SUITE: 1}),
}

_ids = itertools.count(1)


def epoch(text: str, tz: ZoneInfo = PARIS) -> float:
    """'2026-11-30 23:58:00' in `tz` (or an ISO string with an offset) -> epoch seconds."""
    t = datetime.fromisoformat(text)
    if t.tzinfo is None:
        t = t.replace(tzinfo=tz)
    return t.timestamp()


def record(dialed: str, site: str, start: float, seconds: float, *,
           decision: str | None = None, customer: str | None = "acme",
           answered: bool = True, rid: str | None = None) -> CallRecord:
    """A closed call record as the switch writes it for a user of `site` dialing `dialed`."""
    emergency = dialed in ("112", "15", "17", "18")
    if decision is None:
        decision = "emergency" if emergency else "external"
    callee: str | None = dialed
    if decision == "external":
        cls = classify_external(dialed, "FR")
        assert cls.error is None, (dialed, cls.error)
        callee = cls.e164 or cls.digits
    answer = start + 3 if answered else None
    return CallRecord(
        id=rid or f"r{next(_ids):06d}", call_id=f"c{dialed}{start}", caller="501410",
        callee=callee, dialed=f"sip:{dialed}@wte.example", decision=decision, site=site,
        customer=customer, start=start, answer=answer,
        end=(answer + seconds) if answer is not None else start + 20,
        disposition="answered" if answered else "no_answer", status=200 if answered else 480,
        emergency=emergency, billable=not emergency,
    )


RecordFactory = Callable[..., CallRecord]
