"""Personal call features over real SIP (issue 15): feature codes from pjsua2 phones, DND,
forwarding (always to the carrier with Diversion/History-Info, busy, no answer,
unreachable), refused forwarding for a barred user, loops, anonymous rejection (433),
simultaneous ring with the carrier, the call log, and forwarding surviving a restart."""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pjsua2 as pj
import pytest
import yaml

from dialplan.user_settings import UserSettings
from switch.sip import Request, Response
from switch.storage.cli import database_url
from switch.storage.engine import create_engine
from switch.storage.user_settings import SqlUserSettings
from tests.support.carrier import SDP, Carrier
from tests.support.pjphone import Phone, PjCall, make_phone
from tests.support.server import (
    EXAMPLE_CONFIG,
    REPO,
    RunningSwitch,
    start_switch,
    write_config,
)

DEMO = {u: f"demo-{u}" for u in ("501410", "501411", "501412")}
CONFIRMED = pj.PJSIP_INV_STATE_CONFIRMED
DISCONNECTED = pj.PJSIP_INV_STATE_DISCONNECTED
RING_TIMEOUT = 6


@pytest.fixture(scope="module")
def trunk() -> Iterator[Carrier]:
    c = Carrier()
    yield c
    c.close()


def personal_config(tmp: Path, carrier_port: int) -> Path:
    """The example without voicemail for the demo users, so that busy, no answer and
    unreachable show as statuses here (voicemail's own tests show DND and busy reaching
    the mailbox: tests/system/test_voicemail.py)."""
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    site = data["customers"][0]["sites"][0]
    for user in site["users"]:
        user["voicemail"] = False
    for kind in ("hunt_groups", "queues", "auto_attendants"):  # no mailbox to reach there
        for entity in site.get(kind, []):
            for key in [k for k, v in entity.items() if str(v).startswith("voicemail:")]:
                del entity[key]
            menus = [entity.get("menu") or {}]
            while menus:
                menu = menus.pop()
                for key, value in list(menu.items()):
                    if isinstance(value, dict):
                        menus.append(value.get("menu") or {})
                    elif str(value).startswith("voicemail:"):
                        del menu[key]
    data.setdefault("switch", {}).setdefault("calls", {})["ring_timeout"] = RING_TIMEOUT
    return write_config(tmp / "personal.yaml", data, carrier_port=carrier_port)


@pytest.fixture(scope="module")
def switch(tmp_path_factory: pytest.TempPathFactory, trunk: Carrier) -> Iterator[RunningSwitch]:
    tmp = tmp_path_factory.mktemp("personal")
    running = start_switch(tmp, config=personal_config(tmp, trunk.port))
    yield running
    running.stop()


def _phones(pj_lib: Any, switch: RunningSwitch) -> dict[str, Phone]:
    made = {u: make_phone(pj_lib, transport="UDP", user=u, host=switch.host, port=switch.port,
                          password=p, register=True) for u, p in DEMO.items()}
    for phone in made.values():
        assert phone.wait_registration(lambda e: e[0] == 200, since=0) is not None
    return made


@pytest.fixture(scope="module")
def phones(pj_lib: Any, switch: RunningSwitch) -> Iterator[dict[str, Phone]]:
    made = _phones(pj_lib, switch)
    yield made
    for phone in made.values():
        phone.shutdown()


@pytest.fixture
def carrier(trunk: Carrier, switch: RunningSwitch) -> Carrier:
    trunk.reset()
    return trunk


