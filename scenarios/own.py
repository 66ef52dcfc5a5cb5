"""The own engine: a user agent on the switch's SIP stack (sans-IO transactions + asyncio).

Fast and light: hundreds of phones run in one loop. Signalling only: it offers and answers
SDP (G.711, telephone-event) but sends no RTP, so media steps are not supported. Blind
transfer is: REFER in the call, then the NOTIFYs of its implicit subscription carry the
outcome (RFC 3515 2.4.4, a message/sipfrag status line).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote

from switch.sip import (
    Headers,
    Request,
    Response,
    SipParseError,
    make_response,
    new_branch,
    new_call_id,
    new_tag,
    parse_message,
    parse_uri,
)
from switch.transaction import CancelReceived as TxCancel
from switch.transaction import (
    ClientKey,
    Peer,
    RequestReceived,
    ResponseReceived,
    ServerKey,
    StrayResponse,
    TransactionError,
    TransactionLayer,
    TransactionTimeout,
    Transmit,
    TransportFailed,
    build_cancel,
)

from .digest_client import authorization
from .engine import CallView, Engine, PhoneDriver, StepFailed
from .model import CallState, Phone, PhoneKind
from .own_transport import PhoneTransport

OnResponse = Callable[[Response | None], None]


# RFC 3261 section 25.1: user = 1*( unreserved / escaped / user-unreserved ); anything else
# in a dialed string ("#21", a space) goes escaped, and the switch unescapes it (19.1.4).
_USER_SAFE = "-_.!~*'()&=+$,;?/"


def escape_user(dialed: str) -> str:
    """A dialed string as the user part of a SIP URI: `#21` -> `%2321`."""
    return quote(dialed, safe=_USER_SAFE)


def offer_sdp(host: str, port: int, direction: str = "sendrecv") -> bytes:
    sess = secrets.randbelow(2**31)
    return (f"v=0\r\no=- {sess} {sess} IN IP4 {host}\r\ns=wte-scenario\r\n"
            f"c=IN IP4 {host}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 8 101\r\n"
            "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
            "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"
            f"a=ptime:20\r\na={direction}\r\n").encode()


@dataclass
class OwnCall(CallView):
    local: str = ""  # our From (outgoing) / To (incoming) header value, with our tag
    remote: str = ""  # the other side's, with its tag once known
    remote_target: str = ""
    peer: Peer | None = None
    cseq: int = 1
    invite: Request | None = None
    server_key: ServerKey | None = None
    local_tag: str = field(default_factory=new_tag)
    provisional: bool = False
    cancel_pending: bool = False
    auth_tried: bool = False
    ack: Request | None = None
    xfer_status: int | None = None  # final status of our REFER (its NOTIFY, or its failure)


class OwnPhone(PhoneDriver):
    engine = "own"

    def __init__(self, spec: Phone, target: tuple[str, int], tls_port: int) -> None:
        super().__init__(spec)
        self.target = target
        port = tls_port if spec.transport == "TLS" else target[1]
        self.server = Peer(spec.transport, target[0], port)
        self.layer = TransactionLayer()
        self.transport = PhoneTransport(spec.transport, self._on_bytes)
        self.waiters: dict[ClientKey, OnResponse] = {}
        self.by_call_id: dict[str, OwnCall] = {}
        self.reg_call_id = new_call_id("wte-scenario")
        self.reg_tag = new_tag()
        self.reg_cseq = 0
        self.registered = False
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.rtp_port = 0

    # -- plumbing --

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        bind = ("127.0.0.1", 0)
        if self.spec.kind is PhoneKind.CARRIER:
            host, _, port = self.spec.address.rpartition(":")
            bind = (host, int(port))
        await self.transport.open((self.server.host, self.server.port), bind)
        self.rtp_port = 20000 + (self.transport.local[1] % 20000) // 2 * 2

    async def stop(self) -> None:
        for call in self.calls:
            if isinstance(call, OwnCall) and call.state not in (CallState.DISCONNECTED,
                                                                 CallState.IDLE):
                with contextlib.suppress(Exception):
                    self._end(call)
        if self.registered:
            with contextlib.suppress(Exception):
                self.register(0)
            end = asyncio.get_running_loop().time() + 2
            while self.registered and asyncio.get_running_loop().time() < end:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        if self._timer is not None:
            self._timer.cancel()
        await self.transport.close()

    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    @property
    def host(self) -> str:
        return self.transport.local[0]

    def _via(self) -> str:
        h, p = self.transport.local
        return f"SIP/2.0/{self.spec.transport} {h}:{p};branch={new_branch()};rport"

    def _contact(self) -> str:
        h, p = self.transport.local
        param = "" if self.spec.transport == "UDP" else f";transport={self.spec.transport.lower()}"
        user = self.spec.account or "carrier"
        return f"<sip:{user}@{h}:{p}{param}>"

    def _aor(self) -> str:
        if self.spec.kind is PhoneKind.CARRIER:
            return f"sip:{self.spec.account or 'carrier'}@{self.spec.address};user=phone"
        return f"sip:{self.spec.account}@{self.target[0]}"

    def _on_bytes(self, data: bytes, peer: Peer) -> None:
        text = data.decode("utf-8", "replace")
        self.log.received(text, f"{peer.host}:{peer.port}")
        try:
            msg = parse_message(data)
        except SipParseError:
            return
        self.layer.receive(msg, peer, self._now())
        self._drain()

    def _drain(self) -> None:
        while (ev := self.layer.next_event()) is not None:
            if isinstance(ev, Transmit):
                self.log.sent(ev.data.decode("utf-8", "replace"), f"{ev.dest.host}:{ev.dest.port}")
                self.transport.send(ev.data, ev.dest)
            elif isinstance(ev, ResponseReceived):
                self._response(ev.key, ev.response)
            elif isinstance(ev, TransactionTimeout | TransportFailed):
                if isinstance(ev.key, ClientKey) and (w := self.waiters.pop(ev.key, None)):
                    w(None)
            elif isinstance(ev, StrayResponse):
                self._stray(ev.response)
            elif isinstance(ev, TxCancel):
                self._cancelled(ev.invite_key, ev.request)
            elif isinstance(ev, RequestReceived):
                self._request(ev)
        self._arm()

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.layer.get_timer()
        if deadline is not None and self._loop is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.layer.handle_timer(self._now())
        self._drain()

    def _send(self, request: Request, on_response: OnResponse, dest: Peer | None = None) -> None:
        key = self.layer.send_request(request, dest or self.server, self._now())
        self.waiters[key] = on_response
        self._drain()

    def _response(self, key: ClientKey, resp: Response) -> None:
        if resp.status > 100:
            self.received.note("response", resp.to_bytes().decode("utf-8", "replace"))
        waiter = self.waiters.get(key)
        if waiter is None:
            return
        if resp.status >= 200:
            del self.waiters[key]
        waiter(resp)

    def _request_headers(self, method: str, cseq: int, from_: str, to: str, call_id: str,
                         extra: tuple[tuple[str, str], ...] = ()) -> Headers:
        items = [("Via", self._via()), ("Max-Forwards", "70"), ("From", from_), ("To", to),
                 ("Call-ID", call_id), ("CSeq", f"{cseq} {method}")]
        if method not in ("ACK", "CANCEL", "BYE"):
            items.append(("Contact", self._contact()))
        items.append(("User-Agent", "wte-scenario/own"))
        items.extend(extra)
        return Headers(items)

    @staticmethod
    def _challenge(resp: Response) -> tuple[str, list[str]] | None:
        if resp.status == 401:
            return "Authorization", resp.headers.get_all("WWW-Authenticate")
        if resp.status == 407:
            return "Proxy-Authorization", resp.headers.get_all("Proxy-Authenticate")
        return None

    def _credentials(self, resp: Response, method: str, uri: str) -> tuple[str, str] | None:
        found = self._challenge(resp)
        if found is None or not self.spec.password:
            return None
        name, challenges = found
        value = authorization(challenges, method=method, uri=uri, username=self.spec.account,
                              password=self.spec.password, realm=self.spec.realm)
        return None if value is None else (name, value)

    # -- registration --

    def register(self, expires: int) -> None:
        self._register(expires, None)

    def _register(self, expires: int, auth: tuple[str, str] | None) -> None:
        self.reg_cseq += 1
        ruri = f"sip:{self.target[0]}:{self.server.port}"
        extra: list[tuple[str, str]] = [("Expires", str(expires))]
        if auth is not None:
            extra.append(auth)
        headers = self._request_headers(
            "REGISTER", self.reg_cseq, f"<{self._aor()}>;tag={self.reg_tag}", f"<{self._aor()}>",
            self.reg_call_id, tuple(extra))
        req = Request("REGISTER", parse_uri(ruri), headers)

        def done(resp: Response | None) -> None:
            if resp is None:
                self.reg_results.append(408)
                return
            if auth is None and (cred := self._credentials(resp, "REGISTER", ruri)):
                self._register(expires, cred)
                return
            if 200 <= resp.status < 300:
                self.registered = expires > 0
            self.reg_results.append(resp.status)

        self._send(req, done)

    # -- calls --

    def dial(self, target: str, from_user: str, headers: tuple[tuple[str, str], ...]) -> None:
        ruri = target if target.startswith(("sip:", "sips:", "tel:")) else (
            f"sip:{escape_user(target)}@{self.target[0]}:{self.server.port}")
        call = OwnCall(new_call_id("wte-scenario"), True)
        aor = self._aor()
        if from_user:
            aor = aor.replace(f"sip:{self.spec.account or 'carrier'}@", f"sip:{from_user}@", 1)
        call.local = f"<{aor}>;tag={call.local_tag}"
        call.remote = f"<{ruri}>"
        call.peer = self.server
        call.set(CallState.CALLING)
        self.calls.append(call)
        self.by_call_id[call.call_id] = call
        self._invite(call, ruri, headers, None)

    def _invite(self, call: OwnCall, ruri: str, extra: tuple[tuple[str, str], ...],
                auth: tuple[str, str] | None, direction: str = "sendrecv") -> None:
        more = [*extra, ("Content-Type", "application/sdp")]
        if auth is not None:
            more.append(auth)
        req = Request("INVITE", parse_uri(ruri), self._request_headers(
            "INVITE", call.cseq, call.local, call.remote, call.call_id, tuple(more)),
            offer_sdp(self.host, self.rtp_port, direction))
        reinvite = call.state in (CallState.CONFIRMED, CallState.HELD)
        if not reinvite:
            call.invite = req
        assert call.peer is not None

        def done(resp: Response | None) -> None:
            self._invite_response(call, req, resp, extra, auth, reinvite, direction)

        self._send(req, done, call.peer)

    def _invite_response(self, call: OwnCall, req: Request, resp: Response | None,
                         extra: tuple[tuple[str, str], ...], auth: tuple[str, str] | None,
                         reinvite: bool, direction: str) -> None:
        if resp is None:
            if not reinvite:
                self._final(call, 408)
            return
        call.last_status = resp.status
        if resp.status < 200:
            call.provisional = True
            if call.cancel_pending:
                call.cancel_pending = False
                self._send(build_cancel(req), lambda r: None, call.peer)
            if resp.status in (180, 183) and not reinvite:
                call.set(CallState.RINGING)
            return
        if resp.status >= 300:
            if auth is None and (cred := self._credentials(resp, "INVITE", str(req.uri))):
                call.cseq += 1
                self._invite(call, str(req.uri), extra, cred, direction)
                return
            if not reinvite:
                self._final(call, resp.status)
            return
        # 2xx: the dialog is established (RFC 3261 13.2.2.4), ACK it ourselves
        call.remote = resp.headers.get("To") or call.remote
        contacts = resp.contacts
        if isinstance(contacts, list) and contacts:
            call.remote_target = str(contacts[0].uri)
        elif not call.remote_target:
            call.remote_target = str(req.uri)
        ack = Request("ACK", parse_uri(call.remote_target), self._request_headers(
            "ACK", call.cseq, call.local, call.remote, call.call_id))
        call.ack = ack
        assert call.peer is not None
        self.layer.send_stateless(ack, call.peer)
        self._drain()
        if reinvite:
            call.set(CallState.HELD if direction == "sendonly" else CallState.CONFIRMED)
            return
        if call.final_status is None:
            call.final_status = resp.status
        call.set(CallState.CONFIRMED)
        if call.cancel_pending:  # hung up before any provisional came: end it now
            call.cancel_pending = False
            self._bye(call)

    def _stray(self, resp: Response) -> None:
        call = self.by_call_id.get(resp.call_id)
        if call is not None and call.ack is not None and 200 <= resp.status < 300 \
                and resp.cseq.method == "INVITE" and call.peer is not None:
            self.layer.send_stateless(call.ack, call.peer)  # a 2xx retransmission
            self._drain()

    def _final(self, call: OwnCall, status: int) -> None:
        call.final_status = status
        call.last_status = status
        call.set(CallState.DISCONNECTED)

    def _bye(self, call: OwnCall) -> None:
        call.cseq += 1
        req = Request("BYE", parse_uri(call.remote_target), self._request_headers(
            "BYE", call.cseq, call.local, call.remote, call.call_id))

        def done(resp: Response | None) -> None:
            call.set(CallState.DISCONNECTED)

        self._send(req, done, call.peer)

    def _end(self, call: OwnCall) -> None:
        st = call.state
        if st in (CallState.CONFIRMED, CallState.HELD):
            self._bye(call)
        elif call.outgoing and st in (CallState.CALLING, CallState.RINGING):
            if call.provisional and call.invite is not None:
                self._send(build_cancel(call.invite), lambda r: None, call.peer)
            else:
                call.cancel_pending = True
        elif not call.outgoing and st in (CallState.INCOMING, CallState.RINGING):
            self._answer(call, 603)

    def hangup(self) -> None:
        call = self._call()
        self._end(call)

    def _call(self, *states: CallState) -> OwnCall:
        call = self.current
        if not isinstance(call, OwnCall):
            raise StepFailed("the phone has no call")
        if states and call.state not in states:
            raise StepFailed(f"the call is {call.state.value}, not "
                             f"{' or '.join(s.value for s in states)}")
        return call

    def answer(self) -> None:
        self._answer(self._call(CallState.INCOMING, CallState.RINGING), 200)

    def reject(self, status: int) -> None:
        self._answer(self._call(CallState.INCOMING, CallState.RINGING), status)

    def hold(self, on: bool) -> None:
        call = self._call(CallState.CONFIRMED, CallState.HELD)
        call.cseq += 1
        self._invite(call, call.remote_target, (), None, "sendonly" if on else "sendrecv")

    def transfer(self, target: str, method: str) -> None:
        if method != "blind":
            raise self.unsupported("attended transfer")
        call = self._call(CallState.CONFIRMED, CallState.HELD)
        uri = target if target.startswith(("sip:", "sips:", "tel:")) else (
            f"sip:{escape_user(target)}@{self.target[0]}:{self.server.port}")
        call.xfer_status = None
        self._refer(call, uri, None)

    def _refer(self, call: OwnCall, uri: str, auth: tuple[str, str] | None) -> None:
        """REFER in the dialog (RFC 3515 2.4.1); a 2xx only says it was accepted."""
        call.cseq += 1
        extra = [("Refer-To", f"<{uri}>"), ("Referred-By", f"<{self._aor()}>")]
        if auth is not None:
            extra.append(auth)
        req = Request("REFER", parse_uri(call.remote_target), self._request_headers(
            "REFER", call.cseq, call.local, call.remote, call.call_id, tuple(extra)))

        def done(resp: Response | None) -> None:
            if resp is None:
                call.xfer_status = 408
            elif resp.status >= 300:
                if auth is None and (cred := self._credentials(resp, "REFER", str(req.uri))):
                    self._refer(call, uri, cred)
                else:
                    call.xfer_status = resp.status

        self._send(req, done, call.peer)

    def transfer_status(self) -> int | None:
        call = self.current
        return call.xfer_status if isinstance(call, OwnCall) else None

    def subscribe(self, target: str, event: str) -> None:
        self._subscribe(target, event, None, new_call_id("wte-sub"), new_tag())

    def _subscribe(self, target: str, event: str, auth: tuple[str, str] | None,
                   call_id: str, tag: str) -> None:
        """SUBSCRIBE (RFC 6665), answering one digest challenge; NOTIFYs land in
        `notifies` (answered in `_request`)."""
        self.reg_cseq += 1  # one CSeq space is enough: each SUBSCRIBE has its own Call-ID
        ruri = f"sip:{escape_user(target)}@{self.target[0]}:{self.server.port}"
        extra = [("Event", event), ("Expires", "600")] + ([auth] if auth else [])
        headers = self._request_headers(
            "SUBSCRIBE", self.reg_cseq, f"<{self._aor()}>;tag={tag}",
            f"<sip:{escape_user(target)}@{self.target[0]}>", call_id, tuple(extra))

        def done(resp: Response | None) -> None:
            if resp is None:
                self.sub_results.append(408)
            elif auth is None and (cred := self._credentials(resp, "SUBSCRIBE", ruri)):
                self._subscribe(target, event, cred, call_id, tag)
            else:
                self.sub_results.append(resp.status)

        self._send(Request("SUBSCRIBE", parse_uri(ruri), headers), done)

    def _notify(self, call: OwnCall | None, req: Request) -> None:
        """A NOTIFY of a subscription is kept for `expect_notify`; a NOTIFY of our REFER
        carries the status line of the new call (RFC 3515 2.4.5), and a final one (>= 200)
        ends the step that waits for it."""
        event = (req.headers.get("Event") or "").split(";")[0].strip()
        if event != "refer":
            self.notifies.append((event, req.body.decode("utf-8", "replace")))
            return
        if call is None:
            return
        parts = req.body.split(maxsplit=2)
        if len(parts) >= 2 and parts[0].startswith(b"SIP/") and parts[1].isdigit():
            status = int(parts[1])
            if status >= 200:
                call.xfer_status = status

    def _answer(self, call: OwnCall, status: int) -> None:
        assert call.invite is not None and call.server_key is not None
        headers: list[tuple[str, str]] = []
        body = b""
        if status < 300:
            headers = [("Contact", self._contact()), ("Content-Type", "application/sdp")]
            body = offer_sdp(self.host, self.rtp_port)
        resp = make_response(call.invite, status, to_tag=call.local_tag, headers=headers,
                             body=body)
        with contextlib.suppress(TransactionError):
            self.layer.respond(call.server_key, resp, self._now())
        self._drain()
        if status < 200:
            call.set(CallState.RINGING)
        elif status < 300:
            call.final_status = status
            call.set(CallState.CONFIRMED)
        else:
            self._final(call, status)

    # -- incoming requests --

    def _request(self, ev: RequestReceived) -> None:
        req = ev.request
        call = self.by_call_id.get(req.call_id)
        if req.method == "ACK" or ev.key is None:
            return
        if req.method == "INVITE":
            self.received.note("invite", req.to_bytes().decode("utf-8", "replace"))
            if req.to.tag is None:
                self._incoming(ev.key, req, ev.peer)
                return
            if call is not None:
                resp = make_response(req, 200, headers=[
                    ("Contact", self._contact()), ("Content-Type", "application/sdp")],
                    body=offer_sdp(self.host, self.rtp_port))
                self.layer.respond(ev.key, resp, self._now())
                self._drain()
                return
        status = 200
        if req.method == "BYE":
            if call is None:
                status = 481
            else:
                call.set(CallState.DISCONNECTED)
        elif req.method == "CANCEL":
            status = 200 if call is not None else 481
        elif req.method == "NOTIFY":
            self._notify(call, req)
        elif req.method not in ("OPTIONS", "NOTIFY", "INFO", "UPDATE"):
            status = 501
        self.layer.respond(ev.key, make_response(req, status, to_tag=new_tag()), self._now())
        self._drain()

    def _incoming(self, key: ServerKey, req: Request, peer: Peer) -> None:
        call = OwnCall(req.call_id, False)
        call.invite = req
        call.server_key = key
        call.peer = peer
        call.remote = req.headers.get("From") or ""
        call.local = f"{req.headers.get('To') or ''};tag={call.local_tag}"
        contacts = req.contacts
        call.remote_target = str(contacts[0].uri) if isinstance(contacts, list) and contacts \
            else str(req.from_.uri)
        call.set(CallState.INCOMING)
        self.calls.append(call)
        self.by_call_id[call.call_id] = call
        self._answer(call, 180)  # phones ring at once

    def _cancelled(self, invite_key: ServerKey, request: Request) -> None:
        call = self.by_call_id.get(request.call_id)
        if call is None or call.state not in (CallState.INCOMING, CallState.RINGING):
            return
        self._answer(call, 487)


class OwnEngine(Engine):
    name = "own"

    def __init__(self, tls_port: int | None = None) -> None:
        self.tls_port = tls_port

    def phone(self, spec: Phone, target: tuple[str, int]) -> PhoneDriver:
        return OwnPhone(spec, target, self.tls_port or target[1] + 1)
