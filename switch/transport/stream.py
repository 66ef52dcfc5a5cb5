"""TCP and TLS transport adapters (RFC 3261 section 18.3, RFC 5626 keep-alives).

Each connection cuts its byte stream into messages with `StreamFramer`. Connections are
registered by id and by remote address so that responses and requests to a phone reuse the
connection it opened (RFC 3261 18.2.2; phones behind NAT cannot be reached any other way).
Inbound connections are capped per source IP and in all, and closed by deadlines (no first
message, an incomplete message, idle; see `switch.transport.limits` for the rules); a framing
error answers nothing (the stream can no longer be trusted) and closes the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import socket
import ssl
import struct
from collections.abc import Callable
from typing import Any, cast

from switch.sip import SipParseError, StreamFramer
from switch.transaction import Peer
from switch.transport.limits import (
    TRANSITIONS,
    Admission,
    ConnPhase,
    StreamLimits,
    Throttle,
    expiry,
)

log = logging.getLogger(__name__)

Deliver = Callable[[bytes, Peer], None]
_ids = itertools.count(1)
_CSEQ_REGISTER = re.compile(rb"\r\nCSeq:[ \t]*\d+[ \t]+REGISTER[ \t]*(?:\r\n|$)", re.IGNORECASE)


def _reset(sock: socket.socket) -> None:
    """Close with a RST (SO_LINGER 0): no TIME_WAIT, the descriptor is free at once."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class StreamConnection(asyncio.Protocol):
    """One TCP/TLS/WS/WSS connection.  A TLS one is handed over after its handshake, its slot
    under the caps already taken at accept (``preadmitted``, see `StreamTransports.listen`)."""

    def __init__(self, owner: StreamTransports, transport_name: str, max_size: int, *,
                 outbound: bool = False, preadmitted: bool = False) -> None:
        self.owner = owner
        self.name = transport_name
        self.conn_id = next(_ids)
        self.framer = StreamFramer(max_size)
        self.transport: asyncio.Transport | None = None
        self.remote: tuple[str, int] = ("", 0)
        self.last_activity = 0.0
        self.peer: Peer | None = None
        self.outbound = outbound
        self.phase = ConnPhase.ACTIVE if outbound else ConnPhase.SILENT
        self.since = 0.0  # when the phase began
        self.partial_since: float | None = None  # an incomplete message is buffered since
        self.ready = False  # False when refused: nothing is sent
        self.admitted = preadmitted

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        addr = transport.get_extra_info("peername")
        self.remote = (str(addr[0]), int(addr[1]))
        self.peer = Peer(self.name, self.remote[0], self.remote[1], self.conn_id)
        self.last_activity = self.since = asyncio.get_running_loop().time()
        if not self.outbound and not self.admitted:
            if not self.owner.admit(self.name, self.remote):
                self.transport.abort()  # RST: the descriptor is free at once
                return
            self.admitted = True
        self.owner.register(self)
        self.ready = True

    def _set_phase(self, phase: ConnPhase) -> None:
        if phase is self.phase:
            return
        if phase not in TRANSITIONS[self.phase]:
            raise ValueError(f"connection {self.conn_id}: {self.phase.value} -> {phase.value}")
        log.debug("%s connection %d from %s:%d: %s -> %s", self.name, self.conn_id,
                  *self.remote, self.phase.value, phase.value)
        self.phase = phase
        self.owner.watch(self)

    def data_received(self, data: bytes) -> None:
        now = self.last_activity = asyncio.get_running_loop().time()
        try:
            frames = self.framer.feed(data)
        except SipParseError as exc:
            self.owner.framing_errors += 1
            log.info("closing %s connection from %s:%d: %s", self.name, *self.remote, exc.reason)
            if self.transport is not None:
                self.transport.close()
            return
        assert self.peer is not None
        for frame in frames:
            if frame == b"\r\n\r\n":
                # RFC 5626 section 4.4.1: answer a double-CRLF ping with a single CRLF pong
                self.send(b"\r\n")
                continue
            self.delivered()
            self.owner.deliver(frame, self.peer)
        # a message begun and not finished: it has message_timeout to complete
        pending = bool(self.framer._buf)
        if pending != (self.partial_since is not None):
            self.partial_since = now if pending else None
            self.owner.watch(self)

    def delivered(self) -> None:
        """A complete SIP message arrived: the connection is in use."""
        if self.phase is ConnPhase.SILENT:
            self._set_phase(ConnPhase.ACTIVE)

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner.unregister(self)

    def send(self, data: bytes) -> None:
        if self.ready and self.transport is not None and not self.transport.is_closing():
            self.note_sent(data)
            self.transport.write(data)
            self.last_activity = asyncio.get_running_loop().time()

    def note_sent(self, data: bytes) -> None:
        """A 2xx to a REGISTER on this connection makes it a registered phone's path."""
        if self.phase is not ConnPhase.REGISTERED and data[:9] == b"SIP/2.0 2":
            head = data[:data.find(b"\r\n\r\n")]
            if _CSEQ_REGISTER.search(head):
                self._set_phase(ConnPhase.REGISTERED)


