"""TCP and TLS transport adapters (RFC 3261 section 18.3, RFC 5626 keep-alives).

Each connection cuts its byte stream into messages with `StreamFramer`. Connections are
registered by id and by remote address so that responses and requests to a phone reuse the
connection it opened (RFC 3261 18.2.2; phones behind NAT cannot be reached any other way).
An idle connection is closed after `idle_timeout`; a framing error answers nothing (the
stream can no longer be trusted) and closes the connection.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import ssl
from collections.abc import Callable
from typing import cast

from switch.sip import SipParseError, StreamFramer
from switch.transaction import Peer

log = logging.getLogger(__name__)

Deliver = Callable[[bytes, Peer], None]
_ids = itertools.count(1)


class StreamConnection(asyncio.Protocol):
    def __init__(self, owner: StreamTransports, transport_name: str, max_size: int) -> None:
        self.owner = owner
        self.name = transport_name
        self.conn_id = next(_ids)
        self.framer = StreamFramer(max_size)
        self.transport: asyncio.Transport | None = None
        self.remote: tuple[str, int] = ("", 0)
        self.last_activity = 0.0
        self.peer: Peer | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        addr = transport.get_extra_info("peername")
        self.remote = (str(addr[0]), int(addr[1]))
        self.peer = Peer(self.name, self.remote[0], self.remote[1], self.conn_id)
        self.last_activity = asyncio.get_running_loop().time()
        self.owner.register(self)

    def data_received(self, data: bytes) -> None:
        self.last_activity = asyncio.get_running_loop().time()
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
            self.owner.deliver(frame, self.peer)

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner.unregister(self)

    def send(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)
            self.last_activity = asyncio.get_running_loop().time()


class StreamTransports:
    """All TCP and TLS listeners and connections of the switch."""

    def __init__(self, deliver: Deliver, *, max_size: int = 65535, idle_timeout: float = 900.0,
                 client_ssl: ssl.SSLContext | None = None) -> None:
        self.deliver = deliver
        self.max_size = max_size
        self.idle_timeout = idle_timeout
        self.client_ssl = client_ssl
        self.by_id: dict[int, StreamConnection] = {}
        self.by_addr: dict[tuple[str, str, int], StreamConnection] = {}
        self.servers: list[asyncio.base_events.Server] = []
        self.framing_errors = 0
        self._reaper: asyncio.Task[None] | None = None

    async def listen(self, name: str, host: str, port: int, ssl_ctx: ssl.SSLContext | None = None) -> int:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: StreamConnection(self, name, self.max_size), host, port, ssl=ssl_ctx,
            reuse_address=True,
        )
        self.servers.append(server)
        if self._reaper is None:
            self._reaper = asyncio.create_task(self._reap_idle())
        return int(server.sockets[0].getsockname()[1])

    def register(self, conn: StreamConnection) -> None:
        self.by_id[conn.conn_id] = conn
        self.by_addr[(conn.name, *conn.remote)] = conn

    def unregister(self, conn: StreamConnection) -> None:
        self.by_id.pop(conn.conn_id, None)
        key = (conn.name, *conn.remote)
        if self.by_addr.get(key) is conn:
            del self.by_addr[key]

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
                    lambda: StreamConnection(self, peer.transport, self.max_size),
                    peer.host, peer.port, ssl=ctx,
                ),
                timeout=5.0,
            )
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            log.info("cannot connect to %s %s:%d: %s", peer.transport, peer.host, peer.port, exc)
            return False
        proto.send(data)
        return True

    async def _reap_idle(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(30.0, self.idle_timeout / 2))
            now = loop.time()
            for conn in list(self.by_id.values()):
                if now - conn.last_activity > self.idle_timeout and conn.transport is not None:
                    conn.transport.close()

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        for server in self.servers:
            server.close()
        for conn in list(self.by_id.values()):
            if conn.transport is not None:
                conn.transport.close()
        for server in self.servers:
            await server.wait_closed()
