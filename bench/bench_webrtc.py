"""WebRTC calls on one core (issue 23): CPU per call through the aiortc gateway.

Run: ``python -m bench bench_webrtc`` (about a minute). Prints figures; asserts nothing.

The switch runs pinned to core 0. A client process pinned to core 1 plays N browsers with
aiortc (one WebSocket, N RTCPeerConnections, each sending a tone) and calls the echo test
`*43` N times: per call the gateway runs ICE and DTLS-SRTP, decodes the browser's Opus (or
PCMU when the browser prefers it) to G.711 toward the echo endpoint and encodes the echo
back, the same work as for a call to a desk phone. The switch's CPU time (utime + stime from /proc) is read over HOLD_S
seconds with every call up, minus the same window with none; "per call" is that divided by
N, as a share of one core. "Calls per core" is 80 % of a core divided by it. A call counts
as healthy when its browser hears its own tone back (the dominant frequency of its last
second).
"""

from __future__ import annotations

import asyncio
import base64
import json
import multiprocessing as mp
import secrets
import socket
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    bench_switch,
    percentile,
    pin_to_core,
    process_cpu_seconds,
    report,
)
from scenarios.switchproc import run_config

HOLD_S = 8.0
TONE_HZ = 700.0
LEVELS = (("opus", 5), ("opus", 10), ("opus", 20), ("PCMU", 20))
SECRET = "bench-secret-0123456789abcdef"


@dataclass(frozen=True)
class Result:
    codec: str
    calls: int
    answered: int
    healthy: int
    cpu: float  # switch CPU seconds over HOLD_S with the calls up
    idle: float  # the same with no call
    options_ms: tuple[float, float]  # SIP OPTIONS round trip p50, p99 with the calls up
    idle_options_ms: tuple[float, float]


def options_rtt(host: str, port: int, seconds: float) -> tuple[float, float]:
    """OPTIONS every 50 ms for `seconds`: the p50 and p99 round trip in ms. aiortc runs in
    the switch's one event loop, so this is what WebRTC media costs the signalling."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(1.0)
    lport = sock.getsockname()[1]
    rtts: list[float] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        branch = "z9hG4bK" + secrets.token_hex(6)
        msg = (f"OPTIONS sip:{host}:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{lport};"
               f"branch={branch}\r\nMax-Forwards: 70\r\nFrom: <sip:bench@127.0.0.1>;tag=b\r\n"
               f"To: <sip:{host}>\r\nCall-ID: {branch}\r\nCSeq: 1 OPTIONS\r\n"
               "Content-Length: 0\r\n\r\n").encode()
        t0 = time.monotonic()
        sock.sendto(msg, (host, port))
        try:
            while branch.encode() not in sock.recv(65535):
                pass
            rtts.append((time.monotonic() - t0) * 1000)
        except TimeoutError:
            rtts.append(1000.0)
        time.sleep(0.05)
    sock.close()
    return percentile(rtts, 50), percentile(rtts, 99)


def _timed(host: str, port: int, out: list[tuple[float, float]]) -> threading.Thread:
    thread = threading.Thread(target=lambda: out.append(options_rtt(host, port, HOLD_S - 1)))
    thread.start()
    return thread


def credentials(host: str, http_port: int) -> dict[str, str]:
    req = urllib.request.Request(f"http://{host}:{http_port}/api/v1/webrtc/credentials",
                                 method="POST", data=b"")
    token = base64.b64encode(b"501410:demo-501410").decode()
    req.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(req, timeout=5) as resp:
        return dict(json.loads(resp.read()))


def client(conn: Connection, host: str, port: int, user: str, password: str, codec: str,
           calls: int) -> None:
    """The browsers: register, N echo calls, then wait for the parent's word to hang up."""
    pin_to_core(0, 1)  # this process

    async def run() -> None:
        from tests.support.webrtc_client import BrowserClient, open_ws

        async with open_ws(host, port + 2) as ws:
            browser = BrowserClient(ws, host, port, user, password, tone=TONE_HZ,
                                    codecs=(codec,))
            ok = await browser.register()
            assert ok.status == 200, ok
            started = []
            for _ in range(calls):  # a ramp: one call every 100 ms
                started.append(asyncio.ensure_future(browser.call("*43")))
                await asyncio.sleep(0.1)
            done = await asyncio.gather(*started, return_exceptions=True)
            up = [c for c in done if not isinstance(c, BaseException)
                  and c.final is not None and c.final.status == 200]
            await asyncio.sleep(2.0)  # ICE and DTLS settle before the window
            conn.send(len(up))
            await asyncio.get_running_loop().run_in_executor(None, conn.recv)
            healthy = sum(1 for c in up
                          if abs(c.heard.dominant(last=1.0)[0] - TONE_HZ) < 20)
            for c in up:
                await browser.hang_up(c)
            await browser.close()
            conn.send(healthy)

    asyncio.run(run())


