"""The live minute pool over real SIP (issue 25): a switch whose rating file gives site 01
a pool of a few seconds (`bundle.seconds_per_user: 1`, 5 users: 5 s, so that real calls of
two seconds exhaust it; the pool of the shipped file is 500 minutes per user), and calls
from 501410 to a mobile through the carrier until it is used up. The pool reaches 80 % then
100 %: one log line and one webhook POST each; the live state counts each call once; and
`wte billing export` charges as overage exactly the seconds past the pool. Site 01 has both
policies on: past the pool, and to a destination not included, a call gets 403 with a
Warning and leaves a record, while 112 still goes out.
"""

from __future__ import annotations

import json
import math
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pjsua2 as pj
import pytest
import yaml

from rating.bundle import month_of
from tests.support.carrier import Carrier
from tests.support.pjphone import make_phone
from tests.support.server import (
    REPO,
    RunningSwitch,
    call_records,
    config_with,
    start_switch,
    wait_record,
)
from tests.support.webhook import WebhookReceiver
from tests.system.test_call_limits import final, invite_as

CONFIRMED = pj.PJSIP_INV_STATE_CONFIRMED
DISCONNECTED = pj.PJSIP_INV_STATE_DISCONNECTED
POOL = 5  # seconds: 1 s per user, 5 users on site 01 (2 calling, 1 suite, 2 workspace)
MAX_CALLS = 4
TALK = 2.0  # seconds each call stays up: the pool of 5 s is used up by the 2nd or 3rd


@pytest.fixture(scope="module")
def hook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


def rating_file(directory: Path) -> Path:
    """The shipped rating file with a pool of 1 s per user and per-second billing (so that
    the overage is the seconds past the pool, without a first increment)."""
    data = yaml.safe_load((REPO / "config" / "rating.yaml").read_text(encoding="utf-8"))
    data["bundle"]["seconds_per_user"] = 1
    data["tariff"]["increments"] = {"first": 1, "then": 1}
    path = directory / "rating-test.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory,
          hook: WebhookReceiver) -> Iterator[tuple[RunningSwitch, Carrier, Path]]:
    tmp = tmp_path_factory.mktemp("pool")
    carrier = Carrier()
    rating = rating_file(tmp)
    config = config_with(tmp, {
        "calls.ring_timeout": 5,
        "rating.file": str(rating),
        "rating.webhook_url": hook.url("/pool"),
        "rating.refuse_past_pool": ["acme/01"],
        "rating.refuse_not_included": ["acme/01"],
        "auth.max_failures": 10000,
    }, carrier_port=carrier.port)
    switch = start_switch(tmp / "var", config=config)
    yield switch, carrier, rating
    switch.stop()
    carrier.close()


def alerts_logged(switch: RunningSwitch) -> list[dict[str, Any]]:
    marker = "minute pool alert "
    return [json.loads(line.split(marker, 1)[1]) for line in switch.log_lines
            if marker in line]


