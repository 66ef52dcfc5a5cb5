"""SIP over WebSocket (RFC 7118) against the switch as a real process: WS on P+2, WSS on P+3.

The client is the `websockets` library's asyncio client: an independent RFC 6455
implementation, so the handshake, masking and framing are checked against something that
is not our own code.
"""

from __future__ import annotations

import asyncio
import secrets
import ssl
from collections.abc import Callable, Iterator

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from scenarios.digest_client import authorization
from switch.sip import Request, Response, make_response, new_tag, parse_message
from tests.support.server import RunningSwitch, config_with, start_switch

SIP = [Subprotocol("sip")]
TIMEOUT = 5.0


@pytest.fixture(scope="module")
def switch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSwitch]:
    running = start_switch(tmp_path_factory.mktemp("ws"))
    yield running
    running.stop()


def _no_verify() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the switch's self-signed certificate
    return ctx


def _open(switch: RunningSwitch, *, secure: bool = False,
          subprotocols: list[Subprotocol] | None = SIP) -> connect:
    scheme, port = ("wss", switch.port + 3) if secure else ("ws", switch.port + 2)
    return connect(f"{scheme}://{switch.host}:{port}/", subprotocols=subprotocols,
                   ssl=_no_verify() if secure else None, open_timeout=TIMEOUT,
                   ping_interval=None)


class WsPhone:
    """A minimal RFC 7118 user agent: one SIP message per WebSocket message."""

    def __init__(self, ws: ClientConnection, host: str, port: int) -> None:
        self.ws = ws
        self.host = host
        self.port = port
        self.via_host = secrets.token_hex(5) + ".invalid"  # RFC 7118 section 5.2 / 7
        self.contact = f"<sip:{secrets.token_hex(4)}@{self.via_host};transport=ws>"

    def via(self, branch: str, transport: str = "WS") -> str:
        return f"SIP/2.0/{transport} {self.via_host};branch={branch};rport"

    async def send(self, data: str | bytes) -> None:
        await self.ws.send(data)

    async def recv_raw(self) -> str | bytes:
        return await asyncio.wait_for(self.ws.recv(), TIMEOUT)

    async def recv(self) -> Request | Response:
        data = await self.recv_raw()
        return parse_message(data.encode() if isinstance(data, str) else data)

    async def recv_final(self) -> Response:
        while True:
            msg = await self.recv()
            if isinstance(msg, Response) and msg.status >= 200:
                return msg

    def request(self, method: str, ruri: str, user: str, *, to: str | None = None,
                call_id: str | None = None, cseq: int = 1, branch: str | None = None,
                from_tag: str = "ft", extra: str = "", body: str = "",
                transport: str = "WS") -> str:
        branch = branch or "z9hG4bK" + secrets.token_hex(6)
        return (
            f"{method} {ruri} SIP/2.0\r\n"
            f"Via: {self.via(branch, transport)}\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:{user}@{self.host}>;tag={from_tag}\r\n"
            f"To: {to or f'<sip:{user}@{self.host}>'}\r\n"
            f"Call-ID: {call_id or secrets.token_hex(8)}\r\n"
            f"CSeq: {cseq} {method}\r\n"
            f"Contact: {self.contact}\r\n"
            f"{extra}"
            f"Content-Length: {len(body.encode())}\r\n\r\n{body}"
        )

    def options(self, transport: str = "WS") -> str:
        return self.request("OPTIONS", f"sip:{self.host}:{self.port}", "tester",
                            transport=transport)


def _top_via(msg: Request | Response) -> str:
    return str(msg.headers.get("Via")).split(",")[0]


def test_logs_ws_and_wss_listeners(switch: RunningSwitch) -> None:
    lines = switch.log_lines
    assert any(f"listening transport=WS address=127.0.0.1:{switch.port + 2}" in ln
               for ln in lines), switch.log_text()
    assert any(f"listening transport=WSS address=127.0.0.1:{switch.port + 3}" in ln
               for ln in lines), switch.log_text()


