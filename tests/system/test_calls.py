"""Calls through the switch between pjsua2 phones on two sites of the example plan."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
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
    tmp = tmp_path_factory.mktemp("calls")
    running = start_switch(tmp, config=config_with(tmp, {"calls.ring_timeout": 3}))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def phones(pj_lib: Any, switch: RunningSwitch) -> Iterator[dict[str, Phone]]:
    made = {
        "501410": make_phone(pj_lib, transport="UDP", user="501410", host=switch.host,
                             port=switch.port, password=DEMO["501410"], register=True),
        "501411": make_phone(pj_lib, transport="UDP", user="501411", host=switch.host,
                             port=switch.port, password=DEMO["501411"], register=True),
        "502411": make_phone(pj_lib, transport="TCP", user="502411", host=switch.host,
                             port=switch.port, password=DEMO["502411"], register=True),
    }
    for phone in made.values():
        assert phone.wait_registration(lambda e: e[0] == 200, since=0) is not None, switch.log_text()
    yield made
    for phone in made.values():
        phone.shutdown()


def target(switch: RunningSwitch, user: str) -> str:
    return f"sip:{user}@{switch.host}:{switch.port}"


def reset(phones: dict[str, Phone]) -> None:
    for p in phones.values():
        p.account.answer_with = None
        p.account.incoming.clear()
        p.account.tone_freq = None
        p.account.record_path = None


def finish(pj_lib: Any, phones: dict[str, Phone]) -> None:
    pj_lib.ep.hangupAllCalls()
    pj_lib.wait_until(lambda: all(c.state in (DISCONNECTED, pj.PJSIP_INV_STATE_NULL)
                                  for p in phones.values() for c in p.account.incoming), 5)
    reset(phones)


@pytest.mark.parametrize(("caller", "dialed", "callee"), [
    ("501410", "501411", "501411"),        # full internal number, same site
    ("501410", "411", "501411"),           # short extension on site 01
    ("502411", "501410", "501410"),        # across sites
    ("502411", "+33562070410", "501410"),  # the callee's public number stays on-net
    ("502411", "0562070411", "501411"),    # national form of a public number
])
def test_call_is_answered_and_hung_up(pj_lib: Any, switch: RunningSwitch,
                                      phones: dict[str, Phone], caller: str, dialed: str,
                                      callee: str) -> None:
    reset(phones)
    phones[callee].account.answer_with = 200
    call = phones[caller].call(target(switch, dialed))
    try:
        assert pj_lib.wait_until(lambda: call.state == CONFIRMED, 8), (
            call.states, call.last_status, switch.log_text()[-3000:])
        incoming = phones[callee].account.incoming
        assert len(incoming) == 1
        assert pj_lib.wait_until(lambda: incoming[0].state == CONFIRMED, 5)
        # the callee sees the caller's name and internal number
        assert f"sip:{caller}@" in incoming[0].incoming_msg
        pj_lib.wait_until(lambda: False, 1.0)  # talk for a second
        call_id = call.sip_call_id
        call.hangup(pj.CallOpParam(True))
        assert pj_lib.wait_until(lambda: incoming[0].state == DISCONNECTED, 5)
    finally:
        finish(pj_lib, phones)
    rec = wait_record(switch.data_dir, lambda r: r["call_id"] == call_id and r["end"])
    assert rec["caller"] == caller and rec["callee"] == callee
    assert rec["dialed"].startswith(f"sip:{dialed}@")
    assert rec["disposition"] == "answered" and rec["hangup_side"] == "caller"
    assert 0.5 < rec["duration"] < 10 and rec["billable"] is True and rec["emergency"] is False


@pytest.mark.parametrize(("status", "expected"), [(486, 486), (603, 603)])
def test_busy_and_reject(pj_lib: Any, switch: RunningSwitch, phones: dict[str, Phone],
                         status: int, expected: int) -> None:
    reset(phones)
    phones["501411"].account.answer_with = status
    call = phones["501410"].call(target(switch, "501411"))
    try:
        assert pj_lib.wait_until(lambda: call.state == DISCONNECTED, 8)
        assert call.last_status == expected
        call_id = call.sip_call_id
    finally:
        finish(pj_lib, phones)
    rec = wait_record(switch.data_dir, lambda r: r["call_id"] == call_id and r["end"])
    assert rec["status"] == expected and rec["duration"] == 0
    assert rec["disposition"] == ("busy" if expected == 486 else "rejected")


def test_no_answer_gives_480_after_the_ring_timeout(pj_lib: Any, switch: RunningSwitch,
                                                    phones: dict[str, Phone]) -> None:
    reset(phones)
    call = phones["501410"].call(target(switch, "501411"))
    try:
        assert pj_lib.wait_until(lambda: len(phones["501411"].account.incoming) == 1, 5)
        assert pj_lib.wait_until(lambda: call.state == DISCONNECTED, 10)
        assert call.last_status == 480
        callee_call = phones["501411"].account.incoming[0]
        assert pj_lib.wait_until(lambda: callee_call.state == DISCONNECTED, 5)
        call_id = call.sip_call_id
    finally:
        finish(pj_lib, phones)
    rec = wait_record(switch.data_dir, lambda r: r["call_id"] == call_id and r["end"])
    assert rec["disposition"] == "no_answer"


def test_caller_cancels_while_ringing(pj_lib: Any, switch: RunningSwitch,
                                      phones: dict[str, Phone]) -> None:
    reset(phones)
    call = phones["501410"].call(target(switch, "501411"))
    try:
        assert pj_lib.wait_until(lambda: len(phones["501411"].account.incoming) == 1, 5)
        assert pj_lib.wait_until(lambda: call.last_status == 180, 5)
        call.hangup(pj.CallOpParam(True))  # CANCEL while ringing
        assert pj_lib.wait_until(lambda: call.state == DISCONNECTED, 5)
        assert call.last_status == 487
        callee_call = phones["501411"].account.incoming[0]
        assert pj_lib.wait_until(lambda: callee_call.state == DISCONNECTED, 5)
        call_id = call.sip_call_id
    finally:
        finish(pj_lib, phones)
    rec = wait_record(switch.data_dir, lambda r: r["call_id"] == call_id and r["end"])
    assert rec["disposition"] == "cancelled" and rec["hangup_side"] == "caller"


def test_unregistered_callee_is_unavailable(pj_lib: Any, switch: RunningSwitch,
                                            phones: dict[str, Phone]) -> None:
    reset(phones)
    # 501450 (Atelier) is a Workspace line: no mailbox to take the call (issue 13)
    call = phones["501410"].call(target(switch, "501450"))
    try:
        assert pj_lib.wait_until(lambda: call.state == DISCONNECTED, 8)
        assert call.last_status in (404, 480), call.last_status
    finally:
        finish(pj_lib, phones)


def test_unauthenticated_invite_is_challenged(switch: RunningSwitch) -> None:
    from tests.support.sipclient import UdpClient, options_request

    client = UdpClient(switch.host, switch.port)
    try:
        client.send(options_request(
            switch.host, switch.port, method="INVITE", local_port=client.local_port,
            extra=f"Contact: <sip:501410@127.0.0.1:{client.local_port}>\r\n"))
        first = client.recv()
        if first.status == 100:
            first = client.recv()
    finally:
        client.close()
    assert first.status == 407
    assert len(first.headers.get_all("Proxy-Authenticate")) == 2


def test_audio_flows_both_ways_through_the_anchored_relay(
        pj_lib: Any, switch: RunningSwitch, phones: dict[str, Phone], tmp_path: Path) -> None:
    from tests.support.audio import dominant_frequency

    reset(phones)
    callee = phones["502411"].account
    callee.answer_with = 200
    callee.tone_freq = 1000
    callee.record_path = str(tmp_path / "callee.wav")
    call = phones["501410"].call(target(switch, "502411"), tone_freq=440,
                                 record_path=str(tmp_path / "caller.wav"))
    try:
        assert pj_lib.wait_until(lambda: call.state == CONFIRMED, 8), switch.log_text()[-2000:]
        incoming = callee.incoming[0]
        # the callee was offered the switch's relay, not the caller's own RTP address
        sdp = incoming.incoming_msg.split("\r\n\r\n", 1)[1]
        assert "m=audio" in sdp
        assert pj_lib.wait_until(lambda: call.media_active and incoming.media_active, 5)
        pj_lib.wait_until(lambda: False, 2.5)
        call.stop_media()
        incoming.stop_media()
        call.hangup(pj.CallOpParam(True))
        pj_lib.wait_until(lambda: incoming.state == DISCONNECTED, 5)
    finally:
        finish(pj_lib, phones)
    heard_by_caller, level_a = dominant_frequency(tmp_path / "caller.wav")
    heard_by_callee, level_b = dominant_frequency(tmp_path / "callee.wav")
    assert abs(heard_by_caller - 1000) < 20 and level_a > 100, (heard_by_caller, level_a)
    assert abs(heard_by_callee - 440) < 9 and level_b > 100, (heard_by_callee, level_b)
    rec = wait_record(switch.data_dir, lambda r: r["callee"] == "502411" and r["end"])
    assert rec["codec"] in ("PCMU", "PCMA")
    assert rec["rtcp_loss"] is not None and 0 <= rec["rtcp_loss"] < 0.05  # loopback: no loss
    assert rec["rtcp_jitter_ms"] is not None and rec["rtcp_jitter_ms"] >= 0


@pytest.mark.parametrize(("code", "send", "expect"), [("*44", None, 1000.0), ("*43", 700, 700.0)],
                         ids=["tone-test", "echo-test"])
def test_test_services(pj_lib: Any, switch: RunningSwitch, phones: dict[str, Phone],
                       tmp_path: Path, code: str, send: int | None, expect: float) -> None:
    from tests.support.audio import dominant_frequency

    reset(phones)
    wav = tmp_path / "heard.wav"
    call = phones["501411"].call(target(switch, code.replace("*", "%2A")), tone_freq=send,
                                 record_path=str(wav))
    try:
        assert pj_lib.wait_until(lambda: call.state == CONFIRMED, 8), switch.log_text()[-2000:]
        assert pj_lib.wait_until(lambda: call.media_active, 5)
        pj_lib.wait_until(lambda: False, 2.0)
        call.stop_media()
        call.hangup(pj.CallOpParam(True))
        pj_lib.wait_until(lambda: call.state == DISCONNECTED, 5)
    finally:
        finish(pj_lib, phones)
    heard, level = dominant_frequency(wav)
    assert abs(heard - expect) < expect * 0.02 and level > 100, (heard, level)


def test_hold_and_resume_through_the_anchored_relay(pj_lib: Any, switch: RunningSwitch,
                                                    phones: dict[str, Phone]) -> None:
    reset(phones)
    phones["501411"].account.answer_with = 200
    call = phones["501410"].call(target(switch, "501411"))

    def media_status() -> int:
        info = call.getInfo()
        return next(mi.status for mi in info.media if mi.type == pj.PJMEDIA_TYPE_AUDIO)

    try:
        assert pj_lib.wait_until(lambda: call.state == CONFIRMED and call.media_active, 8)
        call.setHold(pj.CallOpParam(True))  # re-INVITE with a=sendonly (RFC 3264 8.4)
        assert pj_lib.wait_until(lambda: media_status() == pj.PJSUA_CALL_MEDIA_LOCAL_HOLD, 5)
        prm = pj.CallOpParam(True)
        prm.opt.flag = pj.PJSUA_CALL_UNHOLD
        call.reinvite(prm)
        assert pj_lib.wait_until(lambda: media_status() == pj.PJSUA_CALL_MEDIA_ACTIVE, 5)
        assert call.state == CONFIRMED
    finally:
        finish(pj_lib, phones)


def test_looping_invite_without_hops_gets_483(switch: RunningSwitch) -> None:
    from tests.support.sipclient import UdpClient, options_request

    client = UdpClient(switch.host, switch.port)
    try:
        req = options_request(switch.host, switch.port, method="INVITE",
                              local_port=client.local_port,
                              extra=f"Contact: <sip:501410@127.0.0.1:{client.local_port}>\r\n")
        client.send(req.replace(b"Max-Forwards: 70", b"Max-Forwards: 0"))
        resp = client.recv()
        if resp.status == 100:
            resp = client.recv()
    finally:
        client.close()
    assert resp.status == 483


@pytest.mark.parametrize("transferor", ["callee", "caller"])
def test_blind_transfer(pj_lib: Any, switch: RunningSwitch, phones: dict[str, Phone],
                        transferor: str, tmp_path: Path) -> None:
    """501410 calls 501411; one of them transfers the other to 502411 (RFC 3515 REFER)."""
    from tests.support.audio import dominant_frequency

    reset(phones)
    phones["501411"].account.answer_with = 200
    phones["502411"].account.answer_with = 200
    phones["502411"].account.record_path = str(tmp_path / "target.wav")
    phones["501411"].account.tone_freq = 440
    call = phones["501410"].call(target(switch, "501411"), tone_freq=440)
    try:
        assert pj_lib.wait_until(lambda: call.state == CONFIRMED, 8)
        answered = phones["501411"].account.incoming[0]
        assert pj_lib.wait_until(lambda: answered.state == CONFIRMED, 5)
        mover, stayer = (answered, call) if transferor == "callee" else (call, answered)
        mover.xfer(f"sip:502411@{switch.host}:{switch.port}", pj.CallOpParam(True))
        assert pj_lib.wait_until(lambda: len(phones["502411"].account.incoming) == 1, 8), \
            switch.log_text()[-3000:]
        new = phones["502411"].account.incoming[0]
        assert pj_lib.wait_until(lambda: new.state == CONFIRMED, 5)
        # the transferor is released, the transferee stays, now with the target
        assert pj_lib.wait_until(lambda: mover.state == DISCONNECTED, 5)
        assert stayer.state == CONFIRMED
        pj_lib.wait_until(lambda: False, 1.5)  # the target hears the transferee
        new.stop_media()
        stayer.hangup(pj.CallOpParam(True))
        assert pj_lib.wait_until(lambda: new.state == DISCONNECTED, 5), switch.log_text()[-2000:]
    finally:
        finish(pj_lib, phones)
    freq, level = dominant_frequency(tmp_path / "target.wav", skip_seconds=0.3)
    assert abs(freq - 440) < 9 and level > 100, (freq, level)


def test_sip_info_dtmf_reaches_the_record_test(pj_lib: Any, switch: RunningSwitch,
                                               phones: dict[str, Phone]) -> None:
    """DTMF sent as SIP INFO (application/dtmf-relay) inside a `*45` call is answered 200
    and delivered to the application with its source (it used to get 405)."""
    reset(phones)
    call = phones["501411"].call(target(switch, "%2A45"))
    try:
        assert pj_lib.wait_until(lambda: call.state == CONFIRMED, 8), switch.log_text()[-2000:]
        call_id = call.sip_call_id
        for digit in "93":
            prm = pj.CallSendRequestParam()
            prm.method = "INFO"
            prm.txOption.contentType = "application/dtmf-relay"
            prm.txOption.msgBody = f"Signal={digit}\r\nDuration=160\r\n"
            call.sendRequest(prm)
            assert pj_lib.wait_until(
                lambda d=digit: any(f"dtmf call={call_id} digit={d} source=info" in ln
                                    for ln in switch.log_lines), 5), switch.log_text()[-2000:]
        call.hangup(pj.CallOpParam(True))
        pj_lib.wait_until(lambda: call.state == DISCONNECTED, 5)
        assert pj_lib.wait_until(lambda: any(f"record test call={call_id} saved=" in ln
                                             for ln in switch.log_lines), 8)
    finally:
        finish(pj_lib, phones)
    saved = next(ln for ln in switch.log_lines if f"record test call={call_id} saved=" in ln)
    assert saved.rstrip().endswith("digits=93"), saved