def test_calls_past_the_pool_alert_at_80_and_100_and_bill_the_overage(
        pj_lib: Any, setup: tuple[RunningSwitch, Carrier, Path],
        hook: WebhookReceiver) -> None:
    switch, carrier, rating = setup
    phone = make_phone(pj_lib, transport="UDP", user="501410", host=switch.host,
                       port=switch.port, password="demo-501410", register=True)
    call_ids: list[str] = []
    try:
        assert phone.wait_registration(lambda e: e[0] == 200, since=0) is not None
        for _ in range(MAX_CALLS):
            carrier.reset()
            call = phone.call(f"sip:0612345678@{switch.host}:{switch.port}")
            invite, src = carrier.expect_request("INVITE", poll=pj_lib.poll)
            carrier.answer(invite, src)
            assert pj_lib.wait_until(lambda c=call: c.state == CONFIRMED, 5), \
                switch.log_text()[-2000:]
            pj_lib.wait_until(lambda: False, TALK)
            call.hangup(pj.CallOpParam(True))
            assert pj_lib.wait_until(lambda c=call: c.state == DISCONNECTED, 5)
            call_ids.append(call.sip_call_id)
            # counted within moments of the BYE; the 100 % alert says the pool is used up
            if pj_lib.wait_until(lambda: len(hook.received) >= 2, 1.5):
                break
    finally:
        phone.shutdown()
    calls = len(call_ids)
    assert calls >= 2, "one call used the whole pool: the calls ran far longer than asked"

    logged = alerts_logged(switch)
    assert [a["percent"] for a in logged] == [80, 100], switch.log_text()[-3000:]
    assert [a["percent"] for a in hook.received] == [80, 100]
    for event in hook.received:
        assert event["event"] == "minute_pool_alert"
        assert (event["customer"], event["site"]) == ("acme", "01")
    assert hook.received[1]["exhausted"] is True and hook.received[1]["remaining_minutes"] == "0.00"

    # the records of the three calls, and the seconds they were rated on
    records = [r for r in call_records(switch.data_dir) if r["call_id"] in call_ids]
    assert len(records) == calls and all(r["disposition"] == "answered" for r in records)
    seconds = [math.ceil(float(str(r["end"])) - float(str(r["answer"]))) for r in records]
    assert all(s >= TALK for s in seconds)
    total = sum(seconds)
    assert total > POOL

    # the live state: each record counted once, the pool used up, both alerts stored
    db = sqlite3.connect(switch.data_dir / "wte.db")
    try:
        usage = db.execute("SELECT customer, site, used_seconds, pool_seconds, alerted"
                           " FROM site_pool_usage").fetchall()
        rated = db.execute("SELECT COUNT(*), SUM(seconds), SUM(drawn_seconds)"
                           " FROM rated_calls").fetchone()
    finally:
        db.close()
    assert usage == [("acme", "01", POOL, POOL, 100)]
    assert rated == (calls, total, POOL)

    # the monthly export: the pool used, the rest overage at the France mobile price
    month = month_of(float(str(records[0]["start"])), ZoneInfo("Europe/Paris"))
    out = subprocess.run(
        [sys.executable, "-m", "switch", "billing", "export", "--month", month,
         "--format", "json", "--config", str(switch.config), "--rating", str(rating),
         "--data-dir", str(switch.data_dir)],
        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    doc = json.loads(out.stdout)
    site = next(s for s in doc["sites"] if (s["customer"], s["site"]) == ("acme", "01"))
    overage = total - POOL
    assert site["pool_minutes"] == f"{Decimal(POOL) / 60:.2f}"
    assert site["used_minutes"] == site["pool_minutes"]
    assert site["overage_minutes"] == f"{Decimal(overage) / 60:.2f}"
    lines = [c for c in doc["calls"] if c["record_id"] in {r["id"] for r in records}]
    assert sum(c["charged_seconds"] for c in lines) == overage
    assert sum(c["drawn_seconds"] for c in lines) == POOL
    assert [c["zone"] for c in lines] == ["france"] * calls
    amount = sum((Decimal(c["amount"]) for c in lines), Decimal(0))
    assert Decimal(site["overage_amount"]) == amount
    # 0.05 per minute to a French mobile (config/rating.yaml), rounded per line
    assert abs(amount - Decimal("0.05") * overage / 60) <= Decimal("0.0001") * calls


def test_the_policy_refuses_past_the_pool_and_not_included_but_never_112(
        setup: tuple[RunningSwitch, Carrier, Path]) -> None:
    """Runs after the test above has used the pool of site 01 up."""
    switch, carrier, _ = setup
    carrier.reset()
    for dialed, why in (("0612345678", "minute pool of the site used up"),
                        ("0079121234567", "destination not included")):
        client, call_id = invite_as(switch, "501410", dialed)
        try:
            refused = final(client, call_id)
        finally:
            client.close()
        assert refused.status == 403, switch.log_text()[-2000:]
        assert why in (refused.headers.get("Warning") or "")
        rec = wait_record(switch.data_dir, lambda r, c=call_id: r["call_id"] == c and r["end"])
        assert rec["status"] == 403 and rec["disposition"] == "refused"
        assert rec["caller"] == "501410" and rec["decision"] == "external"
    # the emergency services are always reachable
    client, _ = invite_as(switch, "501410", "112")
    try:
        invite, src = carrier.expect_request("INVITE", timeout=5.0)
        assert str(invite.uri).startswith("sip:112@")
        carrier.answer(invite, src, status=486)
    finally:
        client.close()


def pool_rows(data_dir: Path) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    db = sqlite3.connect(data_dir / "wte.db")
    try:
        return (db.execute("SELECT used_seconds, alerted FROM site_pool_usage").fetchall(),
                db.execute("SELECT record_id, seconds, drawn_seconds FROM rated_calls")
                .fetchall())
    finally:
        db.close()


def test_a_call_cut_by_kill_9_is_counted_once_after_restarts(
        pj_lib: Any, tmp_path: Path) -> None:
    """The switch dies (SIGKILL) during an answered call: at the next start the CdrWriter
    closes its record ("interrupted") and the catch-up counts it; a further restart counts
    nothing again."""
    carrier = Carrier()
    config = config_with(tmp_path, {"rating.file": str(rating_file(tmp_path)),
                                     "rating.catch_up_seconds": 1},
                         carrier_port=carrier.port)
    data = tmp_path / "var"
    first = start_switch(data, config=config)
    phone = make_phone(pj_lib, transport="UDP", user="501410", host=first.host,
                       port=first.port, password="demo-501410", register=True)
    second: RunningSwitch | None = None
    try:
        assert phone.wait_registration(lambda e: e[0] == 200, since=0) is not None
        call = phone.call(f"sip:0612345678@{first.host}:{first.port}")
        invite, src = carrier.expect_request("INVITE", poll=pj_lib.poll)
        carrier.answer(invite, src)
        assert pj_lib.wait_until(lambda: call.state == CONFIRMED, 5)
        call_id = call.sip_call_id
        rec = wait_record(data, lambda r: r["call_id"] == call_id and r["answer"] is not None)
        first.stop(signal.SIGKILL)
        assert pool_rows(data) == ([], [])  # nothing counted: the call had not ended

        second = start_switch(data, config=config, port=first.port)
        closed = wait_record(data, lambda r: r["call_id"] == call_id and r["end"])
        assert closed["disposition"] == "interrupted"
        seconds = math.ceil(float(str(closed["end"])) - float(str(closed["answer"])))
        pj_lib.wait_until(lambda: pool_rows(data)[1] != [], 6)
        usage, rated = pool_rows(data)
        assert rated == [(rec["id"], seconds, min(seconds, POOL))]
        assert usage == [(min(seconds, POOL), 100 if seconds >= POOL else
                          80 if seconds * 100 >= 80 * POOL else 0)]
        pj_lib.ep.hangupAllCalls()
        pj_lib.wait_until(lambda: call.state == DISCONNECTED, 5)
        second.stop()

        # another start: the catch-up finds nothing left to count, no alert is raised again
        second = start_switch(data, config=config, port=first.port)
        pj_lib.wait_until(lambda: False, 2.5)  # past the first catch-up (2 s after start)
        assert pool_rows(data) == (usage, rated)
        assert alerts_logged(second) == []
    finally:
        pj_lib.ep.hangupAllCalls()
        phone.shutdown()
        if second is not None:
            second.stop()
        first.stop()
        carrier.close()