@pytest.fixture(autouse=True)
def clean(pj_lib: Any, request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    pj_lib.ep.hangupAllCalls()
    pj_lib.wait_until(lambda: False, 0.3)
    phones = request.node.funcargs.get("phones") or {}
    for p in phones.values():
        p.account.incoming.clear()
        p.account.answer_with = None


def dial_code(pj_lib: Any, switch: RunningSwitch, phone: Phone, code: str) -> PjCall:
    """Dial a feature code: the switch answers, confirms and hangs up."""
    call = phone.call(f"sip:{code}@{switch.host}:{switch.port}")
    assert pj_lib.wait_until(lambda: call.state == CONFIRMED, 5), call.states
    assert pj_lib.wait_until(lambda: call.state == DISCONNECTED, 15)
    return call


def stored(switch: RunningSwitch) -> dict[tuple[str, str], UserSettings]:
    async def read() -> dict[tuple[str, str], UserSettings]:
        engine = create_engine(database_url(str(switch.data_dir)))
        try:
            return await SqlUserSettings(engine).load_all()
        finally:
            await engine.dispose()

    return asyncio.run(read())


def call_user(phone: Phone, switch: RunningSwitch, number: str) -> PjCall:
    return phone.call(f"sip:{number}@{switch.host}:{switch.port}")


def final_status(pj_lib: Any, call: PjCall, timeout: float = 10.0) -> int:
    assert pj_lib.wait_until(lambda: call.state == DISCONNECTED, timeout), call.states
    return call.last_status


def carrier_invite(carrier: Carrier, switch: RunningSwitch, number: str, *,
                   from_number: str = "+33699887766",
                   privacy: str | None = None) -> str:
    """An INVITE from the carrier into the switch (optionally withholding its number)."""
    call_id = secrets.token_hex(8) + "@carrier"
    via = f"{carrier.addr[0]}:{carrier.addr[1]}"
    req = (
        f"INVITE sip:{number}@{switch.host}:{switch.port};user=phone SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {via};branch=z9hG4bK{secrets.token_hex(6)};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:{from_number}@carrier.example;user=phone>;tag={secrets.token_hex(4)}\r\n"
        f"To: <sip:{number}@{switch.host};user=phone>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
        f"Contact: <sip:carrier@{via}>\r\n"
        + (f"Privacy: {privacy}\r\n" if privacy else "")
        + f"Content-Type: application/sdp\r\nContent-Length: {len(SDP)}\r\n\r\n"
    ).encode() + SDP
    carrier.sock.sendto(req, (switch.host, switch.port))
    return call_id


def carrier_final(carrier: Carrier, call_id: str, pj_lib: Any,
                  timeout: float = 10.0) -> Response:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        pj_lib.poll(10)
        got = carrier._recv(0.02)
        if got is None:
            continue
        msg, src = got
        if isinstance(msg, Response) and msg.call_id == call_id and msg.status >= 200:
            return msg
        if isinstance(msg, Request) and msg.method == "INVITE":
            carrier.answer(msg, src, status=486)
    raise AssertionError(f"no final response for {call_id}")


# -- do not disturb --


def test_dnd_makes_the_user_busy_and_off_restores_ringing(
        pj_lib: Any, switch: RunningSwitch, phones: dict[str, Phone]) -> None:
    dial_code(pj_lib, switch, phones["501410"], "*78")
    assert stored(switch)[("acme", "501410")].dnd is True
    call = call_user(phones["501411"], switch, "501410")
    assert final_status(pj_lib, call) == 486
    assert phones["501410"].account.incoming == []  # it never rang
    dial_code(pj_lib, switch, phones["501410"], "*79")
    call = call_user(phones["501411"], switch, "501410")
    assert pj_lib.wait_until(lambda: len(phones["501410"].account.incoming) == 1, 5)


# -- forwarding to other users --


def test_forward_on_busy_to_another_user(pj_lib: Any, switch: RunningSwitch,
                                         phones: dict[str, Phone]) -> None:
    dial_code(pj_lib, switch, phones["501410"], "*67501412")
    try:
        phones["501410"].account.answer_with = 486
        phones["501412"].account.answer_with = 200
        call = call_user(phones["501411"], switch, "501410")
        assert pj_lib.wait_until(lambda: call.state == CONFIRMED, 8), call.states
        assert len(phones["501412"].account.incoming) == 1
        msg = phones["501412"].account.incoming[0].incoming_msg
        assert "Diversion:" in msg and "reason=user-busy" in msg
    finally:
        pj_lib.ep.hangupAllCalls()
        pj_lib.wait_until(lambda: False, 0.3)
        dial_code(pj_lib, switch, phones["501410"], "#67")


def test_forward_on_no_answer_after_the_set_ring_time(pj_lib: Any, switch: RunningSwitch,
                                                      phones: dict[str, Phone]) -> None:
    dial_code(pj_lib, switch, phones["501410"], "*61501412*5")
    assert stored(switch)[("acme", "501410")].forward_no_answer_seconds == 5.0
    try:
        phones["501412"].account.answer_with = 200
        started = time.monotonic()
        call = call_user(phones["501411"], switch, "501410")
        assert pj_lib.wait_until(lambda: len(phones["501410"].account.incoming) == 1, 3)
        assert pj_lib.wait_until(lambda: len(phones["501412"].account.incoming) == 1, 9)
        waited = time.monotonic() - started
        assert 4.0 <= waited < RING_TIMEOUT + 2, waited  # 5 s, not the switch's 6 s
        assert pj_lib.wait_until(lambda: call.state == CONFIRMED, 5)
        assert "reason=no-answer" in phones["501412"].account.incoming[0].incoming_msg
    finally:
        pj_lib.ep.hangupAllCalls()
        pj_lib.wait_until(lambda: False, 0.3)
        dial_code(pj_lib, switch, phones["501410"], "#61")


def test_forward_on_unreachable_to_another_user(pj_lib: Any, switch: RunningSwitch,
                                                phones: dict[str, Phone]) -> None:
    # 501420 (a meeting room) sets it, then its phone goes away (unregistered)
    room = make_phone(pj_lib, transport="UDP", user="501420", host=switch.host,
                      port=switch.port, password="demo-501420", register=True)
    assert room.wait_registration(lambda e: e[0] == 200, since=0) is not None
    dial_code(pj_lib, switch, room, "*62501412")
    room.account.setRegistration(False)
    assert room.wait_registration(lambda e: e[2] == 0 or e[0] == 200, 5) is not None
    room.shutdown()
    pj_lib.wait_until(lambda: False, 0.5)
    phones["501412"].account.answer_with = 200
    call = call_user(phones["501411"], switch, "501420")
    assert pj_lib.wait_until(lambda: call.state == CONFIRMED, 8), call.states
    assert "reason=unavailable" in phones["501412"].account.incoming[0].incoming_msg


def test_internal_only_user_cannot_forward_to_a_mobile(
        pj_lib: Any, switch: RunningSwitch, phones: dict[str, Phone]) -> None:
    dial_code(pj_lib, switch, phones["501411"], "*210612345678")
    assert ("acme", "501411") not in stored(switch)
    assert any("feature forward_always_on of 501411 refused" in ln for ln in switch.log_lines)


def test_forwarding_loop_ends_with_a_clear_status(pj_lib: Any, switch: RunningSwitch,
                                                  phones: dict[str, Phone]) -> None:
    dial_code(pj_lib, switch, phones["501410"], "*21501412")
    dial_code(pj_lib, switch, phones["501412"], "*21501410")
    try:
        call = call_user(phones["501411"], switch, "501410")
        assert final_status(pj_lib, call) == 482
        assert phones["501410"].account.incoming == []
        assert phones["501412"].account.incoming == []
    finally:
        dial_code(pj_lib, switch, phones["501410"], "#21")
        dial_code(pj_lib, switch, phones["501412"], "#21")


# -- with the carrier --


def test_anonymous_rejection_answers_433(pj_lib: Any, switch: RunningSwitch,
                                         phones: dict[str, Phone], carrier: Carrier) -> None:
    dial_code(pj_lib, switch, phones["501410"], "*77")
    try:
        call_id = carrier_invite(carrier, switch, "+33562070410", privacy="id")
        assert carrier_final(carrier, call_id, pj_lib).status == 433
        assert phones["501410"].account.incoming == []
        shown = carrier_invite(carrier, switch, "+33562070410")  # a shown number still rings
        assert pj_lib.wait_until(lambda: len(phones["501410"].account.incoming) == 1, 5)
        carrier.sock.sendto(b"", carrier.addr)  # nothing; the call is cleaned up below
        del shown
    finally:
        pj_lib.ep.hangupAllCalls()
        pj_lib.wait_until(lambda: False, 0.5)
        dial_code(pj_lib, switch, phones["501410"], "#77")


def test_simultaneous_ring_with_the_carrier_first_answer_wins(
        pj_lib: Any, switch: RunningSwitch, phones: dict[str, Phone], carrier: Carrier) -> None:
    dial_code(pj_lib, switch, phones["501410"], "*630612345678")
    try:
        call = call_user(phones["501412"], switch, "501410")
        invite, src = carrier.expect_request("INVITE", poll=pj_lib.poll)
        assert str(invite.uri).startswith("sip:+33612345678@")
        assert pj_lib.wait_until(lambda: len(phones["501410"].account.incoming) == 1, 5)
        carrier.answer(invite, src)  # the mobile answers first
        assert pj_lib.wait_until(lambda: call.state == CONFIRMED, 5), call.states
        desk = phones["501410"].account.incoming[0]
        assert pj_lib.wait_until(lambda: desk.state == DISCONNECTED, 5)  # cancelled
    finally:
        pj_lib.ep.hangupAllCalls()
        pj_lib.wait_until(lambda: False, 0.5)
        dial_code(pj_lib, switch, phones["501410"], "#63")


def test_clir_for_one_call_and_permanently(pj_lib: Any, switch: RunningSwitch,
                                           phones: dict[str, Phone], carrier: Carrier) -> None:
    """*31 + number withholds the identity for that call; *32 on every call, #32 ends it.
    The trusted carrier still gets the real number in P-Asserted-Identity (RFC 3325)."""
    def placed(dialed: str) -> Request:
        phones["501410"].call(f"sip:{dialed}@{switch.host}:{switch.port}")
        invite, src = carrier.expect_request("INVITE", poll=pj_lib.poll)
        carrier.answer(invite, src, status=486)
        pj_lib.ep.hangupAllCalls()
        pj_lib.wait_until(lambda: False, 0.3)
        return invite

    once = placed("*310612345678")
    assert str(once.uri).startswith("sip:+33612345678@")
    assert "anonymous" in (once.headers.get("From") or "")
    assert once.headers.get("Privacy") == "id"
    assert "+33562070410" in (once.headers.get("P-Asserted-Identity") or "")
    shown = placed("0612345678")
    assert "+33562070410" in (shown.headers.get("From") or "")
    dial_code(pj_lib, switch, phones["501410"], "*32")
    try:
        assert "anonymous" in (placed("0612345678").headers.get("From") or "")
    finally:
        dial_code(pj_lib, switch, phones["501410"], "#32")
    assert "+33562070410" in (placed("0612345678").headers.get("From") or "")


def test_call_waiting_off_makes_a_user_in_a_call_busy(
        pj_lib: Any, switch: RunningSwitch, phones: dict[str, Phone]) -> None:
    dial_code(pj_lib, switch, phones["501410"], "#58")
    try:
        phones["501412"].account.answer_with = 200
        first = call_user(phones["501410"], switch, "501412")
        assert pj_lib.wait_until(lambda: first.state == CONFIRMED, 5)
        second = call_user(phones["501411"], switch, "501410")
        assert final_status(pj_lib, second) == 486
        assert phones["501410"].account.incoming == []
    finally:
        pj_lib.ep.hangupAllCalls()
        pj_lib.wait_until(lambda: False, 0.5)
        dial_code(pj_lib, switch, phones["501410"], "*58")
    call = call_user(phones["501411"], switch, "501410")  # free again: it rings
    assert pj_lib.wait_until(lambda: len(phones["501410"].account.incoming) == 1, 5)
    del call


def test_missed_call_in_the_call_log(pj_lib: Any, switch: RunningSwitch,
                                     phones: dict[str, Phone]) -> None:
    call = call_user(phones["501412"], switch, "501410")
    assert pj_lib.wait_until(lambda: len(phones["501410"].account.incoming) == 1, 5)
    assert final_status(pj_lib, call, RING_TIMEOUT + 4) == 480  # nobody answered
    end = time.monotonic() + 5
    while True:
        out = subprocess.run(
            [sys.executable, "-m", "switch", "calllog", "501410", "--config",
             str(switch.config), "--data-dir", str(switch.data_dir)],
            cwd=REPO, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
        lines = [json.loads(ln) for ln in out.stdout.splitlines()]
        missed = [e for e in lines[1:] if e["direction"] == "missed" and e["other"] == "501412"]
        if missed or time.monotonic() > end:
            break
        time.sleep(0.3)
    assert missed and lines[0]["missed_unread"] >= 1


def test_forward_always_to_the_carrier_survives_a_restart(
        pj_lib: Any, switch: RunningSwitch, phones: dict[str, Phone], carrier: Carrier,
        tmp_path: Path) -> None:
    """Last of the module: it restarts the switch."""
    dial_code(pj_lib, switch, phones["501410"], "*210612345678")
    call_id = carrier_invite(carrier, switch, "+33562070410")
    invite, src = carrier.expect_request("INVITE", poll=pj_lib.poll)
    _assert_forwarded(invite)
    assert phones["501410"].account.incoming == []
    carrier.answer(invite, src, status=486)
    assert carrier_final(carrier, call_id, pj_lib).status == 486

    switch.stop()
    again = start_switch(switch.data_dir, config=switch.config)
    try:
        carrier.reset()
        call_id = carrier_invite(carrier, again, "+33562070410")
        invite, src = carrier.expect_request("INVITE", poll=pj_lib.poll)
        _assert_forwarded(invite)
        carrier.answer(invite, src, status=486)
        carrier_final(carrier, call_id, pj_lib)
        desk = make_phone(pj_lib, transport="UDP", user="501410", host=again.host,
                          port=again.port, password=DEMO["501410"], register=True)
        assert desk.wait_registration(lambda e: e[0] == 200, since=0) is not None
        dial_code(pj_lib, again, desk, "#21")
        assert stored(again)[("acme", "501410")].forward_always is None
        desk.account.answer_with = None
        carrier_invite(carrier, again, "+33562070410")
        # pjsua2 hands the call to the first account of that URI (the module's 501410)
        assert pj_lib.wait_until(lambda: len(desk.account.incoming) + len(
            phones["501410"].account.incoming) >= 1, 5), again.log_text()[-3000:]
        desk.shutdown()
    finally:
        pj_lib.ep.hangupAllCalls()
        again.stop()


def _assert_forwarded(invite: Request) -> None:
    assert str(invite.uri).startswith("sip:+33612345678@")
    diversion = invite.headers.get("Diversion") or ""
    history = invite.headers.get("History-Info") or ""
    assert "+33562070410" in diversion and "reason=unconditional" in diversion
    assert "+33562070410" in history and "cause=302" in history
    assert "+33699887766" in (invite.headers.get("From") or "")  # the original caller
