"""Trunk calls (out and in), caller-ID rules and emergency calls against a carrier UA."""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterator
from typing import Any

import pjsua2 as pj
import pytest

from emergency.pidf import parse_civic
from scenarios.digest_client import authorization
from switch.sip import Request, parse_message, parse_multipart
from tests.support.carrier import Carrier
from tests.support.pjphone import Phone, make_phone
from tests.support.server import RunningSwitch, config_with, start_switch, wait_record
from tests.support.sipclient import UdpClient

DEMO = {"501410": "demo-501410", "501411": "demo-501411"}
CONFIRMED = pj.PJSIP_INV_STATE_CONFIRMED
DISCONNECTED = pj.PJSIP_INV_STATE_DISCONNECTED


@pytest.fixture(scope="module")
def trunk() -> Iterator[Carrier]:
    """The carrier on a free port, bound before the switch starts and held for the module
    (never the example's 127.0.0.1:5090: issue 11)."""
    c = Carrier()
    yield c
    c.close()


@pytest.fixture(scope="module")
def switch(tmp_path_factory: pytest.TempPathFactory, trunk: Carrier) -> Iterator[RunningSwitch]:
    tmp = tmp_path_factory.mktemp("trunk")
    running = start_switch(tmp, config=config_with(tmp, {"calls.ring_timeout": 5},
                                                   carrier_port=trunk.port))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def phones(pj_lib: Any, switch: RunningSwitch) -> Iterator[dict[str, Phone]]:
    made = {u: make_phone(pj_lib, transport="UDP", user=u, host=switch.host, port=switch.port,
                          password=p, register=True) for u, p in DEMO.items()}
    for phone in made.values():
        assert phone.wait_registration(lambda e: e[0] == 200, since=0) is not None
    yield made
    for phone in made.values():
        phone.shutdown()


@pytest.fixture
def carrier(trunk: Carrier, switch: RunningSwitch) -> Carrier:
    assert switch.carrier == trunk.addr  # the switch's trunk points at this carrier
    trunk.reset()
    return trunk


def test_the_carrier_is_on_a_free_port_and_the_trunk_points_there(
        switch: RunningSwitch, carrier: Carrier) -> None:
    import yaml

    assert carrier.port != 5090
    data = yaml.safe_load(switch.config.read_text(encoding="utf-8"))
    trunk = data["customers"][0]["trunks"][0]
    assert (trunk["host"], trunk["port"]) == ("127.0.0.1", carrier.port)
    assert trunk["trusted"] == [f"127.0.0.1:{carrier.port}"]
    every = [t for c in data["customers"] for t in c.get("trunks", [])]
    assert every and all(t["port"] != 5090 for t in every)


def hang_up(pj_lib: Any, phones: dict[str, Phone]) -> None:
    pj_lib.ep.hangupAllCalls()
    pj_lib.wait_until(lambda: False, 0.3)
    for p in phones.values():
        p.account.incoming.clear()
        p.account.answer_with = None


def test_call_to_a_mobile_leaves_on_the_trunk_in_e164_with_the_callers_number(
        pj_lib: Any, switch: RunningSwitch, phones: dict[str, Phone], carrier: Carrier) -> None:
    call = phones["501410"].call(f"sip:0612345678@{switch.host}:{switch.port}")
    try:
        invite, src = carrier.expect_request("INVITE", poll=pj_lib.poll)
        assert str(invite.uri) == f"sip:+33612345678@127.0.0.1:{carrier.port};user=phone"
        assert "+33562070410" in (invite.headers.get("P-Asserted-Identity") or "")
        assert "+33562070410" in (invite.headers.get("From") or "")
        carrier.answer(invite, src)
        assert pj_lib.wait_until(lambda: call.state == CONFIRMED, 5)
        call_id = call.sip_call_id
    finally:
        hang_up(pj_lib, phones)
    rec = wait_record(switch.data_dir, lambda r: r["call_id"] == call_id and r["end"])
    assert rec["decision"] == "external" and rec["callee"] == "+33612345678"
    assert rec["billable"] is True
    duration = rec["duration"]
    assert isinstance(duration, float | int)
    assert rec["rated_seconds"] == math.ceil(duration) > 0


