"""Shared pieces of the benchmarks: a switch process, CPU accounting, percentiles."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scenarios.switchproc import EXAMPLE_CONFIG, SwitchProcess, start_switch  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (Linux)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    """Resident memory of a process, from /proc (Linux)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def pin_to_core(pid: int, core: int) -> None:
    try:
        os.sched_setaffinity(pid, {core})
    except (AttributeError, OSError):
        pass


def bench_switch(config: Path | None = None, env: dict[str, str] | None = None) -> SwitchProcess:
    """A switch for a benchmark, pinned to core 0 (the load generator takes core 1)."""
    data = Path(tempfile.mkdtemp(prefix="wte-bench-"))
    running = start_switch(data, config or EXAMPLE_CONFIG, env=env)
    pin_to_core(running.proc.pid, 0)
    return running


def report(title: str, rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    sys.stdout.write(f"\n== {title}\n")
    for k, v in rows:
        sys.stdout.write(f"  {k:<{width}}  {v}\n")
    sys.stdout.flush()
