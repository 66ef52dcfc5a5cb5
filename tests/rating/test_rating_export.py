"""The monthly export, on records built here: per site packs, pool, minutes used, charges by
zone; per call the rated line; CSV and JSON; the same figures every time."""

from __future__ import annotations

import csv
import io
import json
import random
from decimal import Decimal

import pytest

from dialplan import Plan
from rating.cdr import CallRecord
from rating.export import (
    build_export,
    month_window,
    on_net_of,
    parse_month,
    render,
    sites_from_plan,
    to_csv,
    to_json,
)
from rating.tariff import RatingConfig

from .conftest import SITES, epoch, record

D = Decimal


def _month_records() -> list[CallRecord]:
    return [
        # site 02 (1 user x 2 min = 120 s): 100 included, then 20 + 30 overage, then 40
        # charged from the start
        record("0562070499", "02", epoch("2026-11-03 09:00:00"), 100, rid="a1"),
        record("0612345678", "02", epoch("2026-11-04 09:00:00"), 50, rid="a2"),
        record("0262412345", "02", epoch("2026-11-05 09:00:00"), 40, rid="a3"),
        record("00376312345", "02", epoch("2026-11-06 09:00:00"), 60, rid="a4"),  # AD mobile
        record("0899123456", "02", epoch("2026-11-07 09:00:00"), 60, rid="a5"),
        record("112", "02", epoch("2026-11-08 09:00:00"), 300, rid="a6"),
        record("0612345678", "02", epoch("2026-11-09 09:00:00"), 0, answered=False, rid="a7"),
        # other months: before, and a call starting on 1 December at 00:10 in Paris
        record("0612345678", "02", epoch("2026-10-31 23:50:00"), 600, rid="b1"),
        record("0612345678", "02", epoch("2026-12-01 00:10:00"), 600, rid="b2"),
        # site 01 (5 users x 2 min = 600 s), another customer's call
        record("0612345678", "01", epoch("2026-11-10 10:00:00"), 90, rid="c1"),
        record("0612345678", "09", epoch("2026-11-10 10:00:00"), 90, customer="other",
               rid="d1"),
    ]


def test_site_figures(small_config: RatingConfig) -> None:
    exp = build_export(_month_records(), small_config, SITES, "2026-11", customer="acme")
    assert [s.site for s in exp.sites] == ["01", "02", "03"]  # every site of the customer
    s01, s02, s03 = exp.sites
    assert (s02.pool_seconds, s02.used_seconds, s02.included_calls) == (120, 120, 2)
    assert s02.packs == (("calling", 1),)
    assert s01.packs == (("calling", 2), ("suite", 2), ("workspace", 1))
    assert (s01.active_users, s01.pool_seconds, s01.used_seconds) == (5, 600, 90)
    assert (s03.used_seconds, s03.charges) == (0, ())  # packs are billed without calls
    assert [(c.zone, c.charge, c.calls, c.seconds, c.amount) for c in s02.charges] == [
        ("drom", "overage", 1, 40, D("0.1333")),  # 0.10 + 0.05 x 40/60
        ("europe", "not_included", 1, 60, D("0.2500")),  # 0.10 + 0.15
        ("france", "overage", 1, 30, D("0.0250")),  # 0.05 x 30/60
        ("service à valeur ajoutée", "special", 1, 60, D("1.3000")),  # 0.50 + 0.80
    ]
    assert s02.overage_seconds == 70
    assert s02.overage_amount == D("0.1583")
    assert s02.amount == D("1.7083")
    assert [x.record_id for x in exp.calls] == ["c1", "a1", "a2", "a3", "a4", "a5", "a6"]