def test_spoofed_premium_caller_id_is_replaced(pj_lib: Any, switch: RunningSwitch,
                                              phones: dict[str, Phone], carrier: Carrier) -> None:
    spoof = {"P-Preferred-Identity": f"<sip:+33899123456@{switch.host}>"}
    phones["501410"].call(f"sip:0612345678@{switch.host}:{switch.port}", headers=spoof)
    try:
        invite, src = carrier.expect_request("INVITE", poll=pj_lib.poll)
        pai = invite.headers.get("P-Asserted-Identity") or ""
        assert "+33562070410" in pai and "899" not in pai
        assert "899" not in (invite.headers.get("From") or "")
        carrier.answer(invite, src, status=486)
    finally:
        hang_up(pj_lib, phones)
    assert any("caller-id replaced" in ln and "+33899123456" in ln for ln in switch.log_lines)


def test_incoming_trunk_call_rings_the_owner_of_the_number(
        pj_lib: Any, switch: RunningSwitch, phones: dict[str, Phone], carrier: Carrier) -> None:
    phones["501410"].account.answer_with = 200
    call_id = carrier.call(switch.host, switch.port, "+33562070410")
    try:
        assert pj_lib.wait_until(lambda: len(phones["501410"].account.incoming) == 1, 5)
        incoming = phones["501410"].account.incoming[0]
        assert "+33612345678" in incoming.incoming_msg  # the carrier's caller number
        ok = None
        for _ in range(50):
            pj_lib.poll(20)
            try:
                ok = carrier.final_response(call_id, timeout=0.05)
                break
            except AssertionError:
                continue
        assert ok is not None and ok.status == 200
        carrier.ack(ok, switch.host, switch.port)
        assert pj_lib.wait_until(lambda: incoming.state == CONFIRMED, 5)
    finally:
        hang_up(pj_lib, phones)


@pytest.mark.parametrize("dialed", ["112", "18", "15"])
def test_barred_clir_user_reaches_emergency_with_location(
        pj_lib: Any, switch: RunningSwitch, phones: dict[str, Phone], carrier: Carrier,
        dialed: str) -> None:
    # 501411 has the internal-only barring profile and withholds its number
    call = phones["501411"].call(f"sip:{dialed}@{switch.host}:{switch.port}")
    try:
        invite, src = carrier.expect_request("INVITE", poll=pj_lib.poll)
        assert_emergency_invite(invite, dialed, "+33562070411", carrier.port)
        carrier.answer(invite, src)
        assert pj_lib.wait_until(lambda: call.state == CONFIRMED, 5)
        call_id = call.sip_call_id
    finally:
        hang_up(pj_lib, phones)
    rec = wait_record(switch.data_dir, lambda r: r["call_id"] == call_id and r["end"])
    assert rec["emergency"] is True and rec["billable"] is False
    duration = rec["duration"]
    assert isinstance(duration, float | int)
    assert rec["rated_seconds"] == 0 and duration > 0  # answered, yet never rated
    assert rec["decision"] == "emergency" and rec["callee"] == dialed
    assert any("emergency call" in ln and '"site": "01"' in ln for ln in switch.log_lines)


def assert_emergency_invite(invite: Request, number: str, identity: str, port: int) -> None:
    assert str(invite.uri) == f"sip:{number}@127.0.0.1:{port};user=phone"
    assert identity in (invite.headers.get("P-Asserted-Identity") or "")
    assert invite.headers.get("Priority") == "emergency"
    geo = invite.headers.get("Geolocation") or ""
    assert geo.startswith("<cid:")
    parts = parse_multipart(invite.headers.get("Content-Type") or "", invite.body)
    types = [p.header("Content-Type") for p in parts]
    assert types == ["application/sdp", "application/pidf+xml"]
    assert parts[1].header("Content-ID") == "<" + geo[5:-1] + ">"
    civic = parse_civic(parts[1].body)
    assert civic["A3"] == "Toulouse" and civic["RD"] == "Rue de la Gare"
    assert civic["HNO"] == "10" and civic["PC"] == "31000" and civic["country"] == "FR"