class StreamTransports:
    """All TCP and TLS listeners and connections of the switch (WS/WSS join them)."""

    def __init__(self, deliver: Deliver, *, max_size: int = 65535, idle_timeout: float = 900.0,
                 client_ssl: ssl.SSLContext | None = None,
                 limits: StreamLimits | None = None) -> None:
        self.deliver = deliver
        # issue 23: switch.webrtc.edge.WebRtcEdge, set by the app; WS connections pass SIP
        # messages through it (their SDP rewritten for browsers)
        self.ws_edge: Any = None
        self.max_size = max_size
        # `idle_timeout` (settings.sip.tcp_idle_timeout) is how long a registered phone's
        # connection may stay idle; `limits`, when given, wins over it
        self.limits = limits or StreamLimits(idle_timeout=idle_timeout,
                                             idle_unregistered=min(300.0, idle_timeout))
        self.idle_timeout = self.limits.idle_timeout
        self.client_ssl = client_ssl
        self.by_id: dict[int, StreamConnection] = {}
        self.by_addr: dict[tuple[str, str, int], StreamConnection] = {}
        self.servers: list[asyncio.base_events.Server] = []
        self.admission = Admission(self.limits)
        self.framing_errors = 0
        self.handshake_failures = 0
        self.expired: dict[str, int] = {}  # connections closed by a deadline, by reason
        self._watched: set[StreamConnection] = set()  # with a short deadline (not yet idle)
        self._refusal_log = Throttle()
        self._reaper: asyncio.Task[None] | None = None
        self._tls_listeners: list[tuple[socket.socket, asyncio.Task[None]]] = []
        self._handshakes: set[asyncio.Task[None]] = set()  # TLS handshakes in progress

    async def listen(self, name: str, host: str, port: int,
                     ssl_ctx: ssl.SSLContext | None = None,
                     factory: type[StreamConnection] | None = None) -> int:
        """Listen for TCP, or TLS with `ssl_ctx`.  Returns the bound port.

        TLS connections are accepted here (not by asyncio's server) so that a connection
        whose handshake is still running already holds its slot under the caps: otherwise
        the switch would first hear of it once the handshake is over, and thousands of
        connections that never finish one would cost nothing to open.
        """
        cls = factory or StreamConnection
        loop = asyncio.get_running_loop()
        self.start_reaper()
        if ssl_ctx is None:
            server = await loop.create_server(
                lambda: cls(self, name, self.max_size), host, port,
                reuse_address=True, backlog=1024,
            )
            self.servers.append(server)
            return int(server.sockets[0].getsockname()[1])
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        lsock = socket.create_server((host, port), family=family, backlog=1024)
        lsock.setblocking(False)
        task = loop.create_task(self._accept_tls(lsock, name, ssl_ctx, cls))
        self._tls_listeners.append((lsock, task))
        return int(lsock.getsockname()[1])

    async def _accept_tls(self, lsock: socket.socket, name: str, ctx: ssl.SSLContext,
                          cls: type[StreamConnection]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, addr = await loop.sock_accept(lsock)
            except OSError as exc:  # EMFILE and friends: wait for descriptors to come back
                skipped = self._refusal_log.ready(loop.time())
                if skipped is not None:
                    log.warning("cannot accept %s connections: %s", name, exc)
                await asyncio.sleep(0.1)
                continue
            remote = (str(addr[0]), int(addr[1]))
            if not self.admit(name, remote):
                _reset(sock)
                continue
            task = loop.create_task(self._handshake(sock, remote, name, ctx, cls))
            self._handshakes.add(task)
            task.add_done_callback(self._handshakes.discard)

    async def _handshake(self, sock: socket.socket, remote: tuple[str, int], name: str,
                         ctx: ssl.SSLContext, cls: type[StreamConnection]) -> None:
        """The TLS handshake under `handshake_timeout`; the connection joins the registry
        when it is done (its `connection_made`), else its slot is given back."""
        loop = asyncio.get_running_loop()
        made: list[StreamConnection] = []

        def protocol() -> StreamConnection:
            made.append(cls(self, name, self.max_size, preadmitted=True))
            return made[0]

        def give_back() -> None:
            # the slot is the connection's once it joined the registry (connection_lost
            # gives it back then); before that it is ours to give back.  The socket is not
            # closed here: the loop's transport owns it and closes it (a second close could
            # hit a descriptor number already reused by another connection)
            if not made or made[0].transport is None:
                self.admission.release(remote[0])

        try:
            await loop.connect_accepted_socket(
                protocol, sock, ssl=ctx, ssl_handshake_timeout=self.limits.handshake_timeout,
            )
        except (OSError, ssl.SSLError, ConnectionError, TimeoutError, EOFError) as exc:
            self.handshake_failures += 1
            log.debug("%s handshake from %s:%d failed: %r", name, *remote, exc)
            give_back()
        except asyncio.CancelledError:
            give_back()
            raise

    def start_reaper(self) -> None:
        if self._reaper is None:
            self._reaper = asyncio.get_running_loop().create_task(self._reap())

    def counters(self) -> dict[str, int]:
        """For /metrics: open connections, refusals over the caps, deadline closes."""
        out = {
            "stream_connections": self.admission.total,
            "stream_refused_per_source": self.admission.refused_per_source,
            "stream_refused_overall": self.admission.refused_overall,
            "stream_handshake_failures": self.handshake_failures,
            "stream_framing_errors": self.framing_errors,
        }
        for why, n in self.expired.items():
            out["stream_expired_" + why.replace(" ", "_").replace("-", "_").lower()] = n
        return out

    def admit(self, name: str, remote: tuple[str, int]) -> bool:
        """Take a slot under the caps for an inbound connection; False (logged, throttled)
        when over a cap."""
        reason = self.admission.admit(remote[0])
        if reason is None:
            return True
        skipped = self._refusal_log.ready(asyncio.get_running_loop().time())
        if skipped is not None:
            log.warning("refusing %s connection from %s:%d: %s (%d more refused since the "
                        "last such line)", name, *remote, reason, skipped)
        return False

    def register(self, conn: StreamConnection) -> None:
        self.by_id[conn.conn_id] = conn
        self.by_addr[(conn.name, *conn.remote)] = conn
        self.watch(conn)

    def unregister(self, conn: StreamConnection) -> None:
        if self.by_id.pop(conn.conn_id, None) is None:
            return  # refused at once, or already gone (connection_lost after a failed upgrade)
        key = (conn.name, *conn.remote)
        if self.by_addr.get(key) is conn:
            del self.by_addr[key]
        self._watched.discard(conn)
        if conn.admitted:
            conn.admitted = False
            self.admission.release(conn.remote[0])

    def watch(self, conn: StreamConnection) -> None:
        """Keep `conn` in the fast-checked set while it has a deadline shorter than idle."""
        if conn.conn_id not in self.by_id:
            return
        if conn.phase is ConnPhase.SILENT or conn.partial_since is not None:
            self._watched.add(conn)
        else:
            self._watched.discard(conn)

    def find(self, peer: Peer) -> StreamConnection | None:
        if peer.conn_id is not None:
            conn = self.by_id.get(peer.conn_id)
            if conn is not None:
                return conn
        return self.by_addr.get((peer.transport, peer.host, peer.port))

    def send(self, data: bytes, peer: Peer) -> bool:
        """Send on an existing connection; False when there is none (caller may connect)."""
        conn = self.find(peer)
        if conn is None:
            return False
        conn.send(data)
        return True

    async def connect_and_send(self, data: bytes, peer: Peer) -> bool:
        """Open a connection to `peer` (RFC 3261 18.1.1) and send `data` on it."""
        if peer.transport not in ("TCP", "TLS"):
            # RFC 7118 section 5: a WebSocket phone can only be reached on its own connection
            log.info("no %s connection to %s:%d any more", peer.transport, peer.host, peer.port)
            return False
        loop = asyncio.get_running_loop()
        ctx = self.client_ssl if peer.transport == "TLS" else None
        try:
            _, proto = await asyncio.wait_for(
                loop.create_connection(
                    lambda: StreamConnection(self, peer.transport, self.max_size,
                                             outbound=True),
                    peer.host, peer.port, ssl=ctx,
                ),
                timeout=5.0,
            )
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            log.info("cannot connect to %s %s:%d: %s", peer.transport, peer.host, peer.port, exc)
            return False
        proto.send(data)
        return True

    def _expire(self, conn: StreamConnection, now: float) -> None:
        when, why = expiry(self.limits, conn.phase, conn.since, conn.last_activity,
                           conn.partial_since)
        if now >= when and conn.transport is not None:
            self.expired[why] = self.expired.get(why, 0) + 1
            log.debug("closing %s connection %d from %s:%d: %s", conn.name, conn.conn_id,
                      *conn.remote, why)
            if conn.phase is ConnPhase.REGISTERED or conn.phase is ConnPhase.ACTIVE:
                conn.transport.close()  # flush what is queued
            else:
                conn.transport.abort()
            self._watched.discard(conn)

    async def _reap(self) -> None:
        """Short deadlines (first message, incomplete message) are checked every
        ``tick`` on the watched connections only; idle ones on all connections every
        ``full`` ticks (about a quarter of the shortest idle time, at most 15 s)."""
        loop = asyncio.get_running_loop()
        lim = self.limits
        short = min(lim.first_message_timeout, lim.message_timeout)
        idle = min(lim.idle_unregistered, lim.idle_timeout)
        tick = max(0.05, min(1.0, short / 4, idle / 4))
        full = max(1, round(min(15.0, idle / 4) / tick))
        rounds = 0
        while True:
            await asyncio.sleep(tick)
            now = loop.time()
            rounds += 1
            every = self.by_id.values() if rounds % full == 0 else self._watched
            for conn in list(every):
                self._expire(conn, now)

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        for lsock, task in self._tls_listeners:
            task.cancel()
            lsock.close()
        for hs in list(self._handshakes):
            hs.cancel()
        for server in self.servers:
            server.close()
        for conn in list(self.by_id.values()):
            if conn.transport is not None:
                conn.transport.close()
        for server in self.servers:
            await server.wait_closed()
