"""Overload shedding over real UDP (issue 21): a request that waited in the kernel's receive
queue past `shed_after` is answered 503 with Retry-After without a transaction; one that
waited past `drop_after` is dropped unread; both are counted for /metrics. Requests of work
in progress (a retransmission of a live transaction, in-dialog requests) are still served."""

from __future__ import annotations

import asyncio
import socket
import time

from switch.core_handlers import handle_options
from switch.runtime import ServerRequest, SipRuntime
from switch.sip import make_response, new_tag
from switch.transport.udp import start_udp


def accept_message(runtime: SipRuntime, sreq: ServerRequest) -> None:
    runtime.respond(sreq.key, make_response(sreq.request, 200, to_tag=new_tag()))


def options(port: int, branch: str, to_tag: str = "", method: str = "OPTIONS") -> bytes:
    to = f"<sip:wte@127.0.0.1>{';tag=' + to_tag if to_tag else ''}"
    return (f"{method} sip:wte@127.0.0.1 SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{branch}\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:load@127.0.0.1>;tag=abc\r\n"
            f"To: {to}\r\nCall-ID: {branch}@load\r\nCSeq: 1 {method}\r\n"
            "Content-Length: 0\r\n\r\n").encode()


async def answers(sock: socket.socket, n: int, wait: float = 2.0) -> list[bytes]:
    loop = asyncio.get_running_loop()
    got: list[bytes] = []
    end = loop.time() + wait
    while len(got) < n and loop.time() < end:
        try:
            got.append(sock.recv(65535))
        except BlockingIOError:
            await asyncio.sleep(0.01)
    return got


async def test_late_requests_are_shed_then_dropped_and_counted() -> None:
    runtime = SipRuntime()
    runtime.register_handler("OPTIONS", handle_options)
    runtime.register_handler("MESSAGE", accept_message)
    runtime.retry_after = 7
    # busy_fraction 0: the stalls below stand for a saturated switch (a busy loop would
    # make the test depend on the machine's load)
    udp = await start_udp(runtime.deliver, "127.0.0.1", 0, overloaded=runtime.overloaded,
                          shed_after=0.1, drop_after=0.8, busy_fraction=0.0)
    runtime.udp = udp
    runtime.counters.transport_stats = udp.stats
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind(("127.0.0.1", 0))
    client.setblocking(False)
    me = client.getsockname()[1]
    dest = ("127.0.0.1", udp.port)
    try:
        # a transaction accepted before the overload: its retransmission still matches
        client.sendto(options(me, "live", method="MESSAGE"), dest)
        assert (await answers(client, 1))[0].startswith(b"SIP/2.0 200")

        for i in range(3):
            client.sendto(options(me, f"new{i}", method="MESSAGE"), dest)
        client.sendto(options(me, "live", method="MESSAGE"), dest)  # retransmission
        client.sendto(options(me, "indialog", to_tag="x1", method="MESSAGE"), dest)
        client.sendto(options(me, "probe"), dest)  # OPTIONS: as cheap as its 503
        time.sleep(0.3)  # the loop is stuck: the datagrams wait in the receive queue
        got = await answers(client, 6)
        shed = [g for g in got if g.startswith(b"SIP/2.0 503")]
        assert len(shed) == 3
        assert all(b"Retry-After: 7\r\n" in g and b"CSeq: 1 MESSAGE" in g for g in shed)
        assert sum(g.startswith(b"SIP/2.0 200") for g in got) == 3
        assert runtime.counters.shed == 3

        client.sendto(options(me, "ancient"), dest)
        time.sleep(1.0)  # past drop_after: the client has retransmitted it by now
        assert await answers(client, 1, wait=0.5) == []
        assert udp.dropped_late == 1

        client.sendto(options(me, "fresh"), dest)  # no longer late: served
        assert (await answers(client, 1))[0].startswith(b"SIP/2.0 200")
        overload = runtime.counters.snapshot()["overload"]
        assert isinstance(overload, dict)
        assert overload["shed_503"] == 3 and overload["dropped_late"] == 1
        assert float(overload["max_queue_delay_ms"]) >= 800  # type: ignore[arg-type]
    finally:
        client.close()
        udp.close()


