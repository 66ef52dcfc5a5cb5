"""The WebSocket edge of WebRTC legs: SDP bodies rewritten between browsers and the switch.

Every SIP message to or from a WebSocket client (RFC 7118) passes here. A browser's WebRTC
description never reaches the call service: the edge puts in its place a plain RTP/G.711
description of a `WebRtcGateway` socket, and puts the gateway's WebRTC description in
place of the switch's plain one on the way out. The call service, the relay, the call
applications (auto-attendant, voicemail, queues, conferences) and transfers therefore treat
a browser like any plain phone, with no change.

Which way a call goes:
- the browser offers (its INVITE): the plain offer replaces it at once (the gateway binds
  its socket synchronously); the peer connection is made only when the switch answers
  (183/200 with SDP), so an INVITE that gets 407, 403 or 404 costs no ICE or DTLS work.
  Its WebRTC answer (aiortc's, candidates included) replaces the switch's plain answer.
- the switch calls a browser: a connection is a WebRTC client once it registered with the
  `+sip.ice` Contact feature tag (RFC 5768 section 4.2, as browser SIP stacks do) or sent
  a WebRTC description; an INVITE to it gets the gateway's WebRTC offer, and the browser's
  answer becomes a plain answer to the switch's offer.
- hold and resume (a re-INVITE either way) keep ICE and DTLS: only the direction and the
  o= version change (RFC 3264 section 8.4), on both sides.
- a final non-2xx to the first INVITE, a BYE either way, or the connection closing closes
  the gateway.

Messages to one connection keep their order: one that waits for aiortc holds the ones
behind it (`_chains`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from switch.dialog.offeranswer import SdpVersioner
from switch.dialog.sdp import Direction, SessionDescription, parse_sdp
from switch.sip import Request, Response, SipError, make_response, new_tag, parse_message
from switch.sip.errors import SipParseError

from .gateway import WebRtcGateway
from .sdp import (
    answering_setup,
    direction_of,
    is_webrtc,
    origin_version,
    plain_answer,
    plain_offer,
    plain_peer,
    restamp,
    setup_of,
)

log = logging.getLogger("switch.webrtc")


class EdgeConnection(Protocol):
    """What the edge needs of a WebSocket connection (switch.transport.ws.WsConnection)."""

    conn_id: int

    def send_frame(self, data: bytes) -> None: ...


@dataclass
class Leg:
    call_id: str
    conn_id: int
    gateway: WebRtcGateway
    browser_offered: bool
    versioner: SdpVersioner
    browser_offer: str = ""  # the browser's first offer (browser_offered)
    plain_local: SessionDescription | None = None  # what the switch last got from us
    switch_offer: SessionDescription | None = None  # a plain offer waiting for the browser
    plain_answer_sent: bytes = b""  # repeated for a 200 after a 183
    reoffer: bool = False  # the browser re-offered (hold/resume): its answer is restamped
    established: bool = False
    first_remote_setup: str | None = None
    version: int = 0
    tasks: set[asyncio.Future[None]] = field(default_factory=set)


class WebRtcEdge:
    def __init__(self, media_host: str, *, prefer: tuple[str, ...] = ("PCMU", "opus"),
                 stun_servers: tuple[str, ...] = (), max_legs: int = 200) -> None:
        self.host = media_host
        self.prefer = prefer
        self.stun_servers = stun_servers
        self.max_legs = max_legs
        self.legs: dict[str, Leg] = {}
        self.webrtc_conns: set[int] = set()
        self._chains: dict[int, asyncio.Future[None]] = {}
        self._sessions = itertools.count(secrets.randbelow(2**31))
        self.counters = {"legs_opened": 0, "legs_refused": 0, "gateway_errors": 0}

    # -- the connection's hooks --

    def inbound(self, conn: EdgeConnection, message: bytes) -> bytes | None:
        """A message from the browser; what the switch gets instead (None: nothing)."""
        try:
            msg = parse_message(message)
            return self._inbound(conn, msg, message)
        except (SipParseError, SipError, ValueError) as exc:
            # the runtime answers unparseable messages itself; a bad SDP gets the core's
            # answer to bad SDP (it sees the original body)
            log.debug("webrtc edge passes a message unchanged: %s", exc)
            return message

    def outbound(self, conn: EdgeConnection, message: bytes) -> None:
        """A message to the browser: sent now, or once aiortc has made its description."""
        try:
            msg = parse_message(message)
            work = self._outbound(conn, msg)
        except (SipParseError, SipError, ValueError) as exc:
            log.debug("webrtc edge sends a message unchanged: %s", exc)
            work = None
        if work is None and conn.conn_id not in self._chains:
            conn.send_frame(message)
            return

        async def ready() -> bytes | None:
            return message

        self._after(conn, work if work is not None else ready)

    def closed(self, conn: EdgeConnection) -> None:
        self.webrtc_conns.discard(conn.conn_id)
        for leg in [lg for lg in self.legs.values() if lg.conn_id == conn.conn_id]:
            self._close(leg.call_id)

    async def close(self) -> None:
        for call_id in list(self.legs):
            leg = self.legs.pop(call_id)
            await leg.gateway.close()

    # -- inbound --

    def _inbound(self, conn: EdgeConnection, msg: Request | Response,
                 raw: bytes) -> bytes | None:
        if isinstance(msg, Request):
            if msg.method == "REGISTER":
                contact = " ".join(msg.headers.get_all("Contact"))
                if "+sip.ice" in contact.lower():
                    self.webrtc_conns.add(conn.conn_id)
                return raw
            if msg.method == "INVITE" and msg.body and is_webrtc(msg.body):
                self.webrtc_conns.add(conn.conn_id)
                return self._browser_offer(conn, msg)
            leg = self.legs.get(msg.call_id)
            if msg.method == "BYE" and leg is not None and leg.conn_id == conn.conn_id:
                self._close(msg.call_id)
            return raw
        leg = self.legs.get(msg.call_id)
        if leg is None or msg.cseq.method != "INVITE" or leg.conn_id != conn.conn_id:
            return raw
        if 100 < msg.status < 300 and msg.body and is_webrtc(msg.body):
            return self._browser_answer(leg, msg)
        if msg.status >= 300 and not leg.established and not leg.browser_offered:
            self._close(leg.call_id)  # the browser refused our first INVITE
        if 200 <= msg.status < 300:
            leg.established = True
        return raw

    def _browser_offer(self, conn: EdgeConnection, req: Request) -> bytes | None:
        body = req.body.decode("utf-8", "replace")
        leg = self.legs.get(req.call_id)
        if leg is not None and leg.conn_id != conn.conn_id:
            return req.to_bytes()  # another connection's Call-ID: not its leg to change
        if leg is None:
            if req.to.tag is not None:
                return req.to_bytes()  # a re-INVITE of a dialog we do not know: unchanged
            if len(self.legs) >= self.max_legs:
                self.counters["legs_refused"] += 1
                conn.send_frame(make_response(req, 503, "Service Unavailable", to_tag=new_tag(),
                                              headers=[("Retry-After", "30")]).to_bytes())
                return None
            leg = self._new_leg(conn, req.call_id, browser_offered=True)
            leg.browser_offer = body
        elif req.to.tag is not None:
            leg.reoffer = True  # hold or resume: ICE and DTLS stay (RFC 3264 8.4)
        else:
            leg.browser_offer = body  # the INVITE again, after a 407 challenge
        plain = plain_offer(leg.versioner, self.host, leg.gateway.port, direction_of(body))
        leg.plain_local = plain
        return req.replace(body=plain.to_bytes()).to_bytes()

    def _browser_answer(self, leg: Leg, resp: Response) -> bytes:
        body = resp.body.decode("utf-8", "replace")
        if leg.switch_offer is None:
            if leg.plain_answer_sent:  # the 200 after a 183: the same answer
                return resp.replace(body=leg.plain_answer_sent).to_bytes()
            return resp.to_bytes()
        offer, leg.switch_offer = leg.switch_offer, None
        answer = plain_answer(leg.versioner, offer, self.host, leg.gateway.port,
                              direction_of(body))
        peer = plain_peer(answer, offer)
        if peer is not None:
            leg.gateway.set_peer(peer)
        if leg.gateway.remote_sdp is None:
            leg.first_remote_setup = setup_of(body)
            self._spawn(leg, leg.gateway.accept(body))
        leg.plain_local = answer
        leg.plain_answer_sent = answer.to_bytes()
        if resp.status >= 200:
            leg.established = True
        return resp.replace(body=leg.plain_answer_sent).to_bytes()

    # -- outbound --

    def _outbound(self, conn: EdgeConnection,
                  msg: Request | Response) -> Callable[[], Awaitable[bytes | None]] | None:
        if isinstance(msg, Request):
            if msg.method == "BYE" and msg.call_id in self.legs:
                self._close(msg.call_id)
                return None
            if msg.method != "INVITE" or not msg.body or is_webrtc(msg.body):
                return None
            leg = self.legs.get(msg.call_id)
            if leg is None:
                if msg.to.tag is not None or conn.conn_id not in self.webrtc_conns:
                    return None  # a plain WebSocket phone: its SDP is its own business
                if len(self.legs) >= self.max_legs:
                    self.counters["legs_refused"] += 1
                    return None  # it gets the plain offer; a browser answers 488
                leg = self._new_leg(conn, msg.call_id, browser_offered=False)
            return self._switch_offer(leg, msg)
        leg = self.legs.get(msg.call_id)
        if leg is None or msg.cseq.method != "INVITE":
            return None
        if msg.status >= 300 and leg.browser_offered and not leg.established:
            self._close(leg.call_id)  # 407, 403, 404, 486...: the browser's INVITE failed
            return None
        if not (100 < msg.status < 300) or not msg.body or (not leg.browser_offered and not leg.reoffer):
            return None
        return self._switch_answer(leg, msg)

    def _switch_offer(self, leg: Leg, req: Request) -> Callable[[], Awaitable[bytes | None]]:
        offer = parse_sdp(req.body)
        leg.switch_offer = offer
        first = offer.media[0] if offer.media else None
        direction = offer.direction_of(first) if first is not None else Direction.SENDRECV
        gateway = leg.gateway

        async def make() -> bytes | None:
            if gateway.local_sdp is None:
                sdp = await gateway.offer()
            else:  # a re-offer from the switch (hold toward the browser): same transport
                leg.version = max(leg.version, origin_version(gateway.local_sdp)) + 1
                sdp = restamp(gateway.local_sdp, direction, version=leg.version)
            return req.replace(body=sdp.encode()).to_bytes()

        return make

    def _switch_answer(self, leg: Leg, resp: Response) -> Callable[[], Awaitable[bytes | None]]:
        answer = parse_sdp(resp.body)
        if leg.plain_local is not None:
            peer = plain_peer(leg.plain_local, answer)
            if peer is not None:
                leg.gateway.set_peer(peer)
        first = answer.media[0] if answer.media else None
        direction = answer.direction_of(first) if first is not None else Direction.SENDRECV
        reoffer = leg.reoffer and resp.status >= 200
        if resp.status >= 200:
            leg.established = True
            leg.reoffer = False
        gateway = leg.gateway

        async def make() -> bytes | None:
            if gateway.local_sdp is None:
                sdp = await gateway.answer(leg.browser_offer)
            elif reoffer:
                leg.version = max(leg.version, origin_version(gateway.local_sdp)) + 1
                setup = (None if leg.browser_offered
                         else answering_setup(leg.first_remote_setup))
                sdp = restamp(gateway.local_sdp, direction, version=leg.version, setup=setup)
            else:
                sdp = gateway.local_sdp
            return resp.replace(body=sdp.encode()).to_bytes()

        return make

    # -- plumbing --

    def _new_leg(self, conn: EdgeConnection, call_id: str, *, browser_offered: bool) -> Leg:
        gateway = WebRtcGateway(self.host, prefer=self.prefer, stun_servers=self.stun_servers,
                                label=call_id[:16])
        gateway.open()
        leg = Leg(call_id, conn.conn_id, gateway, browser_offered,
                  SdpVersioner(next(self._sessions), username="wte-webrtc"))
        self.legs[call_id] = leg
        self.counters["legs_opened"] += 1
        log.info("webrtc leg %s opened (%s) plain port %d", call_id[:16],
                 "browser offers" if browser_offered else "switch offers", gateway.port)
        return leg

    def _close(self, call_id: str) -> None:
        leg = self.legs.pop(call_id, None)
        if leg is not None:
            task = asyncio.ensure_future(leg.gateway.close())
            leg.tasks.add(task)
            task.add_done_callback(leg.tasks.discard)

    def _spawn(self, leg: Leg, coro: Awaitable[None]) -> None:
        async def guarded() -> None:
            try:
                await coro
            except Exception:
                self.counters["gateway_errors"] += 1
                log.exception("webrtc leg %s failed", leg.call_id[:16])
                self._close(leg.call_id)

        task = asyncio.ensure_future(guarded())
        leg.tasks.add(task)
        task.add_done_callback(leg.tasks.discard)

    def _after(self, conn: EdgeConnection, make: Callable[[], Awaitable[bytes | None]]) -> None:
        """Send what `make` gives once the messages queued before it on `conn` are sent."""
        previous = self._chains.get(conn.conn_id)

        async def run() -> None:
            if previous is not None:
                with contextlib.suppress(Exception):
                    await previous
            try:
                data = await make()
            except Exception:
                self.counters["gateway_errors"] += 1
                log.exception("webrtc edge: no description for a message to connection %d",
                              conn.conn_id)
                return
            if data is not None:
                conn.send_frame(data)

        task = asyncio.ensure_future(run())
        self._chains[conn.conn_id] = task

        def done(t: asyncio.Future[None]) -> None:
            if self._chains.get(conn.conn_id) is t:
                del self._chains[conn.conn_id]

        task.add_done_callback(done)
