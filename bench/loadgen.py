"""A closed-loop SIP load generator over UDP on loopback (runs in its own process).

It keeps `window` requests outstanding, matches responses by Via branch, and records the
latency of each transaction. Every run is bounded by a request count and a time limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    sent: int = 0
    completed: int = 0
    timeouts: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0


def branch_of(data: bytes) -> bytes | None:
    i = data.find(b"branch=")
    if i == -1:
        return None
    j = i + 7
    end = j
    n = len(data)
    while end < n and data[end] not in b";\r\n, ":
        end += 1
    return data[j:end]


def options_builder(host: str, port: int, local_port: int) -> Callable[[bytes], bytes]:
    tag = secrets.token_hex(4)
    head = (f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{local_port};rport;branch=").encode()
    tail = (f"\r\nMax-Forwards: 70\r\nFrom: <sip:load@{host}>;tag={tag}\r\n"
            f"To: <sip:{host}>\r\nCall-ID: ").encode()
    end = b"\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"

    def build(branch: bytes) -> bytes:
        return head + branch + tail + branch + end

    return build


class _Proto(asyncio.DatagramProtocol):
    def __init__(self, on_data: Callable[[bytes], None]) -> None:
        self.on_data = on_data

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.on_data(data)


async def run_options(host: str, port: int, total: int, window: int, limit_s: float,
                      rate: float = 0.0) -> LoadResult:
    """`window` requests outstanding (closed loop), or with `rate` > 0 one request every
    1/rate seconds whatever the answers (open loop, as phones load a switch)."""
    loop = asyncio.get_running_loop()
    result = LoadResult()
    outstanding: dict[bytes, float] = {}
    done = asyncio.Event()
    counter = 0
    prefix = b"z9hG4bK" + secrets.token_hex(4).encode()
    transport: asyncio.DatagramTransport | None = None
    build: Callable[[bytes], bytes] | None = None

    def send_one() -> None:
        nonlocal counter
        if result.sent >= total or transport is None or build is None:
            return
        counter += 1
        br = prefix + str(counter).encode()
        outstanding[br] = time.perf_counter()
        transport.sendto(build(br))
        result.sent += 1

    def on_data(data: bytes) -> None:
        br = branch_of(data)
        if br is None:
            return
        t0 = outstanding.pop(br, None)
        if t0 is None:
            return
        result.latencies.append(time.perf_counter() - t0)
        code = int(data[8:11])
        result.statuses[code] = result.statuses.get(code, 0) + 1
        result.completed += 1
        if result.completed + result.timeouts >= total:
            done.set()
        elif rate <= 0:
            send_one()

    transport, _ = await loop.create_datagram_endpoint(
        lambda: _Proto(on_data), local_addr=("127.0.0.1", 0), remote_addr=(host, port))
    sock = transport.get_extra_info("socket")
    if sock is not None:  # past saturation the answers come in bursts: do not lose them here
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    local_port = transport.get_extra_info("sockname")[1]
    build = options_builder(host, port, local_port)
    start = time.perf_counter()

    async def pacer() -> None:
        while result.sent < total:
            due = int((time.perf_counter() - start) * rate) + 1
            while result.sent < min(due, total):
                send_one()
            await asyncio.sleep(0.005)

    if rate > 0:
        paced = asyncio.ensure_future(pacer())
    else:
        for _ in range(window):
            send_one()

    async def reaper() -> None:
        while not done.is_set():
            await asyncio.sleep(0.5)
            now = time.perf_counter()
            stale = [b for b, t in outstanding.items() if now - t > 2.0]
            for b in stale:
                del outstanding[b]
                result.timeouts += 1
                if rate <= 0:
                    send_one()
            if result.completed + result.timeouts >= total:
                done.set()

    task = asyncio.ensure_future(reaper())
    try:
        await asyncio.wait_for(done.wait(), limit_s)
    except TimeoutError:
        pass
    result.elapsed = time.perf_counter() - start
    task.cancel()
    if rate > 0:
        paced.cancel()
    transport.close()
    return result
