"""Every call attempt leaves a record an operator sees with `wte calls` (issue 11).

Refused by barring (403), to an unknown number (404), to a feature that is not built yet
(501 saying so; the mailbox code `*86` is answered since issue 13), cancelled while
ringing, and blind-transferred (the record names the target and keeps the parties).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pjsua2 as pj
import pytest

from tests.support.pjphone import Phone, make_phone
from tests.support.server import RunningSwitch, config_with, start_switch, wait_record

DEMO = {"501410": "demo-501410", "501411": "demo-501411", "502411": "demo-502411"}
CONFIRMED = pj.PJSIP_INV_STATE_CONFIRMED
DISCONNECTED = pj.PJSIP_INV_STATE_DISCONNECTED


@pytest.fixture(scope="module")
def switch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSwitch]:
    tmp = tmp_path_factory.mktemp("records")
    running = start_switch(tmp, config=config_with(tmp, {"calls.ring_timeout": 5}))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def phones(pj_lib: Any, switch: RunningSwitch) -> Iterator[dict[str, Phone]]:
    made = {user: make_phone(pj_lib, transport="UDP", user=user, host=switch.host,
                             port=switch.port, password=password, register=True)
            for user, password in DEMO.items()}
    for phone in made.values():
        assert phone.wait_registration(lambda e: e[0] == 200, since=0) is not None, \
            switch.log_text()[-2000:]
    yield made
    for phone in made.values():
        phone.shutdown()


def uri(switch: RunningSwitch, user: str) -> str:
    return f"sip:{user.replace('*', '%2A')}@{switch.host}:{switch.port}"


def finish(pj_lib: Any, phones: dict[str, Phone]) -> None:
    pj_lib.ep.hangupAllCalls()
    pj_lib.wait_until(lambda: all(c.state in (DISCONNECTED, pj.PJSIP_INV_STATE_NULL)
                                  for p in phones.values() for c in p.account.incoming), 5)
    for p in phones.values():
        p.account.answer_with = None
        p.account.incoming.clear()


def refused(pj_lib: Any, switch: RunningSwitch, phone: Phone, dialed: str) -> tuple[int, str]:
    """Dial, wait for the final answer; (status, Call-ID)."""
    call = phone.call(uri(switch, dialed))
    assert pj_lib.wait_until(lambda: call.state == DISCONNECTED, 8), switch.log_text()[-2000:]
    return call.last_status, call.sip_call_id


@pytest.mark.parametrize(("caller", "dialed", "status", "decisions"), [
    ("501411", "0612345678", 403, {"reject"}),  # 501411 is internal-only: barring
    ("501410", "501499", 404, {"reject"}),  # nobody has this number
    # a feature code without its destination (*78, do not disturb, is answered since
    # issue 15: tests/system/test_personal_features.py; *86 since issue 13)
    ("501410", "*21", 484, {"reject"}),
], ids=["barring", "unknown", "feature"])
def test_a_refused_attempt_is_recorded(pj_lib: Any, switch: RunningSwitch,
                                       phones: dict[str, Phone], caller: str, dialed: str,
                                       status: int, decisions: set[str]) -> None:
    try:
        got, call_id = refused(pj_lib, switch, phones[caller], dialed)
    finally:
        finish(pj_lib, phones)
    assert got == status, switch.log_text()[-2000:]
    rec = wait_record(switch.data_dir, lambda r: r["call_id"] == call_id and r["end"])
    assert rec["status"] == status and rec["disposition"] == "refused"
    assert rec["decision"] in decisions and rec["caller"] == caller
    assert rec["hangup_side"] == "switch" and rec["answer"] is None


def force_office(switch: RunningSwitch, mode: str) -> None:
    """The night switch, as an operator would use it: the example's `office` schedule."""
    import subprocess
    import sys
    import time

    from tests.support.server import REPO

    config = next(switch.data_dir.glob("config.yaml"))
    out = subprocess.run([sys.executable, "-m", "switch", "schedule", "set", "office", mode,
                          "--config", str(config), "--data-dir", str(switch.data_dir)],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    time.sleep(1.2)  # a running switch applies it within a second


def test_a_cancelled_call_is_recorded(pj_lib: Any, switch: RunningSwitch,
                                      phones: dict[str, Phone]) -> None:
    call = phones["501410"].call(uri(switch, "501411"))
    try:
        assert pj_lib.wait_until(lambda: call.last_status == 180, 5)
        call.hangup(pj.CallOpParam(True))
        assert pj_lib.wait_until(lambda: call.state == DISCONNECTED, 5)
        call_id = call.sip_call_id
    finally:
        finish(pj_lib, phones)
    rec = wait_record(switch.data_dir, lambda r: r["call_id"] == call_id and r["end"])
    assert rec["disposition"] == "cancelled" and rec["status"] == 487
    assert rec["callee"] == "501411" and rec["answer"] is None


def test_a_transferred_call_names_its_target(pj_lib: Any, switch: RunningSwitch,
                                             phones: dict[str, Phone]) -> None:
    """501410 calls 501411, who blind-transfers 501410 to 502411 (RFC 3515)."""
    phones["501411"].account.answer_with = 200
    phones["502411"].account.answer_with = 200
    call = phones["501410"].call(uri(switch, "501411"))
    try:
        assert pj_lib.wait_until(lambda: call.state == CONFIRMED, 8)
        answered = phones["501411"].account.incoming[0]
        assert pj_lib.wait_until(lambda: answered.state == CONFIRMED, 5)
        answered.xfer(uri(switch, "502411"), pj.CallOpParam(True))
        assert pj_lib.wait_until(lambda: len(phones["502411"].account.incoming) == 1, 8)
        new = phones["502411"].account.incoming[0]
        assert pj_lib.wait_until(lambda: new.state == CONFIRMED, 5)
        assert pj_lib.wait_until(lambda: answered.state == DISCONNECTED, 5)
        call.hangup(pj.CallOpParam(True))
        assert pj_lib.wait_until(lambda: new.state == DISCONNECTED, 5)
        call_id = call.sip_call_id
    finally:
        finish(pj_lib, phones)
    rec = wait_record(switch.data_dir, lambda r: r["call_id"] == call_id and r["end"])
    # the parties stay those of the call; the caller hung up on the target
    assert rec["caller"] == "501410" and rec["callee"] == "501411"
    assert rec["disposition"] == "answered" and rec["hangup_side"] == "caller"
    assert rec["transferred_to"] == "502411"