async def test_a_switch_that_was_not_running_is_not_shed() -> None:
    """Late datagrams while the process used little CPU (the machine ran something else, a
    VM stalled): the switch is not the bottleneck, so it serves them."""
    runtime = SipRuntime()
    runtime.register_handler("OPTIONS", handle_options)
    udp = await start_udp(runtime.deliver, "127.0.0.1", 0, overloaded=runtime.overloaded,
                          shed_after=0.05, drop_after=5.0)
    runtime.udp = udp
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind(("127.0.0.1", 0))
    client.setblocking(False)
    try:
        await asyncio.sleep(0.15)  # a sampling window passes with the process idle
        client.sendto(options(client.getsockname()[1], "late"), ("127.0.0.1", udp.port))
        time.sleep(0.3)  # late, but the process slept: not saturated
        assert (await answers(client, 1))[0].startswith(b"SIP/2.0 200")
        assert runtime.counters.shed == 0
    finally:
        client.close()
        udp.close()


async def test_without_a_threshold_nothing_is_shed() -> None:
    runtime = SipRuntime()
    runtime.register_handler("OPTIONS", handle_options)
    udp = await start_udp(runtime.deliver, "127.0.0.1", 0, overloaded=runtime.overloaded)
    runtime.udp = udp
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind(("127.0.0.1", 0))
    client.setblocking(False)
    try:
        client.sendto(options(client.getsockname()[1], "late"), ("127.0.0.1", udp.port))
        time.sleep(0.3)
        assert (await answers(client, 1))[0].startswith(b"SIP/2.0 200")
        assert runtime.counters.shed == 0
    finally:
        client.close()
        udp.close()


async def test_a_switch_starved_of_its_core_sheds_when_its_queue_never_drains() -> None:
    """The switch gets too little of its core to keep up (other processes take the rest):
    its own CPU stays under BUSY_FRACTION, yet its queue does not drain from one wake-up to
    the next. Past a tenth of a second of that, stale datagrams are dropped, counted, and
    the switch answers fresh ones instead of answering only what its clients gave up on."""
    handled: list[bytes] = []

    def slow(data: bytes, peer: object) -> None:
        time.sleep(0.002)  # starved, not busy: sleeping uses no CPU of this process
        handled.append(data)

    udp = await start_udp(slow, "127.0.0.1", 0, drop_after=0.2)
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind(("127.0.0.1", 0))
    me = client.getsockname()[1]
    try:
        total = 300
        for i in range(total):
            client.sendto(options(me, f"q{i}"), ("127.0.0.1", udp.port))
        loop = asyncio.get_running_loop()
        end = loop.time() + 20
        while len(handled) + udp.dropped_late < total and loop.time() < end:
            await asyncio.sleep(0.05)
        assert len(handled) + udp.dropped_late == total
        assert udp.dropped_late > 0
        assert len(handled) >= 64  # the first burst: nothing says "behind" yet
    finally:
        client.close()
        udp.close()


async def test_a_burst_and_a_zero_length_datagram_are_all_read() -> None:
    """After the first datagram of a wake-up the listener asks the kernel (FIONREAD) whether
    another waits; a zero-length datagram reads as "none" there, and must still be read on
    the next wake-up rather than stall the socket."""
    got: list[bytes] = []
    udp = await start_udp(lambda data, peer: got.append(data), "127.0.0.1", 0)
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        dest = ("127.0.0.1", udp.port)
        client.sendto(b"first", dest)
        client.sendto(b"", dest)
        for i in range(100):  # more than a burst
            client.sendto(b"n%d" % i, dest)
        loop = asyncio.get_running_loop()
        end = loop.time() + 10
        while len(got) < 102 and loop.time() < end:
            await asyncio.sleep(0.01)
        assert got[:2] == [b"first", b""]
        assert got[2:] == [b"n%d" % i for i in range(100)]
    finally:
        client.close()
        udp.close()