def _raw_invite(client: UdpClient, switch: RunningSwitch, ruri: str, user: str,
                auth: str | None = None, call_id: str | None = None, cseq: int = 1) -> bytes:
    sdp = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
           b"m=audio 41000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
    head = (
        f"INVITE {ruri} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{client.local_port};branch=z9hG4bK{secrets.token_hex(6)}"
        ";rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:{user}@{switch.host}>;tag=rawtag\r\nTo: <{ruri}>\r\n"
        f"Call-ID: {call_id or 'raw-' + secrets.token_hex(4)}\r\nCSeq: {cseq} INVITE\r\n"
        f"Contact: <sip:{user}@127.0.0.1:{client.local_port}>\r\n"
        + (f"Proxy-Authorization: {auth}\r\n" if auth else "")
        + f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n"
    )
    return head.encode() + sdp


def _final(client: UdpClient) -> Any:
    while True:
        data = client.recv_maybe(5.0)
        assert data is not None
        msg = parse_message(data)
        if getattr(msg, "status", 0) >= 200:
            return msg


def test_tel_uri_emergency_with_digest(switch: RunningSwitch, carrier: Carrier) -> None:
    client = UdpClient(switch.host, switch.port)
    try:
        ruri = "tel:15"
        client.send(_raw_invite(client, switch, ruri, "501411", call_id="tel15"))
        challenge = _final(client)
        assert challenge.status == 407
        auth = authorization(challenge.headers.get_all("Proxy-Authenticate"), method="INVITE",
                             uri=ruri, username="501411", password=DEMO["501411"])
        client.send(_raw_invite(client, switch, ruri, "501411", auth, call_id="tel15", cseq=2))
        invite, src = carrier.expect_request("INVITE")
        assert_emergency_invite(invite, "15", "+33562070411", carrier.port)
        carrier.answer(invite, src, status=486)
    finally:
        client.close()


def test_stale_credentials_from_the_site_network_still_reach_emergency(
        switch: RunningSwitch, carrier: Carrier) -> None:
    client = UdpClient(switch.host, switch.port)
    try:
        ruri = f"sip:112@{switch.host};user=phone"
        client.send(_raw_invite(client, switch, ruri, "501411", call_id="stale112"))
        challenge = _final(client)
        auth = authorization(challenge.headers.get_all("Proxy-Authenticate"), method="INVITE",
                             uri=ruri, username="501411", password="an-old-password")
        client.send(_raw_invite(client, switch, ruri, "501411", auth, call_id="stale112", cseq=2))
        invite, src = carrier.expect_request("INVITE")
        # located at site 01 (127.0.0.0/8 is its declared network), presented with its number
        assert_emergency_invite(invite, "112", "+33562070400", carrier.port)
        carrier.answer(invite, src, status=486)
        assert _final(client).status == 486  # the carrier's answer reaches the handset
        # a non-emergency call with the same bad credentials is refused
        ruri = f"sip:0612345678@{switch.host}"
        client.send(_raw_invite(client, switch, ruri, "501411", auth, call_id="stale2"))
        assert _final(client).status in (403, 407)
    finally:
        client.close()
    assert any("unauthenticated emergency call" in ln for ln in switch.log_lines)


def test_emergency_call_back_reaches_the_caller(pj_lib: Any, switch: RunningSwitch,
                                                phones: dict[str, Phone],
                                                carrier: Carrier) -> None:
    phones["501411"].call(f"sip:112@{switch.host}:{switch.port}")
    try:
        invite, src = carrier.expect_request("INVITE", poll=pj_lib.poll)
        carrier.answer(invite, src, status=486)
        pj_lib.wait_until(lambda: False, 0.5)
        # the PSAP calls the site's main number back: it rings the emergency caller
        carrier.call(switch.host, switch.port, "+33562070400", from_number="112")
        assert pj_lib.wait_until(lambda: len(phones["501411"].account.incoming) == 1, 5), \
            switch.log_text()[-2000:]
    finally:
        hang_up(pj_lib, phones)


