"""Callback on busy (`*37`) with real phones: the switch calls the caller back, then the
user it found busy, once both are free (switch/services/busy_callback.py, through the
switch's own calls, switch/originate.py).

501411 (no mailbox, so a busy call stays busy) talks with 501412 and refuses a second call
with 486; 501410's call to it is busy. 501410 dials `*37` and hears the confirmation.
Nothing happens while 501411 is still in its call; when it hangs up, 501410's phone rings
showing 501411; 501410 answers, and then 501411's phone rings showing 501410; they talk.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pjsua2 as pj
import pytest

from tests.support.pjphone import Phone, make_phone
from tests.support.server import RunningSwitch, call_records, start_switch

CONFIRMED = pj.PJSIP_INV_STATE_CONFIRMED
DISCONNECTED = pj.PJSIP_INV_STATE_DISCONNECTED


@pytest.fixture(scope="module")
def switch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSwitch]:
    running = start_switch(tmp_path_factory.mktemp("busy-callback"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def phones(pj_lib: Any, switch: RunningSwitch) -> Iterator[dict[str, Phone]]:
    made = {u: make_phone(pj_lib, transport="UDP", user=u, host=switch.host, port=switch.port,
                          password=f"demo-{u}", register=True)
            for u in ("501410", "501411", "501412")}
    for phone in made.values():
        assert phone.wait_registration(lambda e: e[0] == 200, since=0) is not None
    yield made
    pj_lib.ep.hangupAllCalls()
    pj_lib.wait_until(lambda: False, 0.5)
    for phone in made.values():
        phone.shutdown()


def log_of(switch: RunningSwitch) -> str:
    return "\n".join(ln for ln in switch.log_lines[-80:]
                     if "callback" in ln or "originate" in ln or "call " in ln)


def header(message: str, name: str) -> str:
    for ln in message.splitlines():
        if ln.lower().startswith((f"{name}:", "f:" if name == "from" else f"{name}:")):
            return ln
    return ""


def test_star37_calls_back_the_caller_then_the_busy_user_once_free(
        pj_lib: Any, switch: RunningSwitch, phones: dict[str, Phone]) -> None:
    alice, bruno, claire = phones["501410"], phones["501411"], phones["501412"]
    target = f"@{switch.host}:{switch.port}"
    bruno.account.answer_with = 200
    talk = claire.call(f"sip:501411{target}")
    assert pj_lib.wait_until(lambda: talk.state == CONFIRMED, 8), log_of(switch)
    bruno_talk = bruno.account.incoming[0]
    bruno.account.answer_with = 486  # a second call: busy here
    busy = alice.call(f"sip:501411{target}")
    assert pj_lib.wait_until(lambda: busy.state == DISCONNECTED, 10), log_of(switch)
    pj_lib.wait_until(lambda: False, 0.5)
    code = alice.call(f"sip:*37{target}")
    assert pj_lib.wait_until(lambda: code.state == CONFIRMED, 8), log_of(switch)
    assert pj_lib.wait_until(lambda: code.state == DISCONNECTED, 15), log_of(switch)
    assert pj_lib.wait_until(lambda: any("event=requested" in ln and "callee=501411" in ln
                                         for ln in switch.log_lines), 5), log_of(switch)
    # 501411 is still talking: nobody is called yet
    pj_lib.wait_until(lambda: False, 2.0)
    assert not alice.account.incoming
    bruno.account.answer_with = None  # the test answers the callback itself
    bruno_talk.hangup(pj.CallOpParam(True))
    assert pj_lib.wait_until(lambda: talk.state == DISCONNECTED, 8)
    # 501410 first, seeing 501411
    assert pj_lib.wait_until(lambda: bool(alice.account.incoming), 10), log_of(switch)
    ring = alice.account.incoming[0]
    assert "501411" in header(ring.incoming_msg, "from"), ring.incoming_msg
    before = len(bruno.account.incoming)
    op = pj.CallOpParam()
    op.statusCode = 200
    ring.answer(op)
    assert pj_lib.wait_until(lambda: ring.state == CONFIRMED, 8), log_of(switch)
    # then 501411, seeing 501410
    assert pj_lib.wait_until(lambda: len(bruno.account.incoming) > before, 15), log_of(switch)
    back = bruno.account.incoming[before]
    assert "501410" in header(back.incoming_msg, "from"), back.incoming_msg
    back.answer(op)
    assert pj_lib.wait_until(lambda: back.state == CONFIRMED, 8), log_of(switch)
    pj_lib.wait_until(lambda: False, 1.0)
    assert ring.state == CONFIRMED
    ring.hangup(pj.CallOpParam(True))
    assert pj_lib.wait_until(lambda: back.state == DISCONNECTED, 8), log_of(switch)
    time.sleep(0.5)
    records = call_records(switch.data_dir)
    placed = [r for r in records if r["caller"] == "501411" and r["callee"] == "501410"
              and r["transferred_to"] == "501411"]
    assert len(placed) == 1 and placed[0]["answer"] is not None, records[-3:]


def test_a_callback_the_caller_refuses_is_recorded_and_not_retried(
        pj_lib: Any, switch: RunningSwitch, phones: dict[str, Phone]) -> None:
    alice, bruno = phones["501410"], phones["501411"]
    target = f"@{switch.host}:{switch.port}"
    pj_lib.ep.hangupAllCalls()
    pj_lib.wait_until(lambda: False, 1.0)
    alice_before, bruno_before = len(alice.account.incoming), len(bruno.account.incoming)
    bruno.account.answer_with = 486  # busy, and nobody else in a call this time
    busy = alice.call(f"sip:501411{target}")
    assert pj_lib.wait_until(lambda: busy.state == DISCONNECTED, 10), log_of(switch)
    alice.account.answer_with = 486  # 501410 refuses the switch's call back
    code = alice.call(f"sip:*37{target}")
    assert pj_lib.wait_until(lambda: code.state == DISCONNECTED, 15), log_of(switch)
    assert pj_lib.wait_until(lambda: len(alice.account.incoming) > alice_before, 10), \
        log_of(switch)
    assert pj_lib.wait_until(lambda: any(
        "busy callback call=" in ln and "failed status=486" in ln
        for ln in switch.log_lines), 10), log_of(switch)
    pj_lib.wait_until(lambda: False, 3.0)
    assert len(alice.account.incoming) == alice_before + 1  # not retried
    # 501411 rang once, for the busy call; never for the callback
    assert len(bruno.account.incoming) == bruno_before + 1
    alice.account.answer_with = bruno.account.answer_with = None
    refused = [r for r in call_records(switch.data_dir)
               if r["caller"] == "501411" and r["callee"] == "501410"
               and r["disposition"] == "busy"]
    assert len(refused) == 1 and refused[0]["answer"] is None, refused
    assert refused[0]["status"] == 486, refused
