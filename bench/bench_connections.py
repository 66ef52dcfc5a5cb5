"""Connection flood (issue 20.3): 20,000 idle TCP connections from one source.

Opens ``BENCH_CONN_TOTAL`` (default 20,000) TCP connections to the switch from 127.0.0.2
and leaves them idle; the per-source cap (256 by default) keeps that many, the rest are reset
at once.  Meanwhile a client on 127.0.0.1 is answered over TCP and UDP.  Reports how many
were held and refused, the switch's CPU per refused connection, and the answer times of the
legitimate client under the flood.

    .venv/bin/python -m bench bench_connections
"""

from __future__ import annotations

import os
import resource
import socket
import time

from bench.common import bench_switch, process_cpu_seconds, report
from tests.support.sipclient import StreamClient, UdpClient, options_request

TOTAL = int(os.environ.get("BENCH_CONN_TOTAL", "20000"))
ATTACKER = "127.0.0.2"


def _alive(s: socket.socket) -> bool:
    s.setblocking(False)
    try:
        return s.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def _options_ms(host: str, port: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    tcp = StreamClient(host, port)
    tcp.send(options_request(host, port, "TCP", local_port=tcp.local_port))
    assert tcp.recv().status == 200
    tcp.close()
    t1 = time.perf_counter()
    udp = UdpClient(host, port)
    udp.send(options_request(host, port, "UDP", local_port=udp.local_port))
    assert udp.recv().status == 200
    udp.close()
    return 1000 * (t1 - t0), 1000 * (time.perf_counter() - t1)


def main() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    switch = bench_switch()
    held: list[socket.socket] = []
    refused = 0
    failed = 0
    worst_tcp = worst_udp = 0.0
    try:
        cpu0 = process_cpu_seconds(switch.proc.pid)
        t0 = time.monotonic()
        pending: list[socket.socket] = []
        for i in range(TOTAL):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((ATTACKER, 0))
            s.settimeout(5.0)
            try:
                s.connect((switch.host, switch.port))
            except OSError:
                failed += 1
                s.close()
                continue
            pending.append(s)
            if len(pending) >= 500 or i == TOTAL - 1:
                time.sleep(0.05)
                for p in pending:
                    if _alive(p):
                        held.append(p)
                    else:
                        refused += 1
                        p.close()
                pending = []
                if i % 5000 < 500:
                    tcp_ms, udp_ms = _options_ms(switch.host, switch.port)
                    worst_tcp, worst_udp = max(worst_tcp, tcp_ms), max(worst_udp, udp_ms)
        elapsed = time.monotonic() - t0
        cpu = process_cpu_seconds(switch.proc.pid) - cpu0
        tcp_ms, udp_ms = _options_ms(switch.host, switch.port)
        still = sum(_alive(s) for s in held)
    finally:
        for s in held:
            s.close()
        switch.stop()
    report("connection flood: idle TCP connections from one source", [
        ("attempted", f"{TOTAL} in {elapsed:.1f} s (connect failures {failed})"),
        ("held (per-source cap)", f"{len(held)} (still open at the end: {still})"),
        ("refused", f"{refused}"),
        ("switch CPU", f"{cpu:.2f} s, {1e6 * cpu / max(1, TOTAL):.0f} us per connection"),
        ("phone on 127.0.0.1", f"OPTIONS over TCP {tcp_ms:.1f} ms, UDP {udp_ms:.1f} ms "
                               f"(worst during the flood {worst_tcp:.1f} / {worst_udp:.1f} ms)"),
    ])


if __name__ == "__main__":
    main()
