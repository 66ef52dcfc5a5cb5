"""OPTIONS transactions per second handled by the switch on one core over UDP.

The switch runs as its own process pinned to core 0; the load generator is a separate
process pinned to core 1 and keeps a window of requests outstanding. CPU per operation is
the switch process's CPU time over the run divided by the transactions completed.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os

from bench.common import bench_switch, percentile, pin_to_core, process_cpu_seconds, report
from bench.loadgen import LoadResult, run_options

TOTAL = int(os.environ.get("BENCH_OPTIONS_TOTAL", "100000"))
WINDOW = int(os.environ.get("BENCH_OPTIONS_WINDOW", "64"))


def _load(host: str, port: int, total: int, window: int) -> LoadResult:
    pin_to_core(os.getpid(), 1)
    try:
        import uvloop

        return uvloop.run(run_options(host, port, total, window, 60.0))
    except ImportError:
        return asyncio.run(run_options(host, port, total, window, 60.0))


def main() -> None:
    switch = bench_switch()
    ctx = mp.get_context("spawn")
    try:
        with ctx.Pool(1) as pool:
            pool.apply(_load, (switch.host, switch.port, 2000, WINDOW))  # warm-up
            cpu0 = process_cpu_seconds(switch.proc.pid)
            result: LoadResult = pool.apply(_load, (switch.host, switch.port, TOTAL, WINDOW))
            cpu1 = process_cpu_seconds(switch.proc.pid)
    finally:
        switch.stop()
    done = max(result.completed, 1)
    lat = [x * 1000 for x in result.latencies]
    report("OPTIONS over UDP (switch on one core, load from another process)", [
        ("transactions", f"{result.completed} of {result.sent} sent, {result.timeouts} timed out"),
        ("rate", f"{result.completed / result.elapsed:,.0f} /s (target >= 10,000)"),
        ("switch CPU per OPTIONS", f"{(cpu1 - cpu0) / done * 1e6:.1f} us"),
        ("latency p50 / p99", f"{percentile(lat, 50):.2f} ms / {percentile(lat, 99):.2f} ms"),
        ("window", f"{WINDOW} outstanding"),
        ("statuses", str(result.statuses)),
    ])


if __name__ == "__main__":
    main()
