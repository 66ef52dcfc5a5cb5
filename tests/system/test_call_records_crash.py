"""A call in progress when the switch dies is closed at the next start, with a cause that
says so (issue 6); acknowledged records are never lost."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pjsua2 as pj

from tests.support.pjphone import Phone, PjCall, make_phone
from tests.support.server import RunningSwitch, start_switch, wait_record


def answered_call(pj_lib: Any, switch: RunningSwitch) -> tuple[Phone, Phone, PjCall]:
    """501410 and 501411 registered, and 501410's call to 501411 answered."""
    caller = make_phone(pj_lib, transport="UDP", user="501410", host=switch.host,
                        port=switch.port, password="demo-501410", register=True)
    callee = make_phone(pj_lib, transport="UDP", user="501411", host=switch.host,
                        port=switch.port, password="demo-501411", register=True)
    for p in (caller, callee):
        assert p.wait_registration(lambda e: e[0] == 200, since=0) is not None
    callee.account.answer_with = 200
    call = caller.call(f"sip:501411@{switch.host}:{switch.port}")
    assert pj_lib.wait_until(lambda: call.state == pj.PJSIP_INV_STATE_CONFIRMED, 8)
    return caller, callee, call


def test_call_in_progress_at_kill_9_is_closed_at_restart(pj_lib: Any, tmp_path: Path) -> None:
    first = start_switch(tmp_path)
    caller, callee, call = answered_call(pj_lib, first)
    try:
        call_id = call.sip_call_id
        wait_record(tmp_path, lambda r: r["call_id"] == call_id and r["end"] is None)
        first.stop(signal.SIGKILL)
        second = start_switch(tmp_path, port=first.port)
        try:
            rec = wait_record(tmp_path, lambda r: r["call_id"] == call_id and r["end"])
            assert rec["disposition"] == "interrupted"
            assert "restarted" in str(rec["cause"]) and rec["hangup_side"] == "switch"
            assert any("closed 1 call records" in ln for ln in second.log_lines)
        finally:
            # hang up while a switch still answers (481), so PJSIP frees both calls now
            # instead of holding them until their BYE times out (it allows only 4 calls)
            pj_lib.ep.hangupAllCalls()
            pj_lib.wait_until(lambda: call.state == pj.PJSIP_INV_STATE_DISCONNECTED and all(
                c.state == pj.PJSIP_INV_STATE_DISCONNECTED for c in callee.account.incoming), 10)
            second.stop()
    finally:
        caller.shutdown()
        callee.shutdown()


def test_sigterm_hangs_calls_up_and_closes_their_records(pj_lib: Any, tmp_path: Path) -> None:
    switch = start_switch(tmp_path)
    caller, callee, call = answered_call(pj_lib, switch)
    try:
        call_id = call.sip_call_id
        switch.proc.send_signal(signal.SIGTERM)
        # both phones are told (BYE) before the switch goes
        assert pj_lib.wait_until(lambda: call.state == pj.PJSIP_INV_STATE_DISCONNECTED, 8)
        assert pj_lib.wait_until(lambda: all(
            c.state == pj.PJSIP_INV_STATE_DISCONNECTED for c in callee.account.incoming), 5)
        assert switch.proc.wait(15) == 0
        rec = wait_record(tmp_path, lambda r: r["call_id"] == call_id and r["end"])
        assert rec["disposition"] == "answered" and rec["hangup_side"] == "switch"
        assert "shutting down" in str(rec["cause"])
    finally:
        pj_lib.ep.hangupAllCalls()
        pj_lib.wait_until(lambda: False, 0.2)
        caller.shutdown()
        callee.shutdown()
        switch.stop()