def measure(switch_pid: int, host: str, port: int, creds: dict[str, str], codec: str,
            calls: int) -> Result:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=client, args=(child, host, port, creds["username"],
                                            creds["password"], codec, calls))
    idle_rtt: list[tuple[float, float]] = []
    probe = _timed(host, port, idle_rtt)
    before = process_cpu_seconds(switch_pid)
    time.sleep(HOLD_S)
    idle = process_cpu_seconds(switch_pid) - before
    probe.join()
    proc.start()
    try:
        if not parent.poll(60):
            raise RuntimeError("the browsers never got their calls up")
        answered = parent.recv()
        busy_rtt: list[tuple[float, float]] = []
        probe = _timed(host, port, busy_rtt)
        before = process_cpu_seconds(switch_pid)
        time.sleep(HOLD_S)
        cpu = process_cpu_seconds(switch_pid) - before
        probe.join()
        parent.send("hang up")
        healthy = parent.recv() if parent.poll(60) else 0
    finally:
        proc.join(30)
        if proc.is_alive():
            proc.kill()
    return Result(codec, calls, answered, healthy, cpu, idle, busy_rtt[0], idle_rtt[0])


def main() -> None:
    data = Path(tempfile.mkdtemp(prefix="wte-bench-webrtc-"))
    no_limits = {f"calls.limits.{k}": 0 for k in (
        "account_concurrent", "account_per_minute", "account_costly_concurrent",
        "account_costly_per_minute", "site_concurrent", "site_per_minute",
        "site_costly_concurrent", "site_costly_per_minute")}
    config = run_config(data, overrides={**no_limits, "webrtc.max_legs": 500},
                        name="bench-webrtc.yaml")
    switch = bench_switch(config=config, env={"WTE_WEBRTC_SECRET": SECRET})
    results: list[Result] = []
    try:
        creds = credentials(switch.host, switch.http_port)
        for codec, calls in LEVELS:
            results.append(measure(switch.proc.pid, switch.host, switch.port, creds, codec,
                                   calls))
            time.sleep(2.0)  # the previous calls' gateways close
    finally:
        switch.stop()
    rows: list[tuple[str, str]] = []
    for r in results:
        busy = max(0.0, r.cpu - r.idle) / HOLD_S  # share of one core
        per_call = busy / max(1, r.answered)
        capacity = int(0.8 / per_call) if per_call > 0 else 0
        rows.append((f"{r.codec} x{r.calls}",
                     f"{r.answered} up, {r.healthy} hear their echo; switch core "
                     f"{100 * r.cpu / HOLD_S:.0f}% (idle {100 * r.idle / HOLD_S:.0f}%); "
                     f"{100 * per_call:.2f}% of a core per call -> ~{capacity} calls per "
                     f"core at 80%; OPTIONS p50/p99 {r.options_ms[0]:.1f}/"
                     f"{r.options_ms[1]:.1f} ms (idle {r.idle_options_ms[0]:.1f}/"
                     f"{r.idle_options_ms[1]:.1f})"))
    report(f"WebRTC calls through the gateway (echo *43), "
           f"{HOLD_S:.0f} s windows, switch pinned to core 0", rows)


if __name__ == "__main__":
    main()
