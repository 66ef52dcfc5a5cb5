"""A DECT base with three handsets against `wte serve` (issue 19, "what it must show").

The base is one UDP socket: it claims three activation codes (501410, 501411, 501412) in
one provisioning request as a Gigaset N510 would, registers the three lines from its single
address with the generated credentials and one Contact per handset, and each call to one
of those numbers rings that handset only (one INVITE, to that handset's Contact). Run twice:
Contacts on the base's own address (a LAN) and on a private address the packets did not
come from (a base behind NAT: `Binding.destination()` must then use the source address,
the Request-URI still naming the handset).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import secrets
import socket
import time
from collections.abc import Iterator
from typing import Any

import pjsua2 as pj
import pytest

from scenarios.digest_client import authorization
from switch.sip import Request, Response, make_response, new_tag, parse_message, uri_user
from switch.storage.cli import database_url
from switch.storage.devices import read_devices
from tests.support.pjphone import make_phone
from tests.support.server import RunningSwitch, start_switch

TOKEN = "dect-admin-token"
LINES = ("501410", "501411", "501412")
GIGASET_UA = "Gigaset N510 IP PRO/42.250.00.000.000"


@pytest.fixture(scope="module")
def switch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSwitch]:
    tmp = tmp_path_factory.mktemp("dect")
    running = start_switch(tmp, env={"WTE_ADMIN_TOKEN": TOKEN})
    yield running
    running.stop()


def http_request(switch: RunningSwitch, method: str, path: str, *, body: str | None = None,
                 headers: dict[str, str]) -> tuple[int, str]:
    conn = http.client.HTTPConnection(switch.host, switch.http_port, timeout=10)
    try:
        conn.request(method, path, body, headers)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def provision_base(switch: RunningSwitch, mac: str) -> list[tuple[str, str, str]]:
    """Three codes from the admin API, claimed by one Gigaset base: (number, login, password)
    per handset, read from the XML it receives."""
    codes = []
    for number in LINES:
        status, text = http_request(
            switch, "POST", "/api/v1/provisioning/codes", body=json.dumps({"user": number}),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
        assert status == 201, text
        codes.append(json.loads(text)["code"])
    query = "&".join(f"code={c}" for c in codes)
    status, xml = http_request(switch, "GET", f"/provisioning/{mac}.xml?{query}",
                               headers={"User-Agent": GIGASET_UA})
    assert status == 200, xml + switch.log_text()[-2000:]
    items = dict(re.findall(r'ID="BS_IP_Data1\.(\w+)" class="symb_item" value="([^"]*)"', xml))
    lines = [(items[f"aucS_SIP_USER_ID_{i}"], items[f"aucS_SIP_LOGIN_ID_{i}"],
              items[f"aucS_SIP_PASSWORD_{i}"]) for i in range(3)]
    assert [n for n, _, _ in lines] == list(LINES)
    assert len({login for _, login, _ in lines}) == 3  # one credential per handset
    # the same codes cannot provision a second base
    status, _ = http_request(switch, "GET", f"/provisioning/7c2f80000001.xml?{query}",
                             headers={"User-Agent": GIGASET_UA})
    assert status == 410
    return lines


class DectBase:
    """One UDP socket, one address: the base. Its handsets are lines registered through it."""

    def __init__(self, switch: RunningSwitch, contact_host: str | None) -> None:
        self.switch = switch
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        # the Contact: the base's own address, or a private one behind a NAT
        self.contact_hostport = (f"127.0.0.1:{self.port}" if contact_host is None
                                 else f"{contact_host}:5060")
        self.call_ids: dict[str, str] = {}
        self.cseq: dict[str, int] = {}
        self.invites: list[Request] = []
        self._seen: set[tuple[str, str]] = set()

    def _send(self, data: bytes) -> None:
        self.sock.sendto(data, (self.switch.host, self.switch.port))

    def register(self, number: str, handset: int, login: str, password: str,
                 expires: int = 300, instance: str | None = None) -> Response:
        call_id = self.call_ids.setdefault(number, secrets.token_hex(8))
        auth = ""
        for _ in range(2):
            self.cseq[number] = self.cseq.get(number, 0) + 1
            host = f"{self.switch.host}:{self.switch.port}"
            raw = (f"REGISTER sip:{host} SIP/2.0\r\n"
                   f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{secrets.token_hex(6)}"
                   ";rport\r\nMax-Forwards: 70\r\n"
                   f"From: <sip:{number}@{host}>;tag={secrets.token_hex(4)}\r\n"
                   f"To: <sip:{number}@{host}>\r\nCall-ID: {call_id}\r\n"
                   f"CSeq: {self.cseq[number]} REGISTER\r\n"
                   f"Contact: <sip:hs{handset}@{self.contact_hostport}>;expires={expires}"
                   + (f';+sip.instance="<urn:uuid:{instance}>"' if instance else "")
                   + "\r\n"
                   f"User-Agent: {GIGASET_UA}\r\n{auth}Content-Length: 0\r\n\r\n")
            self._send(raw.encode())
            resp = self._response(call_id)
            if resp.status != 401:
                return resp
            value = authorization(resp.headers.get_all("WWW-Authenticate"), method="REGISTER",
                                  uri=f"sip:{host}", username=login, password=password)
            assert value is not None
            auth = f"Authorization: {value}\r\n"
        return resp

    def _response(self, call_id: str, timeout: float = 5.0) -> Response:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            msg = self.pump(0.2)
            if isinstance(msg, Response) and msg.call_id == call_id:
                return msg
        raise AssertionError(f"no response for {call_id}")

    def pump(self, timeout: float) -> Request | Response | None:
        """Read one datagram; answer requests as a base does (an INVITE: 180 then 486, the
        handset is busy, so the test call ends at once; OPTIONS pings: 200)."""
        self.sock.settimeout(timeout)
        try:
            data, _ = self.sock.recvfrom(65535)
        except TimeoutError:
            return None
        msg = parse_message(data)
        if isinstance(msg, Request):
            if msg.method == "INVITE":
                key = (msg.call_id, msg.top_via.branch or "")
                if key not in self._seen:  # a retransmission is the same ring
                    self._seen.add(key)
                    self.invites.append(msg)
                tag = new_tag()
                self._send(make_response(msg, 180, to_tag=tag).to_bytes())
                self._send(make_response(msg, 486, to_tag=tag).to_bytes())
            elif msg.method != "ACK":
                self._send(make_response(msg, 200, to_tag=new_tag()).to_bytes())
        return msg

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("contact_host", [None, "192.168.1.50"], ids=["lan", "behind-nat"])
def test_a_dect_base_registers_three_lines_from_one_address_and_each_rings_alone(
        pj_lib: Any, switch: RunningSwitch, contact_host: str | None) -> None:
    mac = "7c2f80aabb01" if contact_host is None else "7c2f80aabb02"
    lines = provision_base(switch, mac)
    base = DectBase(switch, contact_host)
    caller = make_phone(pj_lib, transport="UDP", user="502411", host=switch.host,
                        port=switch.port, password="demo-502411", register=False)
    try:
        for handset, (number, login, password) in enumerate(lines, start=1):
            resp = base.register(number, handset, login, password)
            assert resp.status == 200, (number, resp.status, switch.log_text()[-2000:])
            listed = resp.headers.get_all("Contact")
            assert any(f"hs{handset}@{base.contact_hostport}" in c for c in listed), listed

        # three lines, three accounts, three contacts, one source address
        rows = asyncio.run(read_devices(database_url(str(switch.data_dir)), time.time()))
        mine = [r for r in rows if r.active and r.source == f"127.0.0.1:{base.port}"]
        assert sorted(r.user for r in mine) == sorted(LINES)
        assert len({r.contact for r in mine}) == 3
        assert {r.model for r in mine} == {"N510 IP PRO"}

        for handset, (number, _, _) in enumerate(lines, start=1):
            (rung,) = ring(pj_lib, caller, switch, number, [base])
            assert len(rung) == 1, ([str(r.uri) for r in rung], switch.log_text()[-3000:])
            assert uri_user(rung[0].uri) == f"hs{handset}"
            assert str(rung[0].uri).endswith(f"@{base.contact_hostport}")
            assert uri_user(rung[0].to.uri) == number
    finally:
        for handset, (number, login, password) in enumerate(lines, start=1):
            base.register(number, handset, login, password, expires=0)
        base.close()
        caller.shutdown()


def ring(pj_lib: Any, caller: Any, switch: RunningSwitch, number: str,
         bases: list[DectBase]) -> list[list[Request]]:
    """Call `number` and return, per base, the INVITEs it received for that call."""
    before = [len(b.invites) for b in bases]
    call = caller.call(f"sip:{number}@{switch.host}:{switch.port}")
    end = time.monotonic() + 8
    while time.monotonic() < end and all(len(b.invites) == n for b, n in zip(bases, before,
                                                                             strict=True)):
        pj_lib.poll(10)
        for b in bases:
            b.pump(0.01)
    settle = time.monotonic() + 0.5
    while time.monotonic() < settle:
        pj_lib.poll(10)
        for b in bases:
            b.pump(0.01)
    caller.lib.ep.hangupAllCalls()
    pj_lib.wait_until(lambda: call.state in (pj.PJSIP_INV_STATE_DISCONNECTED,
                                             pj.PJSIP_INV_STATE_NULL), 5)
    return [b.invites[n:] for b, n in zip(bases, before, strict=True)]


def test_a_handset_roams_to_another_base_of_the_site(pj_lib: Any,
                                                      switch: RunningSwitch) -> None:
    """Two bases of a multi-cell system share the handsets' configuration; a handset that
    moves re-registers through the other base with the same +sip.instance (RFC 5626
    section 4.1), which replaces its binding: calls follow it, the old base stays quiet,
    and the move is not refused as a second device."""
    number, login, password = provision_base(switch, "7c2f80aabb03")[0]
    first, second = DectBase(switch, None), DectBase(switch, None)
    caller = make_phone(pj_lib, transport="UDP", user="502411", host=switch.host,
                        port=switch.port, password="demo-502411", register=False)
    instance = "5d7f1c2e-0000-4000-8000-7c2f80aabb03"
    try:
        assert first.register(number, 1, login, password, instance=instance).status == 200
        rung = ring(pj_lib, caller, switch, number, [first, second])
        assert [len(r) for r in rung] == [1, 0]
        resp = second.register(number, 1, login, password, instance=instance)
        assert resp.status == 200
        listed = resp.headers.get_all("Contact")
        assert len(listed) == 1 and f"127.0.0.1:{second.port}" in listed[0], listed
        rung = ring(pj_lib, caller, switch, number, [first, second])
        assert [len(r) for r in rung] == [0, 1]
        assert uri_user(rung[1][0].uri) == "hs1"
    finally:
        second.register(number, 1, login, password, expires=0, instance=instance)
        first.close()
        second.close()
        caller.shutdown()
