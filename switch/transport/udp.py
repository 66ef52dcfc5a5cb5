"""UDP transport adapter (RFC 3261 section 18): one datagram is one message.

The socket is read directly (`loop.add_reader` + `recvmsg`, a burst of datagrams per wake-up)
rather than through the event loop's datagram transport, for one reason: the kernel stamps
each datagram with its arrival time (SO_TIMESTAMPNS), so the switch knows how long a
request waited in the receive queue. That wait is the honest overload signal (issue 21):
a switch at full load with a small queue answers everything, one whose queue grows answers
requests the client has already retransmitted or given up on, and its goodput collapses.
A datagram that waited longer than `shed_after` goes to `overloaded` (the runtime answers a
new request 503 with Retry-After, RFC 3261 21.5.4, and handles the rest); one that waited
longer than `drop_after` (by then the client has retransmitted it, Timer A/E at T1) is
dropped unread. Both are counted. Only while the switch itself is saturated: its process
used at least `BUSY_FRACTION` of a core over the last tenth of a second, or every wake-up
for the last tenth of a second left datagrams in the queue after its burst (the switch
cannot keep up, whatever the reason: on a machine whose other processes take half of the
switch's core, the switch never reaches BUSY_FRACTION, yet its queue grows until every
answer comes after the client gave up, and the goodput collapses). A queue that grew
because the machine did not run the switch for a moment (another process, a VM steal) and
drains within a tenth of a second is served, not shed.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import socket
import struct
import termios
import time
from collections.abc import Callable

from switch.transaction import Peer

log = logging.getLogger(__name__)

Deliver = Callable[[bytes, Peer], None]
SOCKET_BUFFER = 4 * 1024 * 1024
MAX_DATAGRAM = 65535
BURST = 64  # datagrams read per wake-up: a burst is handled without a loop iteration each
# Linux: SO_TIMESTAMPNS (= SCM_TIMESTAMPNS), a struct timespec of the arrival time; the
# socket module does not name it
SO_TIMESTAMPNS = 35
_ANCILLARY = socket.CMSG_SPACE(16)
_TIMESPEC = struct.Struct("qq")
BUSY_FRACTION = 0.8  # of a core: the switch is the bottleneck
BUSY_WINDOW = 0.1  # seconds between two samples of the process's CPU time
# Peers are immutable: one per source address is kept and reused (building the frozen
# dataclass is a measurable part of a 40 us OPTIONS); the cache is emptied when it grows
# past this many addresses, so a flood of spoofed sources costs memory only up to it
PEER_CACHE = 4096


class UdpListener:
    """Receives datagrams and hands them to the runtime; sends without buffering."""

    def __init__(self, deliver: Deliver, host: str, port: int, *,
                 overloaded: Deliver | None = None, shed_after: float = 0.0,
                 drop_after: float = 0.0, busy_fraction: float = BUSY_FRACTION) -> None:
        self._deliver = deliver
        self.busy_fraction = busy_fraction  # 0: a late datagram is always an overload
        self._overloaded = overloaded
        self.shed_after = shed_after
        self.drop_after = drop_after
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stamped = False
        self.host = host
        self.port = port
        self.errors = 0
        self.dropped_late = 0  # datagrams dropped unread: they waited past drop_after
        self.max_queue_delay = 0.0  # the longest wait seen (for /metrics), seconds
        self._sampled_at = time.monotonic()
        self._sampled_cpu = time.process_time()
        self._busy = False
        self._peers: dict[tuple[str, int], Peer] = {}
        # since when every wake-up ended with datagrams left in the queue (None: it drained)
        self._behind_since: float | None = None

    def open(self, loop: asyncio.AbstractEventLoop) -> None:
        family, _, _, _, address = socket.getaddrinfo(self.host, self.port,
                                                      type=socket.SOCK_DGRAM)[0]
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            # bursts (a site's phones re-registering after an outage) must queue, not drop;
            # the kernel caps this at net.core.rmem_max
            for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, opt, SOCKET_BUFFER)
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                self._stamped = True
            except OSError:
                self._stamped = False  # not Linux: no overload signal, nothing shed
            sock.bind(address)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._loop = loop
        self.port = sock.getsockname()[1]
        loop.add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        deliver = self._deliver
        shed_after = self.shed_after if self._overloaded else 0.0
        drop_after = self.drop_after
        # the first wait that matters: 503 (when on), else the drop
        late = (shed_after or drop_after) if self._stamped else 0.0
        if shed_after and drop_after:
            late = min(shed_after, drop_after)
        now = 0.0
        peers = self._peers
        for n in range(BURST):
            if n == 1 and not _pending(sock):
                # at low load a wake-up brings one datagram: asking the kernel whether
                # another waits (an ioctl, ~1 us) spares the failing recvmsg and its
                # exception (~3 us) that would otherwise end every such wake-up
                self._behind_since = None
                return
            try:
                data, anc, _flags, addr = sock.recvmsg(MAX_DATAGRAM, _ANCILLARY)
            except (BlockingIOError, InterruptedError):
                self._behind_since = None  # the queue drained: the switch keeps up
                return
            except OSError as exc:
                # ICMP port unreachable and the like: the transaction layer's timers handle it
                self.errors += 1
                log.debug("udp error: %s", exc)
                continue
            peer = peers.get(addr)
            if peer is None:
                if len(peers) >= PEER_CACHE:
                    peers.clear()
                peer = peers[addr] = Peer("UDP", str(addr[0]), int(addr[1]))
            if late and anc:
                _level, _kind, stamp = anc[0]
                sec, nsec = _TIMESPEC.unpack_from(stamp)
                if not now:
                    now = time.time()
                waited = now - sec - nsec * 1e-9
                if waited > late and self._saturated():
                    if waited > self.max_queue_delay:
                        self.max_queue_delay = waited
                    if drop_after and waited > drop_after:
                        self.dropped_late += 1
                        continue
                    if shed_after and waited > shed_after:
                        assert self._overloaded is not None
                        try:
                            self._overloaded(data, peer)
                        except Exception:
                            log.exception("overload handling failed")
                        continue
            try:
                deliver(data, peer)
            except Exception:
                log.exception("error delivering a datagram from %s:%d", peer.host, peer.port)
        # a full burst and more waiting: behind, since now unless already
        if self._behind_since is None:
            self._behind_since = time.monotonic()

    def _saturated(self) -> bool:
        """Whether the switch is the bottleneck: its queue has not drained for BUSY_WINDOW,
        or its process used BUSY_FRACTION of a core since the last sample (taken at most
        every BUSY_WINDOW seconds: a clock read per late datagram, no timer)."""
        if self.busy_fraction <= 0:
            return True
        wall = time.monotonic()
        behind = self._behind_since
        if behind is not None and wall - behind >= BUSY_WINDOW:
            return True
        elapsed = wall - self._sampled_at
        if elapsed >= BUSY_WINDOW:
            cpu = time.process_time()
            self._busy = (cpu - self._sampled_cpu) >= self.busy_fraction * elapsed
            self._sampled_at, self._sampled_cpu = wall, cpu
        return self._busy

    def stats(self) -> dict[str, object]:
        return {"dropped_late": self.dropped_late,
                "max_queue_delay_ms": round(self.max_queue_delay * 1000, 1)}

    def send(self, data: bytes, host: str, port: int) -> None:
        sock = self._sock
        if sock is None:
            return
        try:
            sock.sendto(data, (host, port))
        except (BlockingIOError, InterruptedError):
            # send buffer full: UDP may lose a datagram; the retransmission timers cover it
            self.errors += 1
        except OSError as exc:
            self.errors += 1
            log.debug("udp send to %s:%d failed: %s", host, port, exc)

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(sock.fileno())
            sock.close()


_FIONREAD_BUF = bytes(4)


def _pending(sock: socket.socket) -> bool:
    """Whether a datagram waits in the receive queue (FIONREAD: the size of the next one;
    0 also for a zero-length datagram, which the next wake-up reads: the reader stays
    registered and epoll is level-triggered). On error, assume one does."""
    try:
        return fcntl.ioctl(sock.fileno(), termios.FIONREAD, _FIONREAD_BUF) != _FIONREAD_BUF
    except OSError:
        return True


async def start_udp(deliver: Deliver, host: str, port: int, *,
                    overloaded: Deliver | None = None, shed_after: float = 0.0,
                    drop_after: float = 0.0,
                    busy_fraction: float = BUSY_FRACTION) -> UdpListener:
    listener = UdpListener(deliver, host, port, overloaded=overloaded, shed_after=shed_after,
                           drop_after=drop_after, busy_fraction=busy_fraction)
    listener.open(asyncio.get_running_loop())
    return listener
