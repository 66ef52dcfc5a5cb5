"""What a wake-up costs on this machine, whoever answers (issue 21, the flatness target).

The switch's CPU per OPTIONS at 100/s is many times its figure at its highest rate. This
bench asks whether that is the switch or the machine: it offers the same OPTIONS load at
100/s and closed loop to two other responders pinned to core 0 like the switch, and prints
their CPU per operation at each level and the ratio:

- Kamailio (Debian package, one UDP worker), answering statelessly from its script
  (`sl_send_reply`); skipped when kamailio is not installed;
- a minimal Python responder on uvloop (the shape of the "naive Python responder" anchor of
  ../shared/bench/README.md): one datagram in, one fixed answer out, no parsing.

    python -m bench.bench_flatness
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_levels import LOW_RATE, LOW_S, _options
from bench.common import pin_to_core, process_cpu_seconds, report
from bench.loadgen import LoadResult

TOP_OPS = int(os.environ.get("BENCH_FLATNESS_OPS", "40000"))

KAMAILIO_CFG = """#!KAMAILIO
debug=0
log_stderror=yes
children=1
auto_aliases=no
listen=udp:{host}:{port}
mpath="{modules}"
loadmodule "sl.so"
request_route {{
    if (method == "OPTIONS") {{
        sl_send_reply("200", "OK");
        exit;
    }}
    sl_send_reply("501", "Not Implemented");
}}
"""

# Answers every datagram with a fixed 200 built from the request's Via, Call-ID, CSeq,
# From and To lines: the least a SIP responder can do (no transaction, no validation).
RESPONDER = r'''
import asyncio, sys, uvloop
NEEDED = (b"via:", b"from:", b"to:", b"call-id:", b"cseq:")
class P(asyncio.DatagramProtocol):
    def connection_made(self, t): self.t = t
    def datagram_received(self, data, addr):
        lines = [l for l in data.split(b"\r\n") if l[:8].lower().startswith(NEEDED)]
        self.t.sendto(b"SIP/2.0 200 OK\r\n" + b"\r\n".join(lines)
                      + b"\r\nContent-Length: 0\r\n\r\n", addr)
async def main():
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(P, local_addr=(sys.argv[1], int(sys.argv[2])))
    print("ready", flush=True)
    await asyncio.Event().wait()
uvloop.run(main())
'''


def _free_udp_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _tree_cpu(root: int) -> float:
    """CPU seconds of a process and of its children (Kamailio forks its workers)."""
    pids = [root]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == root:
                pids.append(int(entry))
    total = 0.0
    for pid in pids:
        try:
            total += process_cpu_seconds(pid)
        except OSError:
            pass
    return total


def _measure(pool: mp.pool.Pool, host: str, port: int, root: int) -> list[tuple[str, str]]:
    pool.apply(_options, (host, port, 3000, 0.0))  # warm-up
    rows: list[tuple[str, str]] = []
    per: dict[str, float] = {}
    for label, total, rate in (("highest (closed loop, 64 out)", TOP_OPS, 0.0),
                               (f"at {LOW_RATE:,.0f}/s", int(LOW_RATE * LOW_S), LOW_RATE)):
        time.sleep(1.0)
        cpu0 = _tree_cpu(root)
        r: LoadResult = pool.apply(_options, (host, port, total, rate))
        time.sleep(0.5)  # the responder's last answers and any deferred work
        cpu = _tree_cpu(root) - cpu0
        per[label] = cpu / max(r.completed, 1)
        rows.append((label, f"{r.completed / r.elapsed:,.0f}/s, CPU {per[label] * 1e6:.1f} us "
                            f"per op ({r.completed} of {r.sent}, {r.timeouts} lost)"))
    top, low = per["highest (closed loop, 64 out)"], per[f"at {LOW_RATE:,.0f}/s"]
    rows.append(("flatness", f"CPU per op at 100/s = {low / top:.2f}x the figure at the "
                             "highest rate"))
    return rows


def bench_kamailio(pool: mp.pool.Pool, host: str) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from switch.cluster.launcher import kamailio_binary, kamailio_modules

    binary, modules = kamailio_binary(), kamailio_modules()
    title = "Kamailio 5.6 answering OPTIONS statelessly, one worker, pinned to core 0"
    if binary is None or modules is None:
        report(title, [("skipped", "kamailio is not installed (Debian package kamailio)")])
        return
    port = _free_udp_port(host)
    with tempfile.TemporaryDirectory(prefix="wte-flat-") as tmp:
        cfg = Path(tmp, "kamailio.cfg")
        cfg.write_text(KAMAILIO_CFG.format(host=host, port=port, modules=modules))
        proc = subprocess.Popen(
            ["taskset", "-c", "0", binary, "-DD", "-E", "-f", str(cfg), "-Y", tmp,
             "-P", str(Path(tmp, "k.pid")), "-m", "64", "-M", "8"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(1.5)
            if proc.poll() is not None:
                report(title, [("skipped", f"kamailio exited with {proc.returncode}")])
                return
            report(title, _measure(pool, host, port, proc.pid))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)


def bench_python(pool: mp.pool.Pool, host: str) -> None:
    port = _free_udp_port(host)
    proc = subprocess.Popen([sys.executable, "-c", RESPONDER, host, str(port)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        pin_to_core(proc.pid, 0)
        report("minimal Python responder on uvloop (no parsing), pinned to core 0",
               _measure(pool, host, port, proc.pid))
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    host = "127.0.0.1"
    with mp.get_context("spawn").Pool(1) as pool:
        bench_python(pool, host)
        bench_kamailio(pool, host)


if __name__ == "__main__":
    main()