@pytest.mark.parametrize("secure", [False, True], ids=["ws", "wss"])
async def test_options_gets_200_on_the_same_connection(switch: RunningSwitch,
                                                       secure: bool) -> None:
    async with _open(switch, secure=secure) as ws:
        assert ws.subprotocol == "sip"  # RFC 7118 section 4: the server selected `sip`
        phone = WsPhone(ws, switch.host, switch.port)
        transport = "WSS" if secure else "WS"
        await phone.send(phone.options(transport))
        raw = await phone.recv_raw()
        assert isinstance(raw, str)  # RFC 7118 5.1: a text frame for a UTF-8 message
        resp = parse_message(raw.encode())
        assert isinstance(resp, Response) and resp.status == 200
        via = _top_via(resp)
        assert via.startswith(f"SIP/2.0/{transport} {phone.via_host}"), via
        assert "received=127.0.0.1" in via, via  # RFC 3261 18.2.1 / RFC 7118 5.2
        # a binary frame and a fragmented message each carry one SIP message too (5.1)
        await phone.send(phone.options(transport).encode())
        assert (await phone.recv_final()).status == 200
        text = phone.options(transport)
        await ws.send(iter([text[:40], text[40:90], text[90:]]))  # 3 frames, 1 message
        assert (await phone.recv_final()).status == 200
        # RFC 6455 5.5.2/5.5.3: ping is answered with pong
        pong = await ws.ping()
        await asyncio.wait_for(pong, TIMEOUT)
        # a double-CRLF keep-alive gets a CRLF pong (RFC 5626 4.4.1, as on TCP)
        await phone.send("\r\n\r\n")
        assert await phone.recv_raw() == "\r\n"
    assert ws.close_code == 1000  # the closing handshake completed (RFC 6455 7.1.2)


@pytest.mark.parametrize("offered", [None, [Subprotocol("chat")]], ids=["none", "chat"])
async def test_handshake_without_sip_subprotocol_is_refused_with_400(
        switch: RunningSwitch, offered: list[Subprotocol] | None) -> None:
    with pytest.raises(InvalidStatus) as info:
        async with _open(switch, subprotocols=offered):
            pass
    assert info.value.response.status_code == 400


async def test_malformed_message_gets_400_and_other_connections_live_on(
        switch: RunningSwitch) -> None:
    async with _open(switch) as ws_a, _open(switch) as ws_b:
        a = WsPhone(ws_a, switch.host, switch.port)
        b = WsPhone(ws_b, switch.host, switch.port)
        bad = a.options().replace("Max-Forwards: 70", "Max-Forwards: 256")
        await a.send(bad)
        resp = await a.recv_final()
        assert resp.status == 400
        assert "Warning" in resp.headers
        # garbage that is not SIP at all is dropped and counted; the connection stays up
        await a.send("hello, this is not SIP\r\n\r\n")
        await a.send(a.options())
        assert (await a.recv_final()).status == 200
        await b.send(b.options())
        assert (await b.recv_final()).status == 200


async def test_message_larger_than_max_message_size_closes_with_1009(
        switch: RunningSwitch) -> None:
    async with _open(switch) as ws:
        phone = WsPhone(ws, switch.host, switch.port)
        await phone.send(phone.options().replace("\r\n\r\n", "\r\n\r\n" + "x" * 70_000))
        with pytest.raises(ConnectionClosed):
            await phone.recv_raw()
    assert ws.close_code == 1009  # RFC 6455 7.4.1: message too big
    async with _open(switch) as ws2:  # the listener is unaffected
        phone = WsPhone(ws2, switch.host, switch.port)
        await phone.send(phone.options())
        assert (await phone.recv_final()).status == 200


async def _authenticated(phone: WsPhone, build: Callable[[int, str], str], user: str, password: str,
                         method: str, uri: str) -> Response:
    """Send a request and answer its 401/407 digest challenge once.

    Returns the final answer to the authenticated request; for an INVITE, whose answer
    comes from the callee later, returns the challenge (after ACKing it)."""
    first = build(1, "")
    await phone.send(first)
    challenge = await phone.recv_final()
    assert challenge.status in (401, 407), challenge
    name = "WWW-Authenticate" if challenge.status == 401 else "Proxy-Authenticate"
    header = "Authorization" if challenge.status == 401 else "Proxy-Authorization"
    if method == "INVITE":
        # ACK for the non-2xx final answer, same branch and To tag (RFC 3261 17.1.1.3)
        req = parse_message(first.encode())
        assert isinstance(req, Request)
        ack = (
            f"ACK {uri} SIP/2.0\r\nVia: {req.headers.get('Via')}\r\nMax-Forwards: 70\r\n"
            f"From: {req.headers.get('From')}\r\nTo: {challenge.headers.get('To')}\r\n"
            f"Call-ID: {req.call_id}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
        )
        await phone.send(ack)
    creds = authorization(challenge.headers.get_all(name), method=method, uri=uri,
                          username=user, password=password)
    assert creds is not None
    await phone.send(build(2, f"{header}: {creds}\r\n"))
    return await phone.recv_final() if method != "INVITE" else challenge


