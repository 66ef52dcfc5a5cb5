"""The driver: transport -> parse -> transaction layer -> request handlers -> transport.

The runtime is the one place where the sans-IO layers meet the event loop. It owns the
transaction layer's single timer (`loop.call_at` on `get_timer()`), lets the transaction layer stamp the received
address into the top Via (RFC 3261 18.2.1, RFC 3581), answers bad input with its 4xx, and
makes sure that no exception in one message's handling ever stops the process.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from switch.sip import (
    Headers,
    Request,
    Response,
    SipError,
    SipParseError,
    make_response,
    new_tag,
    parse_message,
)
from switch.sip.headers import canonical_name
from switch.transaction import (
    CancelReceived,
    ClientKey,
    Peer,
    RequestReceived,
    ResponseReceived,
    ServerKey,
    StrayResponse,
    TransactionLayer,
    TransactionTerminated,
    TransactionTimeout,
    Transmit,
    TransportFailed,
    reply_peer,
)
from switch.transport.stream import StreamTransports
from switch.transport.udp import UdpListener

log = logging.getLogger(__name__)

# Methods of RFC 3261 and its extensions; a method outside this set answers 501, one inside
# it that no handler serves answers 405 with Allow (RFC 3261 8.2.1).
KNOWN_METHODS = frozenset(
    ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "SUBSCRIBE", "NOTIFY",
     "PUBLISH", "INFO", "REFER", "MESSAGE", "UPDATE")
)


TIMER_TICK = 0.05  # seconds: the granularity of the transaction layer's wake-ups

# answered 503 under overload when they start new work: what costs more than the 503 (a
# database write, a dialog, a call). OPTIONS costs what its 503 would: it is answered.
_SHED = frozenset(("INVITE", "REGISTER", "SUBSCRIBE", "PUBLISH", "MESSAGE", "REFER"))


@dataclass
class Counters:
    """Message counters for the metrics endpoint."""

    messages_in: int = 0
    messages_out: int = 0
    dropped: int = 0
    handler_errors: int = 0
    shed: int = 0  # new requests answered 503 under overload (issue 21)
    # the UDP listener's own figures (dropped_late, max_queue_delay), when it runs
    transport_stats: Callable[[], dict[str, object]] | None = None
    requests: Counter[str] = field(default_factory=Counter)
    responses_sent: Counter[int] = field(default_factory=Counter)

    def snapshot(self) -> dict[str, object]:
        return {
            "messages_in": self.messages_in, "messages_out": self.messages_out,
            "dropped": self.dropped, "handler_errors": self.handler_errors,
            "requests": dict(self.requests), "responses_sent": dict(self.responses_sent),
            "overload": {"shed_503": self.shed,
                         **(self.transport_stats() if self.transport_stats else {})},
        }


@dataclass(frozen=True, slots=True)
class ServerRequest:
    """A request handed to a handler, with what it needs to answer."""

    key: object
    request: Request
    peer: Peer


Handler = Callable[["SipRuntime", ServerRequest], Awaitable[None] | None]


def _raw_headers_for_error(data: bytes) -> list[tuple[str, str]] | None:
    """Pull Via, From, To, Call-ID and CSeq out of a message that failed to parse.

    RFC 3261 8.2 wants a 4xx for a bad request when a response can be built at all; the
    five headers of 8.2.6.2 are all that is needed. Returns None when they are not there.
    """
    try:
        head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    except Exception:
        return None
    lines = head.split("\r\n")
    if not lines or lines[0].startswith("SIP/") or lines[0].startswith("ACK "):
        return None
    wanted = {"Via", "From", "To", "Call-ID", "CSeq"}
    out: list[tuple[str, str]] = []
    for line in lines[1:100]:
        name, sep, value = line.partition(":")
        if not sep:
            continue
        cname = canonical_name(name.strip())
        if cname in wanted:
            out.append((cname, value.strip()))
    if {n for n, _ in out} != wanted:
        return None
    return out


class SipRuntime:
    """Owns the transaction layer and the transports; dispatches requests to handlers."""

    def __init__(self, *, t1: float = 0.5, t2: float = 4.0, t4: float = 5.0,
                 max_message_size: int = 65535, user_agent: str = "wte") -> None:
        self.txn = TransactionLayer(t1=t1, t2=t2, t4=t4)
        self.counters = Counters()
        self.max_message_size = max_message_size
        self.user_agent = user_agent
        self.handlers: dict[str, Handler] = {}
        self.response_listeners: dict[object, Callable[[Response], None]] = {}
        self.cancel_listeners: dict[object, Callable[[], None]] = {}
        self.stray_listener: Callable[[Response], None] | None = None
        self.supported_extensions: frozenset[str] = frozenset({"path"})
        # Answered before any transaction exists, when the answer needs no state (a digest
        # challenge): return True when the request was answered.
        self.stateless_handlers: dict[str, Callable[[SipRuntime, Request, Peer], bool]] = {}
        self.udp: UdpListener | None = None
        self.streams: StreamTransports | None = None
        self.draining = False
        self.retry_after = 5  # seconds, in the 503 of a request shed under overload
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._tasks: set[asyncio.Future[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._allow: str | None = None
        self._allow_for = 0

    # -- wiring --

    def register_handler(self, method: str, handler: Handler) -> None:
        """A handler with a `stateless(runtime, request, peer) -> bool` method (OPTIONS:
        switch/core_handlers.py) also gets the early hook: it may answer before any
        transaction exists and return True, or return False for the full path."""
        self.handlers[method] = handler
        self._allow = None
        # looked up on the class: a test double that answers every attribute is not taken
        # for a stateless answerer
        if callable(getattr(type(handler), "stateless", None)):
            self.stateless_handlers[method] = handler.stateless  # type: ignore[attr-defined]

    @property
    def allow(self) -> str:
        # CANCEL is answered by the transaction layer itself (RFC 3261 9.2); cached: the
        # stateless OPTIONS answer reads it per request
        allow = self._allow
        if allow is None or self._allow_for != len(self.handlers):
            allow = self._allow = ", ".join(sorted({*self.handlers, "CANCEL"}))
            self._allow_for = len(self.handlers)
        return allow

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def now(self) -> float:
        return self.loop.time()

    # -- inbound --

    def deliver(self, data: bytes, peer: Peer) -> None:
        """Entry point for every message any transport received."""
        self._receive(data, peer, False)

    def overloaded(self, data: bytes, peer: Peer) -> None:
        """A datagram that waited in the receive queue past the overload threshold while the
        switch is saturated (switch/transport/udp.py): a new INVITE, REGISTER, SUBSCRIBE...
        is answered 503 with Retry-After (RFC 3261 21.5.4) without a transaction, so the
        switch spends on the work in progress (retransmissions, ACKs, CANCELs, in-dialog
        requests, responses) instead of on requests whose clients are about to give up."""
        self._receive(data, peer, True)

    def _receive(self, data: bytes, peer: Peer, shed: bool) -> None:
        self.counters.messages_in += 1
        try:
            msg = parse_message(data, max_size=self.max_message_size)
            if isinstance(msg, Request):
                if shed and msg.method in _SHED and msg.to.tag is None \
                        and not self.txn.matches(msg):
                    self.counters.shed += 1
                    self.respond_stateless(msg, peer, make_response(
                        msg, 503, to_tag=new_tag(),
                        headers=[("Retry-After", str(self.retry_after))]))
                    return
                # the transaction layer stamps received/rport (RFC 3581) into the top Via
                self.counters.requests[msg.method] += 1
                early = self.stateless_handlers.get(msg.method)
                if early is not None and not self.draining and early(self, msg, peer):
                    return
            now = self.now()
            self.txn.receive(msg, peer, now)
        except SipParseError as exc:
            self.counters.dropped += 1
            self._answer_unparseable(data, peer, exc)
            return
        except Exception:
            self.counters.handler_errors += 1
            log.exception("unexpected error receiving a message from %s:%d", peer.host, peer.port)
            return
        self._drain(now)

    def _answer_unparseable(self, data: bytes, peer: Peer, exc: SipParseError) -> None:
        items = _raw_headers_for_error(data)
        log.info("bad message from %s %s:%d: %s", peer.transport, peer.host, peer.port, exc.reason)
        if items is None:
            return
        items.append(("Warning", f'399 wte "{exc.reason[:100]}"'))
        response = Response(exc.status, _reason(exc.status), Headers(items))
        self._send(response.to_bytes(), _response_peer(items, peer))
        self.counters.responses_sent[exc.status] += 1

    def _drain(self, now: float) -> None:
        txn = self.txn
        while (ev := txn.next_event()) is not None:
            try:
                if isinstance(ev, Transmit):
                    self._send(ev.data, ev.dest, ev.key)
                elif isinstance(ev, RequestReceived):
                    self._dispatch(ev)
                elif isinstance(ev, ResponseReceived):
                    listener = self.response_listeners.get(ev.key)
                    if listener is not None:
                        listener(ev.response)
                elif isinstance(ev, CancelReceived):
                    self._on_cancel(ev)
                elif isinstance(ev, TransactionTimeout | TransportFailed):
                    # the transaction user sees a timeout as a 408 (RFC 3261 17.1.1.2)
                    if isinstance(ev.key, ClientKey):
                        cb = self.response_listeners.get(ev.key)
                        if cb is not None:
                            cb(Response(408, "Request Timeout", Headers()))
                elif isinstance(ev, TransactionTerminated):
                    if isinstance(ev.key, ClientKey):
                        self.response_listeners.pop(ev.key, None)
                elif isinstance(ev, StrayResponse) and self.stray_listener is not None:
                    self.stray_listener(ev.response)
            except Exception:
                self.counters.handler_errors += 1
                log.exception("error handling transaction event %s", type(ev).__name__)
        self._arm_timer()

    def _dispatch(self, ev: RequestReceived) -> None:
        req = ev.request
        if ev.key is None:
            # ACK for a 2xx (no transaction, RFC 3261 17.1.1.3): the dialog layer's business
            handler = self.handlers.get("ACK")
            if handler is not None:
                self._run(handler, ServerRequest(None, req, ev.peer))
            return
        if self.draining and req.method != "CANCEL":
            self.respond(ev.key, make_response(req, 503, to_tag=new_tag(),
                                               headers=[("Retry-After", "5")]))
            return
        if req.method == "CANCEL":
            self._answer_cancel(ServerRequest(ev.key, req, ev.peer))
            return
        unsupported = self._unsupported_requirements(req)
        if unsupported:
            # RFC 3261 8.2.2.3: an extension the request requires and we lack answers 420
            self.respond(ev.key, make_response(req, 420, to_tag=new_tag(),
                                               headers=[("Unsupported", ", ".join(unsupported))]))
            return
        handler = self.handlers.get(req.method)
        if handler is None:
            if req.method in KNOWN_METHODS:
                self.respond(ev.key, make_response(req, 405, to_tag=new_tag(),
                                                   headers=[("Allow", self.allow)]))
            else:
                self.respond(ev.key, make_response(req, 501, to_tag=new_tag(),
                                                   headers=[("Allow", self.allow)]))
            return
        self._run(handler, ServerRequest(ev.key, req, ev.peer))

    def _unsupported_requirements(self, req: Request) -> list[str]:
        if req.method in ("ACK", "CANCEL") or "Require" not in req.headers:
            return []
        tags = [t.strip().lower() for t in req.headers.get_all("Require") if t.strip()]
        return [t for t in tags if t not in self.supported_extensions]

    def _run(self, handler: Handler, sreq: ServerRequest) -> None:
        try:
            result = handler(self, sreq)
        except SipError as exc:
            self._answer_error(sreq, exc)
            return
        except Exception:
            self._answer_crash(sreq)
            return
        if result is None:
            return
        if isinstance(result, asyncio.Future):
            # A handler that finishes in a done-callback (REGISTER waiting for its group
            # commit) hands back a future: watch it directly instead of wrapping it in a Task.
            self._tasks.add(result)
            result.add_done_callback(lambda fut: self._settled(fut, sreq))
            return
        task = asyncio.ensure_future(self._guard(result, sreq))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _settled(self, fut: asyncio.Future[None], sreq: ServerRequest) -> None:
        """`_guard` for a handler's future: its error answers like a raising coroutine's."""
        self._tasks.discard(fut)
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is None:
            return
        if isinstance(exc, SipError):
            self._answer_error(sreq, exc)
            return
        self.counters.handler_errors += 1
        log.error("handler failed for %s (Call-ID %s)", sreq.request.method,
                  sreq.request.headers.get("Call-ID"), exc_info=exc)
        if sreq.key is not None and sreq.request.method != "ACK":
            try:
                self.respond(sreq.key, make_response(sreq.request, 500, to_tag=new_tag()))
            except Exception:
                log.exception("could not answer 500")

    async def _guard(self, aw: Awaitable[None], sreq: ServerRequest) -> None:
        try:
            await aw
        except SipError as exc:
            self._answer_error(sreq, exc)
        except asyncio.CancelledError:
            raise
        except Exception:
            self._answer_crash(sreq)

    def _answer_error(self, sreq: ServerRequest, exc: SipError) -> None:
        if sreq.key is None or sreq.request.method == "ACK":
            return
        self.respond(sreq.key, make_response(sreq.request, exc.status, exc.reason,
                                             to_tag=new_tag(), headers=list(exc.headers)))

    def _answer_crash(self, sreq: ServerRequest) -> None:
        self.counters.handler_errors += 1
        log.exception("handler failed for %s (Call-ID %s)", sreq.request.method,
                      sreq.request.headers.get("Call-ID"))
        if sreq.key is not None and sreq.request.method != "ACK":
            try:
                self.respond(sreq.key, make_response(sreq.request, 500, to_tag=new_tag()))
            except Exception:
                log.exception("could not answer 500")

    def _on_cancel(self, ev: CancelReceived) -> None:
        """A CANCEL that matches an INVITE in progress (RFC 3261 9.2): tell the INVITE's owner."""
        listener = self.cancel_listeners.pop(ev.invite_key, None)
        if listener is not None:
            listener()
        elif self.txn.server_request(ev.invite_key) is not None:
            # nobody owns the INVITE any more but it has no final answer: end it with 487
            req = self.txn.server_request(ev.invite_key)
            assert req is not None
            self.respond(ev.invite_key, make_response(req, 487, to_tag=new_tag()))

    def _answer_cancel(self, sreq: ServerRequest) -> None:
        """The CANCEL's own answer (RFC 3261 9.2): 200 when it matched, 481 when it did not."""
        assert isinstance(sreq.key, ServerKey)
        matched = self.txn.cancel_target(sreq.key) is not None
        self.respond(sreq.key, make_response(sreq.request, 200 if matched else 481,
                                             to_tag=new_tag()))

    # -- outbound --

    def respond(self, key: object, response: Response) -> None:
        now = self.now()
        self.counters.responses_sent[response.status] += 1
        self.txn.respond(key, response, now)  # type: ignore[arg-type]
        self._drain(now)

    def send_request(self, request: Request, dest: Peer,
                     on_response: Callable[[Response], None] | None = None) -> object:
        now = self.now()
        key = self.txn.send_request(request, dest, now)
        if on_response is not None:
            self.response_listeners[key] = on_response
        self._drain(now)
        return key

    def respond_stateless(self, request: Request, peer: Peer, response: Response) -> None:
        """Answer without a server transaction (RFC 3261 8.2.7): the response goes where the
        transaction layer would send it (18.2.2, RFC 3581), with received/rport stamped."""
        self.counters.responses_sent[response.status] += 1
        self._send(response.to_bytes(), reply_peer(request.top_via, peer))

    def send_response_bytes(self, data: bytes, dest: Peer, status: int) -> None:
        """Send a response built as bytes outside any transaction (the stateless OPTIONS
        answer, RFC 3261 8.2.7), counted like any other response."""
        self.counters.responses_sent[status] += 1
        self._send(data, dest)

    def send_raw(self, data: bytes, dest: Peer) -> None:
        """Send outside any transaction (ACK for 2xx, 2xx retransmissions)."""
        self._send(data, dest)

    def _send(self, data: bytes, dest: Peer, key: object = None) -> None:
        self.counters.messages_out += 1
        if dest.transport == "UDP":
            if self.udp is not None:
                self.udp.send(data, dest.host, dest.port)
            return
        streams = self.streams
        if streams is None:
            return
        if not streams.send(data, dest):
            task = asyncio.ensure_future(self._connect_and_send(data, dest, key))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _connect_and_send(self, data: bytes, dest: Peer, key: object) -> None:
        """Open a connection for a stream destination; when that fails, tell the
        transaction at once (RFC 3261 17.1.4) instead of letting Timer B or F run out."""
        assert self.streams is not None
        if await self.streams.connect_and_send(data, dest) or key is None:
            return
        now = self.now()
        try:
            self.txn.transport_error(key, now)  # type: ignore[arg-type]
        except Exception:
            log.debug("transport error for a finished transaction", exc_info=True)
        self._drain(now)

    # -- timers --

    def _arm_timer(self) -> None:
        deadline = self.txn.get_timer()
        if deadline is None:
            return
        # deadlines are rounded up to a tick so that the timers of many transactions (Timer
        # J of every OPTIONS, K, I...) share one wake-up at low load instead of one each
        # (issue 21); RFC 3261 timers tolerate a few tens of milliseconds of lateness
        deadline = math.ceil(deadline / TIMER_TICK) * TIMER_TICK
        if self._timer is not None and self._timer_at is not None and self._timer_at <= deadline:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = self.loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        now = self.now()
        try:
            self.txn.handle_timer(now)
        except Exception:
            log.exception("transaction timer failed")
        self._drain(now)

    async def drain(self, seconds: float) -> None:
        """Stop taking new requests and let transactions in flight finish (graceful stop)."""
        self.draining = True
        end = self.now() + seconds
        while self.now() < end and (self._tasks or self._live_server_work()):
            await asyncio.sleep(0.05)

    def _live_server_work(self) -> bool:
        return bool(self._tasks)


def _reason(status: int) -> str:
    from switch.sip import reason_for

    return reason_for(status)


def _response_peer(items: list[tuple[str, str]], peer: Peer) -> Peer:
    """Where to send a response to an unparsed request: the source (RFC 3581 behaviour)."""
    return peer