def _http(method: str, url: str, user: str | None, password: str | None,
          body: dict[str, str] | None = None) -> tuple[int, dict[str, object]]:
    import base64
    import json
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, method=method,
                                 data=None if body is None else json.dumps(body).encode())
    req.add_header("Content-Type", "application/json")
    if user is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_nomadic_softphone_emergency_uses_the_self_declared_location(
        pj_lib: Any, switch: RunningSwitch, carrier: Carrier) -> None:
    # 502411 belongs to site 02, whose declared network is not 127.0.0.0/8: a nomadic device
    url = f"http://{switch.host}:{switch.http_port}/api/v1/me/emergency-location"
    where = {"street": "Quai de la Fosse", "number": "3", "postal_code": "44000",
             "city": "Nantes", "extra": "home office"}
    assert _http("PUT", url, "502411", "wrong", where)[0] == 401
    assert _http("PUT", url, None, None, where)[0] == 401
    status, stored = _http("PUT", url, "502411", "demo-502411", where)
    assert status == 200 and stored["city"] == "Nantes"
    assert _http("GET", url, "502411", "demo-502411")[1]["street"] == "Quai de la Fosse"
    # each user sees only their own declaration
    assert _http("GET", url, "501410", "demo-501410")[0] == 404

    phone = make_phone(pj_lib, transport="UDP", user="502411", host=switch.host,
                       port=switch.port, password="demo-502411", register=True)
    try:
        assert phone.wait_registration(lambda e: e[0] == 200, since=0) is not None
        phone.call(f"sip:112@{switch.host}:{switch.port}")
        invite, src = carrier.expect_request("INVITE", poll=pj_lib.poll)
        parts = parse_multipart(invite.headers.get("Content-Type") or "", invite.body)
        civic = parse_civic(parts[1].body)
        assert civic["A3"] == "Nantes" and civic["RD"] == "Quai de la Fosse"
        assert "+33223280411" in (invite.headers.get("P-Asserted-Identity") or "")
        carrier.answer(invite, src, status=486)
        pj_lib.wait_until(lambda: False, 0.3)
    finally:
        pj_lib.ep.hangupAllCalls()
        phone.shutdown()
    # flagged when it registered from outside site 02's network (10.2.0.0/16)
    assert any("nomadic device registered user=502411" in ln for ln in switch.log_lines)
    assert not any("nomadic device registered user=501410" in ln for ln in switch.log_lines)
    alert = next(ln for ln in switch.log_lines
                 if "emergency call" in ln and '"nomadic": true' in ln)
    assert "Nantes" in alert and "self-declared" in alert


def test_session_timer_negotiation(switch: RunningSwitch, carrier: Carrier) -> None:
    """RFC 4028: too small an interval gets 422 with our Min-SE; an accepted one comes back
    in the 2xx with the caller as refresher."""
    client = UdpClient(switch.host, switch.port)
    try:
        ruri = f"sip:0612345678@{switch.host}"
        small = "Supported: timer\r\nSession-Expires: 60\r\n"
        first = _raw_invite(client, switch, ruri, "501410", call_id="se1")
        client.send(first.replace(b"Content-Type:", small.encode() + b"Content-Type:"))
        resp = _final(client)
        assert resp.status == 422 and resp.headers.get("Min-SE") == "90"
        ok_se = "Supported: timer\r\nSession-Expires: 600\r\n"
        client.send(_raw_invite(client, switch, ruri, "501410", call_id="se2")
                    .replace(b"Content-Type:", ok_se.encode() + b"Content-Type:"))
        challenge = _final(client)
        auth = authorization(challenge.headers.get_all("Proxy-Authenticate"), method="INVITE",
                             uri=ruri, username="501410", password="demo-501410")
        client.send(_raw_invite(client, switch, ruri, "501410", auth, call_id="se2", cseq=2)
                    .replace(b"Content-Type:", ok_se.encode() + b"Content-Type:"))
        invite, src = carrier.expect_request("INVITE")
        carrier.answer(invite, src)
        ok = _final(client)
        assert ok.status == 200
        assert ok.headers.get("Session-Expires") == "600;refresher=uac"
        assert "timer" in (ok.headers.get("Require") or "")
    finally:
        client.close()
