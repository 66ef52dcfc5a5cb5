"""The night switch on a running switch (issue 12): `wte schedule set` from another process
is applied within a second, survives a restart, and the admin's `*55` code stores a mode.

The example's sales hunt group (+33562070401) follows the `office` schedule: open, it is
rung (nobody registered here: 480); closed, the call goes to the mailbox of 501410 (the
record's decision says `voicemail`; today that answers 501 "Voicemail Not Available Yet").
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pjsua2 as pj
import pytest

from dialplan import load_plan
from tests.support.carrier import Carrier
from tests.support.pjphone import make_phone
from tests.support.server import (
    EXAMPLE_CONFIG,
    REPO,
    RunningSwitch,
    config_with,
    start_switch,
    wait_record,
)

SALES = "+33562070401"


def wte_schedule(config: Path, data_dir: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    done = subprocess.run(
        [sys.executable, "-m", "switch", "schedule", *args, "--config", str(config),
         "--data-dir", str(data_dir)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def call_sales(carrier: Carrier, switch: RunningSwitch) -> tuple[str, int]:
    call_id = carrier.call(switch.host, switch.port, SALES)
    final = carrier.final_response(call_id)
    if final.status == 200:  # a later switch may answer with an application: hang up
        carrier.ack(final, switch.host, switch.port)
    return call_id, final.status


def decision_of(switch: RunningSwitch, call_id: str) -> str:
    rec = wait_record(switch.data_dir, lambda r: r["call_id"] == call_id)
    return str(rec["decision"])


def status_changes(carrier: Carrier, switch: RunningSwitch, old: int,
                   timeout: float) -> tuple[str, int, float]:
    """Call until the status differs from `old`: (call id, status, seconds waited)."""
    start = time.monotonic()
    while True:
        call_id, status = call_sales(carrier, switch)
        waited = time.monotonic() - start
        if status != old or waited > timeout:
            return call_id, status, waited
        time.sleep(0.05)


@pytest.fixture
def carrier() -> Iterator[Carrier]:
    c = Carrier()
    yield c
    c.close()


def test_cli_forces_the_running_switch_and_survives_a_restart(tmp_path: Path,
                                                             carrier: Carrier) -> None:
    data = tmp_path / "data"
    data.mkdir()
    config = config_with(tmp_path, {}, carrier_port=carrier.port)
    wte_schedule(config, data, "set", "office", "open")  # before the switch runs
    switch = start_switch(data, config=config)
    try:
        call_id, open_status = call_sales(carrier, switch)
        assert decision_of(switch, call_id) == "hunt_group"
        assert open_status == 480  # nobody registered in the group

        out = wte_schedule(config, data, "set", "office", "closed")
        assert "acme\toffice\tclosed\tno" in out
        call_id, status, waited = status_changes(carrier, switch, open_status, timeout=3.0)
        assert status != open_status, "the running switch never applied the closed mode"
        assert waited < 1.5, waited  # polled every 0.5 s
        assert decision_of(switch, call_id) == "voicemail"
        closed_status = status

        wte_schedule(config, data, "set", "office", "open")
        call_id, status, waited = status_changes(carrier, switch, closed_status, timeout=3.0)
        assert status == open_status and waited < 1.5, (status, waited)
        assert decision_of(switch, call_id) == "hunt_group"

        # auto: back to the hours and holidays of the office schedule
        office = load_plan(EXAMPLE_CONFIG).customers[0].schedules["office"]
        before = office.is_open(dt.datetime.now(dt.UTC), ZoneInfo("Europe/Paris"))[0]
        wte_schedule(config, data, "set", "office", "auto")
        time.sleep(1.0)
        call_id, status = call_sales(carrier, switch)
        after = office.is_open(dt.datetime.now(dt.UTC), ZoneInfo("Europe/Paris"))[0]
        if before == after:  # not right at an opening or closing time
            assert decision_of(switch, call_id) == ("hunt_group" if after else "voicemail")

        wte_schedule(config, data, "set", "office", "closed")
        time.sleep(1.0)
    finally:
        assert switch.stop() == 0
    # a restart loads the forced mode before it takes calls
    switch = start_switch(data, config=config)
    try:
        call_id, status = call_sales(carrier, switch)
        assert status == closed_status
        assert decision_of(switch, call_id) == "voicemail"
        assert any("schedule modes now acme/office=closed" in ln for ln in switch.log_lines)
    finally:
        switch.stop()


def test_admin_code_stores_the_mode_and_others_are_refused(pj_lib: Any, tmp_path: Path,
                                                           carrier: Carrier) -> None:
    data = tmp_path / "data"
    config = config_with(tmp_path, {}, carrier_port=carrier.port)
    switch = start_switch(data, config=config)
    phones = []
    try:
        for user in ("501410", "501411"):
            phone = make_phone(pj_lib, transport="UDP", user=user, host=switch.host,
                               port=switch.port, password=f"demo-{user}", register=True)
            phones.append(phone)
            assert phone.wait_registration(lambda e: e[0] == 200, since=0) is not None
        admin, other = phones

        refused = other.call(f"sip:%2A552@{switch.host}:{switch.port}")
        assert pj_lib.wait_until(
            lambda: refused.state == pj.PJSIP_INV_STATE_DISCONNECTED, 8)
        assert refused.last_status == 403
        assert "acme\toffice\tauto" in wte_schedule(config, data, "list")

        call = admin.call(f"sip:%2A552@{switch.host}:{switch.port}")
        assert pj_lib.wait_until(lambda: call.state == pj.PJSIP_INV_STATE_CONFIRMED, 8), \
            switch.log_text()[-2000:]
        # the switch confirms ("Le standard est fermé.") and hangs up by itself
        assert pj_lib.wait_until(lambda: call.state == pj.PJSIP_INV_STATE_DISCONNECTED, 12)
        listed = wte_schedule(config, data, "list")
        assert "acme\toffice\tclosed\tno" in listed and "\t501410" in listed, listed
        # and routing follows at once
        call_id, _status = call_sales(carrier, switch)
        assert decision_of(switch, call_id) == "voicemail"

        call = admin.call(f"sip:%2A550@{switch.host}:{switch.port}")
        assert pj_lib.wait_until(lambda: call.state == pj.PJSIP_INV_STATE_DISCONNECTED, 15)
        assert "acme\toffice\tauto" in wte_schedule(config, data, "list")
    finally:
        for phone in phones:
            phone.shutdown()
        switch.stop()