def test_a_call_starting_in_the_month_counts_even_across_midnight(
    small_config: RatingConfig,
) -> None:
    dec = build_export(_month_records(), small_config, SITES, "2026-12", customer="acme")
    assert [x.record_id for x in dec.calls] == ["b2"]
    oct_ = build_export(_month_records(), small_config, SITES, "2026-10", customer="acme")
    assert [(x.record_id, x.drawn_seconds, x.charged_seconds) for x in oct_.calls] == [
        ("b1", 120, 480)]


def test_re_running_gives_the_same_text(small_config: RatingConfig) -> None:
    records = _month_records()
    first = (to_json(build_export(records, small_config, SITES, "2026-11")),
             to_csv(build_export(records, small_config, SITES, "2026-11")))
    random.Random(3).shuffle(records)
    again = (to_json(build_export(records, small_config, SITES, "2026-11")),
             to_csv(build_export(records, small_config, SITES, "2026-11")))
    assert again == first


def test_json_document(small_config: RatingConfig) -> None:
    doc = json.loads(render(build_export(_month_records(), small_config, SITES, "2026-11"),
                            "json"))
    assert doc["month"] == "2026-11" and doc["currency"] == "EUR"
    sites = {(s["customer"], s["site"]): s for s in doc["sites"]}
    assert ("other", "09") in sites  # a site the plan does not know still shows its calls
    s02 = sites[("acme", "02")]
    assert (s02["pool_minutes"], s02["used_minutes"], s02["remaining_minutes"]) == (
        "2.00", "2.00", "0.00")
    assert (s02["overage_minutes"], s02["overage_amount"]) == ("1.17", "0.1583")
    a2 = next(c for c in doc["calls"] if c["record_id"] == "a2")
    assert a2 == {
        "record_id": "a2", "customer": "acme", "site": "02",
        "start": "2026-11-04T09:00:00+01:00", "caller": "501410", "callee": "+33612345678",
        "class": "included", "zone": "france", "country": "FR", "kind": "mobile",
        "group": "france", "special": None, "seconds": 50, "drawn_seconds": 20,
        "charged_seconds": 30, "amount": "0.0250",
    }


def test_csv_tables(small_config: RatingConfig) -> None:
    text = render(build_export(_month_records(), small_config, SITES, "2026-11",
                               customer="acme"), "csv")
    sections = {}
    for block in text.strip("\n").split("\n\n"):
        title, _, body = block.partition("\n")
        sections[title] = list(csv.DictReader(io.StringIO(body)))
    assert list(sections) == ["# sites", "# charges", "# calls"]
    site02 = next(r for r in sections["# sites"] if r["site"] == "02")
    assert (site02["packs"], site02["pool_minutes"], site02["amount"]) == (
        "calling=1", "2.00", "1.7083")
    assert len(sections["# charges"]) == 4
    calls = sections["# calls"]
    assert [c["record_id"] for c in calls] == ["c1", "a1", "a2", "a3", "a4", "a5", "a6"]
    assert sum(D(c["amount"]) for c in calls) == D("1.7083")


def test_sites_from_the_plan_count_users_by_pack(plan: Plan, config: RatingConfig) -> None:
    c = plan.customers[0]
    sites = sites_from_plan(plan)
    toulouse = sites[(c.id, c.sites[0].code)]
    assert toulouse.timezone == c.sites[0].timezone
    assert sum(toulouse.packs.values()) == len(c.sites[0].users)
    assert toulouse.active_users(config) == sum(toulouse.packs.values()) > 0
    assert toulouse.pool_seconds(config) == 500 * 60 * toulouse.active_users(config)
    own = plan.customers[0].sites[0].users[0].public_number
    assert own is not None and on_net_of(plan)(own)
    assert not on_net_of(plan)("+33612345678")


def test_month_arguments() -> None:
    lo, hi = month_window("2026-12")
    assert lo < epoch("2026-12-01T00:00:00-12:00") and hi > epoch("2026-12-31T23:59:59+14:00")
    for bad in ("2026-13", "2026-1", "26-11", "november"):
        with pytest.raises(ValueError):
            parse_month(bad)
