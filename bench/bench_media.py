"""Media benchmarks: RTP relay capacity on one core, music-on-hold listeners per 20 ms tick.

Run: ``.venv/bin/python bench/bench_media.py`` (about 40 s).  Prints figures; asserts nothing.

Relay: N anchored G.711 calls in this process (one core, uvloop when installed), each leg
receiving 50 packets/s from a traffic generator in a *separate process* on 127.0.0.1 that
plays both phones of every call.  Sending times are spread evenly over each 20 ms period
(phones are not synchronised).  Each packet carries its send time (CLOCK_REALTIME); the
generator reads the kernel's receive timestamp (SO_TIMESTAMPNS), so the figure is the delay
added between the two sockets -- relay plus kernel, not the generator's own scheduling.
"Added jitter p99" is the 99th percentile of (delay - minimum delay).

Music on hold: N endpoints listening to one shared source, sending G.711 to a sink socket;
CPU time per 20 ms tick for all of them, and whether the clock ever had to skip.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import resource
import select
import socket
import struct
import sys
import time
from collections.abc import Callable, Coroutine
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from media import MediaEngine, MusicOnHold

RELAY_LEVELS = (100, 300, 500, 700, 900)
MOH_LEVELS = (500, 1000, 2000)
SEND_SECONDS = 3.0
SOCKS_PER_SIDE = 8
HDR = struct.Struct("!BBHII")
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux value; Python 3.11 lacks the name


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --- the generator process ------------------------------------------------------------------
def generator(conn: Connection, calls: int, seconds: float) -> None:
    """Play both phones of ``calls`` calls; report sent/received counts and delays."""
    socks = []
    for _ in range(2 * SOCKS_PER_SIDE):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
        socks.append(s)
    conn.send([s.getsockname()[1] for s in socks])
    legs: list[tuple[int, int]] = conn.recv()  # relay (port_a, port_b) per call
    # one "stream" per call and direction: (socket, relay port, ssrc)
    streams = []
    for i, (pa, pb) in enumerate(legs):
        streams.append((socks[i % SOCKS_PER_SIDE], pa, 2 * i))
        streams.append((socks[SOCKS_PER_SIDE + i % SOCKS_PER_SIDE], pb, 2 * i + 1))
    n = len(streams)
    payload_tail = b"\xff" * 152
    seqs = [0] * n
    sent = 0
    delays: list[int] = []
    received = 0
    ts_size = struct.calcsize("ll")

    def drain(timeout: float) -> None:
        nonlocal received
        ready, _, _ = select.select(socks, [], [], max(0.0, timeout))
        for s in ready:
            while True:
                try:
                    data, anc, _, _ = s.recvmsg(256, 64)
                except BlockingIOError:
                    break
                received += 1
                if anc and len(data) >= 20:
                    sec, nsec = struct.unpack("ll", anc[0][2][:ts_size])
                    sent_ns = struct.unpack_from("!Q", data, 12)[0]
                    delays.append(sec * 1_000_000_000 + nsec - sent_ns)

    conn.recv()  # go
    start = time.monotonic() + 0.05
    period = 0.020
    k = 0  # index of the next send in the global schedule (n sends per period)
    total = int(seconds / period) * n
    while k < total:
        now = time.monotonic()
        due = min(total, int((now - start) / period * n) + 1)
        while k < due:
            i = k % n
            s, port, ssrc = streams[i]
            seq = seqs[i]
            seqs[i] = (seq + 1) & 0xFFFF
            hdr = HDR.pack(0x80, 0, seq, (k // n) * 160, ssrc)
            try:
                s.sendto(
                    hdr + struct.pack("!Q", time.time_ns()) + payload_tail, ("127.0.0.1", port)
                )
                sent += 1
            except BlockingIOError:
                pass
            k += 1
        next_at = start + (k / n) * period
        drain(next_at - time.monotonic())
    end = time.monotonic() + 0.3
    while time.monotonic() < end:
        drain(0.02)
    conn.send((sent, received, np.array(delays, dtype=np.int64)))


def _recv(conn: Connection, timeout: float) -> Any:
    if not conn.poll(timeout):
        raise TimeoutError("the generator process did not answer")
    return conn.recv()


# --- relay ------------------------------------------------------------------------------------
async def relay_level(calls: int) -> dict[str, float]:
    engine = MediaEngine("127.0.0.1", 40000, 49999)
    await engine.start()
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=generator, args=(child, calls, SEND_SECONDS), daemon=True)
    proc.start()
    loop = asyncio.get_running_loop()
    gen_ports: list[int] = await loop.run_in_executor(None, _recv, parent, 10.0)
    relays = []
    for i in range(calls):
        r = await engine.open_relay()
        r.leg_a.set_remote("127.0.0.1", gen_ports[i % SOCKS_PER_SIDE], 0, "PCMU")
        r.leg_b.set_remote("127.0.0.1", gen_ports[SOCKS_PER_SIDE + i % SOCKS_PER_SIDE], 0, "PCMU")
        relays.append(r)
    parent.send([(r.leg_a.local_port, r.leg_b.local_port) for r in relays])
    await asyncio.sleep(0.2)
    cpu0 = time.process_time()
    parent.send("go")
    sent, received, delays = await loop.run_in_executor(None, _recv, parent, SEND_SECONDS + 20)
    cpu = time.process_time() - cpu0
    proc.join(5)
    relayed = sum(leg.tx_packets for r in relays for leg in (r.leg_a, r.leg_b))
    await engine.stop()
    d = (delays - delays.min()) / 1e6 if len(delays) else np.zeros(1)
    return {
        "calls": calls,
        "pps": sent / SEND_SECONDS,
        "loss_pct": 100.0 * (sent - received) / max(1, sent),
        "p50_ms": float(np.percentile(d, 50)),
        "p99_ms": float(np.percentile(d, 99)),
        "cpu_pct": 100.0 * cpu / (SEND_SECONDS + 0.35),
        "us_per_pkt": 1e6 * cpu / max(1, relayed),
    }


# --- music on hold ------------------------------------------------------------------------------
async def moh_level(listeners: int, seconds: float = 2.0) -> dict[str, float]:
    engine = MediaEngine("127.0.0.1", 40000, 49999)
    sinks = []
    for _ in range(4):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        sinks.append(s)
    t = np.arange(8000 * 30) / 8000
    music = MusicOnHold(np.round(6000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16))
    eps = []
    for i in range(listeners):
        ep = await engine.open_endpoint()
        ep.set_remote("127.0.0.1", sinks[i % 4].getsockname()[1], 0, "PCMU", 101)
        ep.play_moh(music)
        eps.append(ep)
    await engine.start()
    await asyncio.sleep(0.2)
    ticks0, cpu0 = engine.clock.ticks, time.process_time()
    await asyncio.sleep(seconds)
    cpu, ticks = time.process_time() - cpu0, engine.clock.ticks - ticks0
    skipped = engine.clock.schedule.skipped if engine.clock.schedule else 0
    sent = sum(ep.stats().packets_sent for ep in eps)
    await engine.stop()
    for s in sinks:
        s.close()
    return {
        "listeners": listeners,
        "ms_per_tick": 1000 * cpu / max(1, ticks),
        "us_per_listener": 1e6 * cpu / max(1, ticks * listeners),
        "ticks": ticks,
        "expected_ticks": int(seconds / 0.02),
        "skipped": skipped,
        "packets": sent,
    }


def main() -> None:
    _raise_fd_limit()
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    loop_name = "asyncio"
    try:
        import uvloop

        factory, loop_name = uvloop.new_event_loop, "uvloop"
    except ImportError:
        pass

    def run(coro: Coroutine[Any, Any, dict[str, float]]) -> dict[str, float]:
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(coro)

    print(f"media bench: {loop_name}, {os.cpu_count()} CPUs, python {sys.version.split()[0]}")
    print(
        f"relay: G.711 calls, 50 pkt/s each way, {SEND_SECONDS:.0f} s per level, generator in another process"
    )
    print(
        f"{'calls':>6} {'pkt/s in':>9} {'loss %':>7} {'jit p50':>8} {'jit p99':>8} {'CPU %':>6} {'us/pkt':>7}"
    )
    best = 0
    best_p99 = 0.0
    for calls in RELAY_LEVELS:
        r = run(relay_level(calls))
        ok = r["loss_pct"] < 0.1 and r["p99_ms"] < 5.0
        print(
            f"{calls:>6} {r['pps']:>9.0f} {r['loss_pct']:>7.3f} {r['p50_ms']:>7.2f}ms {r['p99_ms']:>7.2f}ms"
            f" {r['cpu_pct']:>6.1f} {r['us_per_pkt']:>7.1f} {'ok' if ok else 'FAIL'}"
        )
        if not ok:
            break
        best, best_p99 = calls, r["p99_ms"]
    print(
        f"relay: {best} concurrent calls with <0.1 % loss, added jitter p99 {best_p99:.2f} ms (target 500, < 5 ms)"
    )
    print("music on hold: one shared source, G.711 to a sink")
    print(f"{'listeners':>9} {'ms/tick':>8} {'us/listener':>12} {'ticks':>9} {'skipped':>8}")
    best_moh = 0
    for n in MOH_LEVELS:
        m = run(moh_level(n))
        ok = m["skipped"] == 0 and m["ms_per_tick"] < 15.0
        print(
            f"{n:>9} {m['ms_per_tick']:>8.2f} {m['us_per_listener']:>12.2f}"
            f" {m['ticks']:>4}/{m['expected_ticks']:<4} {m['skipped']:>8} {'ok' if ok else 'FAIL'}"
        )
        if ok:
            best_moh = n
    print(f"music on hold: {best_moh} listeners sustained (target 1000)")


if __name__ == "__main__":
    main()
