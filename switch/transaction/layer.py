"""The transaction layer (RFC 3261 section 17): matching, the four machines, one timer heap.

Sans-IO: `receive`, `respond`, `send_request`, `transport_error` and `handle_timer` take
`now` (float seconds, any monotonic origin) and queue events; the caller pulls them with
`next_event()` and asks `get_timer()` when to call `handle_timer()` again.

Division of work with the runtime and the TU:

- **received/rport are stamped here** (RFC 3261 18.2.1, RFC 3581 section 4): a new request
  whose top Via host differs from the source address, or that asks for `rport`, is rewritten
  before it is handed to the TU, so a response built with `make_response` carries them. If
  the runtime already stamped the same values, nothing is rewritten.
- **Responses are routed here** (18.2.2, RFC 3581 section 4): over a reliable transport to
  the connection the request came on (`conn_id`); over UDP to the source ip:port when the
  Via has `rport`, else to `maddr`, else to `received` (or the sent-by host) and the sent-by
  port (default 5060).
- **CANCEL is answered by the TU** (RFC 3261 9.2): a CANCEL creates its own non-INVITE server
  transaction. When it matches an INVITE server transaction the layer first emits
  `CancelReceived(invite_key, cancel_key, request)`, then `RequestReceived(cancel_key, ...)`;
  otherwise only `RequestReceived`. The TU answers 200 (or 481 when `cancel_target(key)` is
  None) on the CANCEL key, and 487 on the INVITE key if that has no final response yet.
- The layer sends **100 Trying** for a new INVITE (17.2.1) once the TU has had the request
  (when `next_event()` has nothing else), unless the TU answered meanwhile: an INVITE
  challenged at once (407) gets the 407 alone, one datagram fewer for each call attempt
  and for each scanner's probe. It builds the **ACK for 300-699** responses itself
  (17.1.1.3). The ACK for a 2xx is the TU's (13.2.2.4): send
  it with `send_stateless`.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections import Counter, deque
from enum import Enum
from typing import cast

from switch.sip import Request, Response, SipError, Via, make_response
from switch.sip.grammar import get_param, split_commas

from .base import TIMER_INPUT_BY_NAME, Input, Transaction, response_input, tu_input
from .client import ClientTransaction, InviteClientTransaction, NonInviteClientTransaction
from .events import (
    CancelReceived,
    ClientKey,
    DuplicateTransaction,
    Peer,
    RequestReceived,
    ServerKey,
    StrayResponse,
    TransactionError,
    TransactionTerminated,
    Transmit,
    TxnEvent,
    TxnKey,
    UnknownTransaction,
)
from .server import (
    InviteServerState,
    InviteServerTransaction,
    NonInviteServerTransaction,
    ServerTransaction,
)
from .timers import TIMER_NAME, Timer, TimerConfig

logger = logging.getLogger("switch.transaction")
_IS_PROCEEDING = InviteServerState.PROCEEDING

MAGIC_COOKIE = "z9hG4bK"
_DEFAULT_PORT = {"TLS": 5061, "WSS": 443, "WS": 80}
_CACHED_VIEWS = ("call_id", "cseq", "from_", "to", "max_forwards", "expires", "contacts")
_new_tuple = tuple.__new__
# module-level names: an Enum member read off its class costs ~0.3 us (timers.py)
_ACK, _REQUEST, _TU_1XX, _TRANSPORT_ERROR = (Input.ACK, Input.REQUEST, Input.TU_1XX,
                                             Input.TRANSPORT_ERROR)


def server_key(request: Request, via: Via) -> ServerKey:
    """The key a request matches server transactions with (RFC 3261 17.2.3).

    ACK matches the INVITE's transaction; CANCEL is a transaction of its own. Without the
    z9hG4bK cookie the RFC 2543 identity is used: Request-URI, From tag, Call-ID, CSeq number,
    top Via and To tag (the ACK's To tag is the response's; the layer adds that alias when it
    sends a final response).
    """
    method = request.method
    if method == "ACK":
        method = "INVITE"
    branch = get_param(via.params, "branch")  # Via.branch without the property call
    if branch is not None and branch.startswith(MAGIC_COOKIE):
        port = via.port or _DEFAULT_PORT.get(via.transport, 5060)
        # tuple.__new__ is what ServerKey(...) runs, without its Python-level __new__
        return _new_tuple(ServerKey, (branch, f"{via.host.lower()}:{port}", method))
    return ServerKey("", _rfc2543_ident(request, via) + (request.to.tag or ""), method)


def _rfc2543_ident(request: Request, via: Via) -> str:
    # Every part but the To tag, which comes last so that an alias can swap it.
    return "|".join((str(request.uri), request.from_.tag or "", request.call_id,
                     str(request.cseq.seq), str(via), ""))


def reply_peer(via: Via, source: Peer) -> Peer:
    """Where responses to a request go (RFC 3261 18.2.2, RFC 3581 section 4)."""
    if source.reliable:
        return source  # the same connection; the runtime may reconnect to received:port
    if via.wants_rport:
        return source
    maddr = get_param(via.params, "maddr")
    port = via.port or 5060
    if maddr:
        return Peer(source.transport, maddr, port)
    return Peer(source.transport, via.received or via.host, port)


def stamp_received(request: Request, via: Via, source: Peer) -> Request:
    """Add `received` (18.2.1) and fill `rport` (RFC 3581) in the top Via, when needed."""
    if via.wants_rport:
        if via.received == source.host and via.rport == source.port:
            return request
    elif via.host == source.host or via.received == source.host:
        return request
    headers = request.headers
    positions = headers._index.get("via")  # headers.position("Via") without the name lookup
    if not positions:
        return request
    new_via = via.with_received(source.host, source.port)
    position = positions[0]
    value = headers._items[position][1]
    rest = split_commas(value)[1:] if "," in value else []
    stamped = request.replace(
        headers=headers.with_value_at(position, ", ".join([str(new_via), *rest])))
    # Only the Via changed: carry the parsed views over instead of parsing again.
    old, new = request.__dict__, stamped.__dict__
    new["vias"] = [new_via, *request.vias[1:]]
    for name in _CACHED_VIEWS:
        if name in old:
            new[name] = old[name]
    return stamped


class TransactionLayer:
    """All client and server transactions of one SIP element."""

    def __init__(self, *, t1: float = 0.5, t2: float = 4.0, t4: float = 5.0) -> None:
        self.config = TimerConfig(t1, t2, t4)
        self._clients: dict[ClientKey, ClientTransaction] = {}
        self._servers: dict[ServerKey, ServerTransaction] = {}
        self._aliases: dict[ServerKey, ServerTransaction] = {}  # RFC 2543 ACK keys
        self._events: deque[TxnEvent] = deque()
        # new INVITE transactions whose 100 Trying waits for the TU (see next_event)
        self._trying: list[tuple[InviteServerTransaction, float]] = []
        # (deadline, sequence, transaction, timer letter); see Transaction.timers
        self._heap: list[tuple[float, int, Transaction, str]] = []
        self._seq = itertools.count()
        self._compact_at = 1024
        self.stats: Counter[str] = Counter()

    # -- input from the network --

    def receive(self, msg: Request | Response, peer: Peer, now: float) -> None:
        """A message from `peer`. Malformed mandatory headers drop it (counted, logged)."""
        try:
            if isinstance(msg, Request):
                self._receive_request(msg, peer, now)
            else:
                self._receive_response(msg, peer, now)
        except SipError as exc:  # a lazily parsed header was malformed: the peer's fault
            self.stats["dropped"] += 1
            logger.info("dropped %r from %s: %s", msg, peer, exc)

    def _receive_request(self, request: Request, peer: Peer, now: float) -> None:
        via = request.top_via
        key = server_key(request, via)
        txn = self._servers.get(key)
        if txn is None and not key.branch:
            txn = self._aliases.get(key)
        method = request.method
        if txn is not None:
            self.stats["matched"] += 1
            txn.fire(_ACK if method == "ACK" else _REQUEST, now, request)
            return
        if method == "ACK":
            # 17.2.3: no match; the ACK for a 2xx goes to the TU, which does not answer it
            self._events.append(RequestReceived(None, request, peer))
            return
        request = stamp_received(request, via, peer)
        reply_to = reply_peer(request.top_via, peer)
        if method == "INVITE":
            inv = InviteServerTransaction(self, key, request, peer, reply_to)
            self._servers[key] = inv
            self._events.append(RequestReceived(key, request, peer))
            self._trying.append((inv, now))  # 17.2.1: sent once the TU has had its turn
            return
        self._servers[key] = NonInviteServerTransaction(self, key, request, peer, reply_to)
        if method == "CANCEL":
            target = self._servers.get(key._replace(method="INVITE"))
            if target is not None:
                self._events.append(CancelReceived(cast(ServerKey, target.key), key, request))
        self._events.append(RequestReceived(key, request, peer))

    def _receive_response(self, response: Response, peer: Peer, now: float) -> None:
        branch = response.top_via.branch
        txn = None
        if branch is not None:
            txn = self._clients.get(ClientKey(branch, response.cseq.method))  # 17.1.3
        if txn is None:
            self.stats["stray"] += 1
            self._events.append(StrayResponse(response, peer))
            return
        txn.fire(response_input(response.status), now, response)

    # -- input from the TU --

    def send_request(self, request: Request, dest: Peer, now: float) -> ClientKey:
        """Start a client transaction (17.1). The top Via must carry an RFC 3261 branch
        (8.1.1.7); a CANCEL reuses its INVITE's branch (9.1, see `build_cancel`)."""
        method = request.method
        if method == "ACK":
            raise TransactionError("an ACK is not sent in a client transaction; use send_stateless")
        branch = request.top_via.branch
        if branch is None or not branch.startswith(MAGIC_COOKIE):
            raise TransactionError(f"top Via branch {branch!r} lacks the z9hG4bK cookie (8.1.1.7)")
        key = ClientKey(branch, method)
        if key in self._clients:
            raise DuplicateTransaction(f"client transaction {key} exists")
        txn: ClientTransaction
        if method == "INVITE":
            txn = InviteClientTransaction(self, key, request, dest)
        else:
            txn = NonInviteClientTransaction(self, key, request, dest)
        self._clients[key] = txn
        txn.begin(now)
        return key

    def respond(self, key: ServerKey, response: Response, now: float) -> None:
        """Send `response` through the server transaction `key` (17.2.1, 17.2.2).

        Raises UnknownTransaction when it has terminated, TransitionError when the state does
        not allow it (a second final response)."""
        txn = self._servers.get(key)
        if txn is None:
            raise UnknownTransaction(f"no server transaction {key}")
        txn.fire(tu_input(response.status), now, response)

    def send_stateless(self, msg: Request | Response, dest: Peer) -> None:
        """Send outside any transaction: the ACK for a 2xx (13.2.2.4), stateless responses."""
        self._events.append(Transmit(msg.to_bytes(), dest))

    def transport_error(self, key: TxnKey, now: float) -> None:
        """The transport failed to send for this transaction (17.1.4, 17.2.4)."""
        txn: Transaction | None
        txn = self._clients.get(key) if isinstance(key, ClientKey) else self._servers.get(key)
        if txn is None:
            logger.debug("transport error for gone transaction %s", key)
            return
        txn.fire(_TRANSPORT_ERROR, now)

    # -- helpers for the TU --

    def cancel_target(self, cancel_key: ServerKey) -> ServerKey | None:
        """The INVITE server transaction a CANCEL matches (9.2), if it is still alive."""
        txn = self._servers.get(cancel_key._replace(method="INVITE"))
        return None if txn is None else cast(ServerKey, txn.key)

    def matches(self, request: Request) -> bool:
        """Whether `request` belongs to a live server transaction (a retransmission, an ACK
        or a CANCEL target), so that it must reach the layer even under overload."""
        key = server_key(request, request.top_via)
        return key in self._servers or (not key.branch and key in self._aliases)

    def state(self, key: TxnKey) -> Enum | None:
        """The state of a live transaction, None when there is none."""
        txn: Transaction | None
        txn = self._clients.get(key) if isinstance(key, ClientKey) else self._servers.get(key)
        return None if txn is None else txn.state

    def server_request(self, key: ServerKey) -> Request | None:
        """The request of a server transaction until its final response is sent."""
        txn = self._servers.get(key)
        return None if txn is None else txn.request

    # -- time --

    def handle_timer(self, now: float) -> None:
        """Fire every timer due at `now` (heap with lazy deletion)."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, _, txn, name = heapq.heappop(heap)
            if txn.timers.get(name) != deadline:
                continue  # cancelled or restarted
            del txn.timers[name]
            txn.fire(TIMER_INPUT_BY_NAME[name], now)

    def get_timer(self) -> float | None:
        """The earliest live deadline, or None."""
        heap = self._heap
        while heap:
            deadline, _, txn, name = heap[0]
            if txn.timers.get(name) == deadline:
                return deadline
            heapq.heappop(heap)
        return None

    # -- output --

    def next_event(self) -> TxnEvent | None:
        events = self._events
        if events:
            return events.popleft()
        if self._trying:
            self._send_trying()
            return events.popleft() if events else None
        return None

    def _send_trying(self) -> None:
        """RFC 3261 17.2.1: the 100 Trying of the INVITEs received since the last call,
        for those the TU has not answered yet (a provisional or a final response of its
        own makes it needless: the TU answered within the 200 ms the rule allows). Sent
        here, once the TU had the request, the 100 is also what a retransmission of
        the INVITE gets until the TU's next response."""
        pending, self._trying = self._trying, []
        for inv, now in pending:
            request = inv.request
            if (inv.state is _IS_PROCEEDING and inv.last is None and request is not None):
                inv.fire(_TU_1XX, now, make_response(request, 100))

    def __len__(self) -> int:
        return len(self._clients) + len(self._servers)

    # -- called by the transactions (the `Host` protocol) --

    def _emit(self, event: TxnEvent) -> None:
        self._events.append(event)

    def _schedule(self, txn: Transaction, timer: Timer, deadline: float) -> None:
        heap = self._heap
        heapq.heappush(heap, (deadline, next(self._seq), txn, TIMER_NAME[timer]))
        if len(heap) > self._compact_at:
            self._compact()

    def _compact(self) -> None:
        """Drop cancelled entries; amortised O(1) per push since the bound doubles."""
        heap = [e for e in self._heap if e[2].timers.get(e[3]) == e[0]]
        heapq.heapify(heap)
        self._heap = heap
        self._compact_at = max(1024, 2 * len(heap))

    def _terminated(self, txn: Transaction) -> None:
        key = txn.key
        if isinstance(key, ClientKey):
            self._clients.pop(key, None)
        else:
            self._servers.pop(key, None)
            for alias in cast(ServerTransaction, txn).aliases:
                self._aliases.pop(alias, None)
        self._events.append(TransactionTerminated(key))

    def _final_sent(self, txn: Transaction, response: Response) -> None:
        """RFC 2543 INVITE: the ACK will carry the response's To tag; register that key."""
        key = txn.key
        if not isinstance(key, ServerKey) or key.branch or key.method != "INVITE":
            return
        server = cast(ServerTransaction, txn)
        tag = response.to.tag or ""
        prefix = key.sent_by[: key.sent_by.rfind("|") + 1]
        alias = ServerKey("", prefix + tag, "INVITE")
        if alias != key and alias not in self._aliases:
            self._aliases[alias] = server
            server.aliases = (*server.aliases, alias)
