"""Calls per second through the switch, and concurrent calls held (issues 6 and 21).

Targets: 300 calls per second on one core without media; 500 concurrent anchored calls;
2,000 calls held without media at less memory and CPU than sippy (16.3 KB per call).

The switch runs pinned to core 0 with a generated plan: callers on site 00 (media
passthrough) and on site 02 (media anchored through the relay), callees on site 01. The
load generator (bench/loadgen_calls.py) is a separate process pinned to core 1 that plays
both ends: its UAS socket registers the callees with digest and answers the B-leg INVITEs
(180, 200 + SDP), its UAC socket places the calls (INVITE + SDP offer in PCMU, digest with
407, ACK, BYE). A call is INVITE/407/ACK (first call of each caller only, then nonce reuse
with nc + 1), INVITE, 100, 180, 200, ACK, BYE, 200 on the A side and INVITE, 180, 200, ACK,
BYE, 200 on the B side. No RTP is sent (signalling and relay set-up/tear-down only).

CPU per call is the switch process's CPU time over the run divided by the calls completed.

    python -m bench.bench_calls            # or through `make bench`
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import shutil
import socket
import time
from dataclasses import dataclass

from bench.bench_register import REALM, site_users, write_plan
from bench.common import (
    bench_switch,
    percentile,
    pin_to_core,
    process_cpu_seconds,
    report,
    rss_bytes,
)
from bench.loadgen_calls import CallsResult, run_calls
from bench.loadgen_register import udp_rcvbuf_errors

USERS = 1000
CPS_CALLS = int(os.environ.get("BENCH_CALLS_TOTAL", "5000"))
CPS_WINDOW = int(os.environ.get("BENCH_CALLS_WINDOW", "30"))
CPS_LIMIT_S = float(os.environ.get("BENCH_CALLS_LIMIT_S", "12"))
SETTLE_LIMIT_S = 25.0
HELD = int(os.environ.get("BENCH_CALLS_HELD", "1000"))  # anchored: 2 relay ports each
HELD_PLAIN = int(os.environ.get("BENCH_CALLS_HELD_PLAIN", "2000"))  # without media
HOLD_S = float(os.environ.get("BENCH_CALLS_HOLD_S", "5"))
RAMP_RATE = float(os.environ.get("BENCH_CALLS_RAMP_RATE", "200"))
PASSTHROUGH, CALLEES, ANCHORED = 0, 1, 2  # site codes


@dataclass(frozen=True)
class Run:
    callers: int  # site code of the callers (its media mode applies)
    total: int
    concurrency: int
    hold_s: float
    rate: float
    limit_s: float


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _load(host: str, port: int, run: Run, uas_port: int, pid: int) -> CallsResult:
    pin_to_core(os.getpid(), 1)
    coro = run_calls(host, port, callers=site_users(run.callers, USERS),
                     callees=site_users(CALLEES, USERS), realm=REALM, domain=REALM,
                     total=run.total, concurrency=run.concurrency, hold_s=run.hold_s,
                     rate=run.rate, limit_s=run.limit_s, uas_port=uas_port,
                     cpu_probe=lambda: process_cpu_seconds(pid),
                     rss_probe=lambda: rss_bytes(pid))
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


@dataclass
class Measured:
    result: CallsResult
    cpu_s: float  # switch CPU while calls ran (the callees' registration excluded)
    drops: int
    settle_cpu_s: float = 0.0  # switch CPU after the run until it is idle (deferred work)
    settle_s: float = 0.0


def _settle(pid: int) -> tuple[float, float]:
    """Wait until the switch is idle (< 5 % of a core over 0.5 s): (CPU spent, seconds)."""
    t0, c0 = time.perf_counter(), process_cpu_seconds(pid)
    last = c0
    while time.perf_counter() - t0 < SETTLE_LIMIT_S:
        time.sleep(0.5)
        now = process_cpu_seconds(pid)
        if now - last < 0.025:
            break
        last = now
    return process_cpu_seconds(pid) - c0, time.perf_counter() - t0


def _measure(pool: mp.pool.Pool, host: str, port: int, pid: int, run: Run,
             uas_port: int) -> Measured:
    drops0 = udp_rcvbuf_errors()
    result: CallsResult = pool.apply(_load, (host, port, run, uas_port, pid))
    drops = udp_rcvbuf_errors() - drops0
    settle_cpu, settle_s = _settle(pid)
    return Measured(result, result.cpu_s, drops, settle_cpu, settle_s)


def _rows(m: Measured) -> list[tuple[str, str]]:
    r = m.result
    done = max(r.completed, 1)
    lat = [x * 1000 for x in r.setup_latencies]
    failures = dict(sorted(r.failed.items())) or "none"
    return [
        ("calls", f"{r.completed:,} completed of {r.started:,} started ({r.answered:,} answered)"),
        ("rate", f"{r.completed / r.elapsed:,.0f} calls/s over {r.elapsed:.1f} s"),
        ("switch CPU per call", f"{m.cpu_s / done * 1000:.2f} ms during the run "
                                f"(=> {done / m.cpu_s if m.cpu_s else 0:,.0f} calls/s per core)"),
        ("  with deferred work", f"{(m.cpu_s + m.settle_cpu_s) / done * 1000:.2f} ms "
                                 f"(+{m.settle_cpu_s:.2f} s CPU over {m.settle_s:.1f} s after "
                                 "the last call, call records still being written; "
                                 f"=> {done / (m.cpu_s + m.settle_cpu_s) if m.cpu_s else 0:,.0f}"
                                 " calls/s sustained per core)"),
        ("setup latency INVITE -> 200", f"p50 {percentile(lat, 50):.1f} ms, "
                                        f"p99 {percentile(lat, 99):.1f} ms"),
        ("failures", str(failures)),
        ("407 rounds", f"{r.challenges} ({r.stale} stale)"),
        ("UDP losses", f"{r.retransmissions} retransmissions by the generator; {m.drops} "
                       "datagrams dropped on full receive buffers (host-wide count)"),
        ("callee side", f"{r.uas_invites:,} INVITEs answered, {r.uas_acks:,} ACKs, "
                        f"{r.uas_byes:,} BYEs"),
    ]


def main() -> None:
    # the load comes from a few hundred accounts at rates no phone reaches: per-account and
    # per-site limits (toll fraud brake) are lifted so the figures measure the call path
    no_limits = ", ".join(f"{k}: 0" for k in (
        "account_concurrent", "account_per_minute", "account_costly_concurrent",
        "account_costly_per_minute", "site_concurrent", "site_per_minute",
        "site_costly_concurrent", "site_costly_per_minute"))
    switch_yaml = ("switch: {auth: {max_failures: 1000000}, "
                   f"calls: {{ring_timeout: 10, limits: {{{no_limits}}}}}, "
                   "media: {port_min: 20000, port_max: 29999}}")
    config = write_plan([(PASSTHROUGH, USERS, "passthrough"), (CALLEES, USERS, "passthrough"),
                         (ANCHORED, USERS, "anchor")], switch_yaml)
    switch = bench_switch(config=config)
    uas_port = _free_udp_port()
    pid = switch.proc.pid
    ctx = mp.get_context("spawn")
    try:
        with ctx.Pool(1) as pool:
            h, p = switch.host, switch.port
            # the held runs first: their memory growth is measured from a switch whose
            # heap the closed-loop runs (and their transactions kept 32 s for Timer J)
            # have not grown yet, so it is not hidden by reused free memory
            _measure(pool, h, p, pid, Run(PASSTHROUGH, 50, 10, 0, 0, 20), uas_port)
            held_plain = _measure(pool, h, p, pid, Run(
                PASSTHROUGH, HELD_PLAIN, HELD_PLAIN, HOLD_S, RAMP_RATE,
                HELD_PLAIN / RAMP_RATE * 2 + HOLD_S + 20), uas_port)
            limit = HELD / RAMP_RATE * 2 + HOLD_S + 20
            held = _measure(pool, h, p, pid, Run(ANCHORED, HELD, HELD, HOLD_S, RAMP_RATE,
                                                 limit), uas_port)
            _measure(pool, h, p, pid, Run(PASSTHROUGH, 1000, CPS_WINDOW, 0, 0, 20), uas_port)
            plain = _measure(pool, h, p, pid, Run(PASSTHROUGH, CPS_CALLS, CPS_WINDOW, 0, 0,
                                                  CPS_LIMIT_S), uas_port)
            anchored = _measure(pool, h, p, pid, Run(ANCHORED, CPS_CALLS, CPS_WINDOW, 0, 0,
                                                     CPS_LIMIT_S), uas_port)
    finally:
        switch.stop()
        shutil.rmtree(config.parent, ignore_errors=True)
    report(f"Calls without media (site media: passthrough), {CPS_WINDOW} calls in progress, "
           "hold 0 s", [
        *_rows(plain),
        ("compare", "target >= 300 calls/s on one core; sippy B2BUA 300 CPS at ~2.7 ms CPU "
                    "per call; Kamailio (stateful proxy) 4,500 CPS at ~0.19 ms"),
    ])
    report("Calls with anchored media (relay opened and closed per call, no RTP sent), "
           f"{CPS_WINDOW} in progress, hold 0 s", _rows(anchored))
    _report_held(f"Concurrent calls without media (site media: passthrough): {HELD_PLAIN}",
                 held_plain, "the issue 21 anchor: sippy 2.5 holds 2,000 calls at 16.3 KB each")
    _report_held(f"Concurrent anchored calls: {HELD}", held,
                 "two relay ports per call; target >= 500 held")


def _report_held(title: str, held: Measured, compare: str) -> None:
    r = held.result
    up = max(r.max_held, 1)
    report(f"{title} started at {RAMP_RATE:.0f}/s, all held {HOLD_S:.0f} s once established, "
           f"released at {RAMP_RATE:.0f}/s (no RTP)", [
        ("held at once", f"{r.max_held:,} established simultaneously"),
        ("established", f"{r.answered:,} of {r.started:,}"),
        ("cleanly released", f"{r.completed:,} (BYE answered 200; {r.uas_byes:,} BYEs reached "
                             "the callee)"),
        ("switch CPU", f"{held.cpu_s:.2f} s over the run "
                       f"({held.cpu_s / max(r.completed, 1) * 1000:.2f} ms per call)"),
        ("switch CPU while held", f"{r.hold_cpu_s:.2f} s over {r.hold_s:.1f} s with "
                                  f"{r.max_held} calls up = "
                                  f"{r.hold_cpu_s / max(r.hold_s, 1e-9) * 100:.1f} % of a core"),
        ("switch memory while held", f"RSS +{r.hold_rss_growth / 2**20:.1f} MiB from the run's "
                                     f"start = {r.hold_rss_growth / up / 1024:.1f} KB per call "
                                     "held"),
        ("compare", compare),
        ("setup latency INVITE -> 200",
         f"p50 {percentile([x * 1000 for x in r.setup_latencies], 50):.1f} ms, "
         f"p99 {percentile([x * 1000 for x in r.setup_latencies], 99):.1f} ms"),
        ("failures", str(dict(sorted(r.failed.items())) or "none")),
        ("UDP losses", f"{r.retransmissions} retransmissions; {held.drops} datagrams dropped"),
    ])

if __name__ == "__main__":
    main()
