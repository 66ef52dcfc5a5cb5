"""Sockets of the own engine: one UDP socket, or one TCP/TLS connection, per phone."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable

from switch.sip import StreamFramer
from switch.transaction import Peer

Deliver = Callable[[bytes, Peer], None]


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, deliver: Deliver) -> None:
        self.deliver = deliver

    def datagram_received(self, data: bytes, addr: tuple[str | bytes | int, ...]) -> None:
        self.deliver(data, Peer("UDP", str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:  # ICMP unreachable and the like
        pass


class PhoneTransport:
    """Sends and receives whole SIP messages; `local` is the (host, port) to advertise."""

    def __init__(self, kind: str, deliver: Deliver) -> None:
        self.kind = kind
        self.deliver = deliver
        self.local: tuple[str, int] = ("127.0.0.1", 0)
        self._udp: asyncio.DatagramTransport | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._server: Peer | None = None

    async def open(self, server: tuple[str, int], bind: tuple[str, int] = ("127.0.0.1", 0)
                   ) -> None:
        loop = asyncio.get_running_loop()
        if self.kind == "UDP":
            udp, _ = await loop.create_datagram_endpoint(lambda: _Datagrams(self.deliver),
                                                        local_addr=bind)
            self._udp = udp
            sock = udp.get_extra_info("sockname")
            self.local = (str(sock[0]), int(sock[1]))
            return
        ctx: ssl.SSLContext | None = None
        if self.kind == "TLS":
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        reader, writer = await asyncio.open_connection(server[0], server[1], ssl=ctx)
        self._writer = writer
        sock = writer.get_extra_info("sockname")
        self.local = (str(sock[0]), int(sock[1]))
        self._server = Peer(self.kind, server[0], server[1])
        self._reader_task = asyncio.create_task(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        framer = StreamFramer()
        assert self._server is not None
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                return
            try:
                frames = framer.feed(chunk)
            except Exception:
                return
            for frame in frames:
                self.deliver(frame, self._server)

    def send(self, data: bytes, dest: Peer) -> None:
        if self._udp is not None:
            self._udp.sendto(data, (dest.host, dest.port))
        elif self._writer is not None:
            self._writer.write(data)

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(BaseException):
                await self._reader_task
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