SDP = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")


async def test_register_over_ws_then_a_call_reaches_the_phone_on_its_websocket(
        switch: RunningSwitch) -> None:
    async with _open(switch) as ws_callee, _open(switch, secure=True) as ws_caller:
        callee = WsPhone(ws_callee, switch.host, switch.port)
        caller = WsPhone(ws_caller, switch.host, switch.port)
        reg_uri = f"sip:{switch.host}:{switch.port}"
        call_id = secrets.token_hex(8)

        def register(cseq: int, extra: str) -> str:
            return callee.request("REGISTER", reg_uri, "501410", call_id=call_id, cseq=cseq,
                                  extra="Expires: 300\r\n" + extra)

        ok = await _authenticated(callee, register, "501410", "demo-501410", "REGISTER",
                                  reg_uri)
        assert ok.status == 200, ok
        assert callee.contact.strip("<>") in str(ok.headers.get("Contact")), ok

        # 501411, over WSS, calls 501410: the INVITE must reach the callee's WebSocket
        # (RFC 7118 5.2: the switch cannot connect to a WebSocket client)
        invite_uri = f"sip:501410@{switch.host}:{switch.port}"
        invite_call = secrets.token_hex(8)
        to = f"<sip:501410@{switch.host}>"

        def invite(cseq: int, extra: str) -> str:
            return caller.request("INVITE", invite_uri, "501411", to=to, call_id=invite_call,
                                  cseq=cseq, from_tag="caller", transport="WSS",
                                  extra="Content-Type: application/sdp\r\n" + extra,
                                  body=SDP)

        await _authenticated(caller, invite, "501411", "demo-501411", "INVITE", invite_uri)
        incoming = await callee.recv()
        while not (isinstance(incoming, Request) and incoming.method == "INVITE"):
            incoming = await callee.recv()
        assert str(incoming.uri) == callee.contact.strip("<>")  # the registered Contact
        assert "501410" in str(incoming.headers.get("To"))
        assert _top_via(incoming).startswith("SIP/2.0/WS "), _top_via(incoming)

        # the callee declines: 603 goes back on the same WebSocket and the caller hears it
        # (a busy 486 would reach 501410's mailbox since issue 13)
        await callee.send(make_response(incoming, 603, to_tag=new_tag()).to_bytes().decode())
        ack = await callee.recv()  # the switch's ACK for the 603 (RFC 3261 17.1.1.3)
        assert isinstance(ack, Request) and ack.method == "ACK", ack
        final = await caller.recv_final()
        assert final.status == 603, final

        # unregister so that the binding does not outlive the test
        unreg = await _authenticated(
            callee, lambda cseq, extra: callee.request(
                "REGISTER", reg_uri, "501410", call_id=call_id, cseq=cseq + 2,
                extra="Expires: 0\r\n" + extra),
            "501410", "demo-501410", "REGISTER", reg_uri)
        assert unreg.status == 200


async def test_idle_websocket_is_closed_like_a_stream_connection(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    data_dir = tmp_path_factory.mktemp("ws-idle")
    config = config_with(data_dir, {"sip.tcp_idle_timeout": 1.0})
    running = await asyncio.to_thread(start_switch, data_dir, config=config)
    try:
        async with _open(running) as ws:
            phone = WsPhone(ws, running.host, running.port)
            await phone.send(phone.options())
            assert (await phone.recv_final()).status == 200
            with pytest.raises(ConnectionClosed):
                await phone.recv_raw()  # nothing more is sent: the reaper closes it
    finally:
        await asyncio.to_thread(running.stop)
