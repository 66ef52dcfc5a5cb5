"""The WebSocket edge: which messages it rewrites, when gateways open and close."""

from __future__ import annotations

import asyncio

from aiortc import RTCPeerConnection, RTCSessionDescription

from switch.sip import Request, Response, parse_message
from switch.webrtc.edge import WebRtcEdge
from tests.webrtc.test_webrtc_sdp import BROWSER_OFFER, PLAIN_OFFER

HOST = "127.0.0.1"


class Conn:
    def __init__(self, conn_id: int) -> None:
        self.conn_id = conn_id
        self.sent: list[bytes] = []

    def send_frame(self, data: bytes) -> None:
        self.sent.append(data)


def invite(call_id: str, body: str, *, to_tag: str = "") -> bytes:
    tag = f";tag={to_tag}" if to_tag else ""
    return (f"INVITE sip:501411@{HOST} SIP/2.0\r\nVia: SIP/2.0/WS x.invalid;branch=z9hG4bK{call_id}\r\n"
            f"From: <sip:501410@{HOST}>;tag=a\r\nTo: <sip:501411@{HOST}>{tag}\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:x@x.invalid;transport=ws>\r\n"
            f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n{body}").encode()


def response(req: bytes, status: int, body: str = "") -> bytes:
    parsed = parse_message(req)
    assert isinstance(parsed, Request)
    lines = [f"SIP/2.0 {status} X", f"Via: {parsed.headers.get('Via')}",
             f"From: {parsed.headers.get('From')}", f"To: {parsed.headers.get('To')};tag=b",
             f"Call-ID: {parsed.call_id}", f"CSeq: {parsed.headers.get('CSeq')}"]
    if body:
        lines.append("Content-Type: application/sdp")
    lines += [f"Content-Length: {len(body)}", "", body]
    return "\r\n".join(lines).encode()


async def test_a_browser_offer_reaches_the_switch_as_plain_g711_and_a_407_closes_it() -> None:
    edge, conn = WebRtcEdge(HOST), Conn(1)
    raw = invite("c1", BROWSER_OFFER)
    out = edge.inbound(conn, raw)
    assert out is not None
    req = parse_message(out)
    assert isinstance(req, Request)
    body = req.body.decode()
    assert "RTP/AVP 0 8 101" in body and "fingerprint" not in body and f"c=IN IP4 {HOST}" in body
    assert list(edge.legs) == ["c1"]
    edge.outbound(conn, response(raw, 407))
    assert conn.sent and parse_message(conn.sent[0]).status == 407  # type: ignore[union-attr]
    assert not edge.legs  # no ICE or DTLS work for an unauthenticated INVITE
    await asyncio.sleep(0)


async def test_the_leg_limit_answers_503_itself() -> None:
    edge, conn = WebRtcEdge(HOST, max_legs=1), Conn(1)
    assert edge.inbound(conn, invite("c1", BROWSER_OFFER)) is not None
    assert edge.inbound(conn, invite("c2", BROWSER_OFFER)) is None
    refused = parse_message(conn.sent[-1])
    assert isinstance(refused, Response) and refused.status == 503
    assert refused.headers.get("Retry-After") == "30"
    await edge.close()


async def test_plain_websocket_phones_are_left_alone() -> None:
    edge, conn = WebRtcEdge(HOST), Conn(1)
    raw = invite("c1", PLAIN_OFFER)
    assert edge.inbound(conn, raw) == raw
    edge.outbound(conn, raw)  # the switch calls a WS phone that never said +sip.ice
    assert conn.sent == [raw] and not edge.legs


async def test_another_connection_cannot_touch_a_leg() -> None:
    edge, mine, other = WebRtcEdge(HOST), Conn(1), Conn(2)
    edge.inbound(mine, invite("c1", BROWSER_OFFER))
    out = edge.inbound(other, invite("c1", BROWSER_OFFER.replace("a=sendrecv", "a=sendonly"),
                                     to_tag="b"))
    assert out is not None and b"fingerprint" in out  # passed on unchanged
    assert not edge.legs["c1"].reoffer
    await edge.close()


async def test_the_switch_calls_a_browser_and_its_answer_becomes_plain() -> None:
    edge, conn = WebRtcEdge(HOST), Conn(1)
    register = (f"REGISTER sip:{HOST} SIP/2.0\r\nVia: SIP/2.0/WS x.invalid;branch=z9hG4bKr\r\n"
                f"From: <sip:501410@{HOST}>;tag=r\r\nTo: <sip:501410@{HOST}>\r\nCall-ID: r\r\n"
                "CSeq: 1 REGISTER\r\nContact: <sip:x@x.invalid;transport=ws>;+sip.ice\r\n"
                "Content-Length: 0\r\n\r\n").encode()
    edge.inbound(conn, register)
    raw = invite("c9", PLAIN_OFFER)
    edge.outbound(conn, raw)
    for _ in range(200):
        if conn.sent:
            break
        await asyncio.sleep(0.01)
    offer = parse_message(conn.sent[0])
    assert isinstance(offer, Request) and b"a=fingerprint" in offer.body
    # a browser (aiortc) answers it
    pc = RTCPeerConnection()
    await pc.setRemoteDescription(RTCSessionDescription(offer.body.decode(), "offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    out = edge.inbound(conn, response(raw, 200, pc.localDescription.sdp))
    assert out is not None
    answer = parse_message(out)
    assert isinstance(answer, Response)
    text = answer.body.decode()
    assert "RTP/AVP" in text and "fingerprint" not in text and "ice-ufrag" not in text
    gateway = edge.legs["c9"].gateway
    assert gateway.peer is not None and (gateway.peer.host, gateway.peer.port) == (
        "192.0.2.20", 40000)
    edge.outbound(conn, b"BYE sip:x@x.invalid SIP/2.0\r\nVia: SIP/2.0/WS h;branch=z9hG4bKb\r\n"
                        b"From: <sip:a@h>;tag=b\r\nTo: <sip:b@h>;tag=a\r\nCall-ID: c9\r\n"
                        b"CSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n")
    assert "c9" not in edge.legs
    await pc.close()
    await asyncio.sleep(0.05)
