"""NAT keep-alive for phones registered over UDP.

A phone behind NAT is reachable only while its NAT keeps the UDP mapping the REGISTER opened,
and many NATs forget one after 30 to 60 s of silence. The switch therefore pings every UDP
binding's source address with a stateless OPTIONS (the answer, a stray response, is simply
absorbed): the traffic keeps the mapping alive without a transaction per ping. Pings are
spread over the interval so 10,000 phones make a steady trickle, not a burst.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from switch.transaction import Peer

if TYPE_CHECKING:
    from devices.location import Binding
    from switch.runtime import SipRuntime

log = logging.getLogger("switch.keepalive")

SLICES = 10  # each interval is cut into this many rounds


class NatKeepalive:
    """Pings every UDP binding once per `interval` (stateless OPTIONS), spread over
    `SLICES` rounds; `bindings()` gives the location service's current bindings."""

    def __init__(self, interval: float, *, runtime: SipRuntime,
                 bindings: Callable[[], Iterable[Binding]], host: str, port: int) -> None:
        self.interval = interval
        self.runtime = runtime
        self.bindings = bindings
        self.host, self.port = host, port
        self.sent = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.interval > 0:
            self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        host, port = self.host, self.port
        n = 0
        while True:
            await asyncio.sleep(self.interval / SLICES)
            n += 1
            try:
                for b in self.bindings():
                    # each binding is pinged once per interval, in the slice its key hashes to
                    if b.transport.upper() != "UDP" or hash(b.key) % SLICES != n % SLICES:
                        continue
                    self.runtime.send_raw(ping(host, port, b.contact, b.source_host),
                                          Peer("UDP", b.source_host, b.source_port))
                    self.sent += 1
            except Exception:
                log.exception("keep-alive round failed")


def ping(host: str, port: int, contact: str, target_host: str) -> bytes:
    """A minimal out-of-dialog OPTIONS (RFC 3261 11.1), sent without a transaction."""
    token = os.urandom(6).hex()
    return (
        f"OPTIONS {contact} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bKka{token};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:keepalive@{host}>;tag=ka{token}\r\n"
        f"To: <{contact}>\r\n"
        f"Call-ID: ka{token}@{host}\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
