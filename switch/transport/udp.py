"""UDP transport adapter (RFC 3261 section 18): one datagram is one message."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from typing import cast

from switch.transaction import Peer

log = logging.getLogger(__name__)

Deliver = Callable[[bytes, Peer], None]
SOCKET_BUFFER = 4 * 1024 * 1024


class UdpListener(asyncio.DatagramProtocol):
    """Receives datagrams and hands them to the runtime; sends without buffering."""

    def __init__(self, deliver: Deliver, host: str, port: int) -> None:
        self._deliver = deliver
        self._transport: asyncio.DatagramTransport | None = None
        self.host = host
        self.port = port
        self.errors = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's UDP transport does not subclass asyncio.DatagramTransport
        self._transport = cast(asyncio.DatagramTransport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # bursts (a site's phones re-registering after an outage) must queue, not drop;
            # the kernel caps this at net.core.rmem_max
            for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, opt, SOCKET_BUFFER)
        name = transport.get_extra_info("sockname")
        if name is not None:
            self.port = name[1]

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self._deliver(data, Peer("UDP", str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and the like: the transaction layer's timers handle it.
        self.errors += 1
        log.debug("udp error: %s", exc)

    def send(self, data: bytes, host: str, port: int) -> None:
        if self._transport is not None:
            self._transport.sendto(data, (host, port))

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


async def start_udp(deliver: Deliver, host: str, port: int) -> UdpListener:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_datagram_endpoint(
        lambda: UdpListener(deliver, host, port), local_addr=(host, port)
    )
    return protocol
