"""Cost per operation across load (issue 21): each workload at 100/s, at 30 % of its highest
clean rate and at that rate, beside the anchors of ../shared/bench/README.md.

For OPTIONS, authenticated REGISTER and calls without media, the switch runs pinned to core
0 and the load generator (a separate process) to core 1. The highest rate is found closed
loop (a window of operations in progress, as the other benches do); the lower levels are
open loop: one operation every 1/rate seconds, as phones load a switch. CPU per operation
is the switch process's own CPU time (utime + stime) from the first operation until the
switch is idle again (deferred work such as call records included) over the operations
completed: the figure that survives a shared, noisy machine.

    python -m bench.bench_levels              # or through `make bench`
    BENCH_LEVELS=options,register python -m bench.bench_levels
    BENCH_LEVELS=register_pg python -m bench.bench_levels   # bindings in PostgreSQL
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import multiprocessing.pool
import os
import shutil
import socket
import time
import urllib.request
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from bench.bench_register import REALM, USERS_PER_SITE, site_users, write_plan
from bench.common import bench_switch, percentile, pin_to_core, process_cpu_seconds, report
from bench.loadgen import LoadResult, run_options
from bench.loadgen_calls import CallsResult, run_calls
from bench.loadgen_register import RegisterResult, run_register

LOW_RATE = 100.0
LOW_S = float(os.environ.get("BENCH_LEVELS_LOW_S", "5"))  # seconds at 100/s
MID_S = float(os.environ.get("BENCH_LEVELS_MID_S", "4"))  # seconds at 30 %
OPTIONS_MAX = int(os.environ.get("BENCH_LEVELS_OPTIONS", "40000"))
REGISTER_MAX = int(os.environ.get("BENCH_LEVELS_REGISTERS", "10000"))
CALLS_MAX = int(os.environ.get("BENCH_LEVELS_CALLS", "3000"))
SETTLE_LIMIT_S = 20.0
OVERLOAD = float(os.environ.get("BENCH_LEVELS_OVERLOAD", "1.5"))  # x the highest rate
ADMIN_TOKEN = "bench-levels"  # the bench switch's /metrics (loopback only)

# CPU per operation of the anchors (../shared/bench/README.md, measured on this kind of
# machine): (name, seconds) pairs; the ratio printed is this switch's figure over theirs.
ANCHORS: dict[str, list[tuple[str, float]]] = {
    "options": [("Kamailio 5.6 (16-29 us)", 22e-6),
                ("naive Python responder, plain asyncio", 28.6e-6)],
    "register": [("Kamailio 5.6, 1,000-row table (93-132 us)", 110e-6)],
    "calls": [("Kamailio stateful proxy (~0.19 ms)", 190e-6),
              ("sippy 2.5 B2BUA (2.6-3.9 ms)", 2.7e-3)],
}


@dataclass(frozen=True)
class Level:
    label: str
    rate: float  # measured operations per second
    ops: int
    cpu_s: float
    p50_ms: float
    p99_ms: float
    clean: bool
    detail: str


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    pin_to_core(os.getpid(), 1)
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


def _options(host: str, port: int, total: int, rate: float) -> LoadResult:
    return _run(run_options(host, port, total, 64, 60.0, rate=rate))  # type: ignore[no-any-return]


def _register(host: str, port: int, users: list[str], rate: float,
              contact_port: int | None = None) -> RegisterResult:
    return _run(run_register(host, port, users, REALM, REALM, 100, 90.0,  # type: ignore[no-any-return]
                             rate=rate, contact_port=contact_port))


def _calls(host: str, port: int, total: int, rate: float, uas_port: int,
           pid: int) -> CallsResult:
    # one caller in five places its first call of the run (a 407 round, then nonce reuse
    # with nc + 1), whatever the level: the levels compare the same mix
    callers = site_users(0, USERS_PER_SITE)[:max(1, min(USERS_PER_SITE, total // 5))]
    return _run(run_calls(host, port, callers=callers,  # type: ignore[no-any-return]
                          callees=site_users(1, USERS_PER_SITE), realm=REALM, domain=REALM,
                          total=total, concurrency=30 if rate <= 0 else 100_000, hold_s=0,
                          rate=rate,
                          limit_s=max(20.0, total / max(rate, 1) * 3),
                          uas_port=uas_port, cpu_probe=lambda: process_cpu_seconds(pid)))


def _settle(pid: int) -> float:
    """Wait until the switch is idle (< 5 % of a core over 0.5 s); the CPU spent."""
    t0, c0 = time.perf_counter(), process_cpu_seconds(pid)
    last = c0
    while time.perf_counter() - t0 < SETTLE_LIMIT_S:
        time.sleep(0.5)
        now = process_cpu_seconds(pid)
        if now - last < 0.025:
            break
        last = now
    # the last idle half-second is not the workload's
    return max(0.0, last - c0)


def _level(label: str, pid: int, measure: Callable[[], tuple[int, float, list[float], bool,
                                                             str, float | None]],
           other_cpu: Callable[[], float] | None = None) -> Level:
    """One level; `other_cpu` (the database server's CPU seconds) is reported beside the
    switch's own figure, per operation."""
    cpu0 = process_cpu_seconds(pid)
    other0 = other_cpu() if other_cpu is not None else 0.0
    ops, elapsed, lat, clean, detail, cpu_run = measure()
    if cpu_run is None:
        cpu_run = process_cpu_seconds(pid) - cpu0
    cpu = cpu_run + _settle(pid)
    if other_cpu is not None:
        detail += f"; PostgreSQL CPU {(other_cpu() - other0) / max(ops, 1) * 1e6:.0f} us per op"
    ms = [x * 1000 for x in lat]
    return Level(label, ops / elapsed if elapsed else 0.0, ops, cpu,
                 percentile(ms, 50), percentile(ms, 99), clean, detail)


def _print(title: str, workload: str, levels: list[Level]) -> None:
    rows: list[tuple[str, str]] = []
    for lv in levels:
        per = lv.cpu_s / max(lv.ops, 1)
        unit = f"{per * 1e3:.2f} ms" if per >= 1e-3 else f"{per * 1e6:.1f} us"
        ratios = "; ".join(f"{per / a:.1f}x {name}" for name, a in ANCHORS[workload])
        rows.append((lv.label, f"{lv.rate:,.0f}/s, p50 {lv.p50_ms:.2f} ms, p99 "
                               f"{lv.p99_ms:.2f} ms, CPU {unit} per op "
                               f"({'clean' if lv.clean else 'NOT clean'}: {lv.detail})"))
        rows.append(("", f"ratio: {ratios}"))
    low, top = levels[0], levels[-1]
    if low.ops and top.ops and top.cpu_s:
        flat = (low.cpu_s / low.ops) / (top.cpu_s / top.ops)
        rows.append(("flatness", f"CPU per op at 100/s = {flat:.2f}x the figure at the highest"
                                 " rate (target <= 1.5x)"))
    report(title, rows)


def _levels(top_rate: float) -> list[float]:
    return [LOW_RATE, max(LOW_RATE, round(0.3 * top_rate))]


def _sip_figures(host: str, http_port: int) -> dict[str, Any]:
    """The switch's SIP counters (/metrics.json): 200s sent and the overload counters."""
    req = urllib.request.Request(f"http://{host}:{http_port}/metrics.json")
    req.add_header("Authorization", f"Bearer {ADMIN_TOKEN}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            sip = json.loads(resp.read())["sip"]
    except (OSError, ValueError, KeyError):
        return {}
    overload = sip.get("overload", {})
    return {"ok": int(sip.get("responses_sent", {}).get("200", 0)),
            "shed": int(overload.get("shed_503", 0)),
            "dropped": int(overload.get("dropped_late", 0)),
            "max_wait_ms": overload.get("max_queue_delay_ms", 0)}


def bench_options(pool: multiprocessing.pool.Pool) -> None:
    switch = bench_switch(env={"WTE_ADMIN_TOKEN": ADMIN_TOKEN})
    pid = switch.proc.pid
    h, p = switch.host, switch.port
    try:
        pool.apply(_options, (h, p, 3000, 0.0))  # warm-up

        def run(total: int, rate: float) -> tuple[int, float, list[float], bool, str, None]:
            r: LoadResult = pool.apply(_options, (h, p, total, rate))
            ok = r.timeouts == 0 and set(r.statuses) <= {200}
            return (r.completed, r.elapsed, r.latencies, ok,
                    f"{r.completed} of {r.sent}, {r.timeouts} lost, {r.statuses}", None)

        top = _level("highest (closed loop, 64 out)", pid, lambda: run(OPTIONS_MAX, 0.0))
        lows = [_level(f"at {rate:,.0f}/s", pid, lambda rate=rate: run(  # type: ignore[misc]
            int(rate * (LOW_S if rate == LOW_RATE else MID_S)), rate))
            for rate in _levels(top.rate)]
        # past saturation, open loop: the goodput must stay near the highest rate (the
        # switch sheds with 503 or drops stale datagrams) instead of collapsing
        over_rate = round(OVERLOAD * top.rate)
        pending = pool.apply_async(_options, (h, p, int(over_rate * MID_S), float(over_rate)))
        # the switch's own count of 200s over the middle of the offered period (the
        # generator's figure also spans its 2 s wait for stragglers after the last request)
        time.sleep(1.0)
        t0, m0 = time.perf_counter(), _sip_figures(h, switch.http_port)
        time.sleep(max(0.5, MID_S - 1.5))
        t1, m1 = time.perf_counter(), _sip_figures(h, switch.http_port)
        over: LoadResult = pending.get()
        m2 = _sip_figures(h, switch.http_port)
    finally:
        switch.stop()
    _print("OPTIONS across load", "options", [*lows, top])
    good = over.statuses.get(200, 0)
    offered_s = over.sent / over_rate if over_rate else 0.0
    rows = [
        ("goodput", f"{good / over.elapsed:,.0f} answered 200 per second "
                    f"({good / over.elapsed / top.rate * 100:.0f} % of the highest clean rate; "
                    f"{good:,} answered in time over {over.elapsed:.1f} s, the generator's "
                    "2 s wait for stragglers included)"),
        ("", f"{good / max(offered_s, 1e-9):,.0f} answered in time per second offered "
             f"({good / max(offered_s, 1e-9) / top.rate * 100:.0f} % of the highest clean "
             f"rate; {offered_s:.1f} s offered)"),
        ("shed", f"{over.statuses.get(503, 0):,} answered 503 (Retry-After), "
                 f"{over.timeouts:,} unanswered (dropped or lost), of {over.sent:,} sent"),
    ]
    if m0 and m1 and m2:
        during = (m1["ok"] - m0["ok"]) / (t1 - t0)
        rows += [
            ("switch", f"{during:,.0f} 200s sent per second in the middle of the offered "
                       f"period ({during / top.rate * 100:.0f} % of the highest clean rate; "
                       "/metrics)"),
            ("counted", f"{m2['dropped'] - m0['dropped']:,} dropped unread after waiting past "
                        f"overload_drop_delay, {m2['shed'] - m0['shed']:,} shed 503 "
                        f"(wte_sip_overload_total); longest wait {m2['max_wait_ms']} ms"),
        ]
    report(f"OPTIONS past saturation: offered {over_rate:,}/s open loop for {MID_S:.0f} s "
           f"({OVERLOAD:.1f}x the highest clean rate)", rows)


def bench_register(pool: multiprocessing.pool.Pool, database_url: str | None = None) -> None:
    sites = (REGISTER_MAX + USERS_PER_SITE - 1) // USERS_PER_SITE
    config = write_plan([(s, USERS_PER_SITE, "passthrough") for s in range(sites)],
                        "switch: {auth: {max_failures: 1000000}}")
    users = [u for s in range(sites) for u in site_users(s, USERS_PER_SITE)][:REGISTER_MAX]
    switch = bench_switch(config=config,
                          env={"DATABASE_URL": database_url} if database_url else None)
    pid = switch.proc.pid
    db_cpu = _postgres_cpu if database_url else None
    h, p = switch.host, switch.port
    # every run's phones give the same Contact, as a phone does from one registration to the
    # next (the generator's own socket changes from run to run); a socket of ours holds the
    # port, so the switch's keepalives toward it land somewhere
    contact = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    contact.bind((h, 0))
    contact_port = contact.getsockname()[1]
    try:
        pool.apply(_register, (h, p, users[:1000], 0.0, contact_port))  # warm-up

        def run(accounts: list[str], rate: float
                ) -> tuple[int, float, list[float], bool, str, None]:
            r: RegisterResult = pool.apply(_register, (h, p, accounts, rate, contact_port))
            ok = r.errors == 0 and r.timeouts == 0
            return (r.registered, r.elapsed, r.auth_latencies, ok,
                    f"{r.registered} of {r.accounts}, {r.timeouts} lost, "
                    f"{r.retransmissions} retransmitted", None)

        top = _level("highest (closed loop, 100 out)", pid, lambda: run(users, 0.0), db_cpu)
        lows = [_level(f"at {rate:,.0f}/s", pid, lambda rate=rate: run(  # type: ignore[misc]
            users[:int(rate * (LOW_S if rate == LOW_RATE else MID_S))], rate), db_cpu)
            for rate in _levels(top.rate)]
        # the registrar's steady state: every account registered already, each refreshing
        # its binding (the parser's caches then hold every phone's To and Contact)
        again = _level("re-registering (closed loop)", pid, lambda: run(users, 0.0), db_cpu)
    finally:
        contact.close()
        switch.stop()
        shutil.rmtree(config.parent, ignore_errors=True)
    where = " on PostgreSQL" if database_url else ""
    _print(f"REGISTER + digest (401 + 200, binding durable before the 200{where}) across "
           "load; latency of the authenticated round", "register", [*lows, again, top])


def _postgres_cpu() -> float:
    """CPU seconds of every process named postgres (the server's backends and helpers:
    the share of the work a PostgreSQL deployment moves out of the switch)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as f:
                if f.read().strip() != "postgres":
                    continue
            total += process_cpu_seconds(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    return total


def bench_register_pg(pool: multiprocessing.pool.Pool) -> None:
    """The REGISTER levels with the bindings in PostgreSQL (TEST_DATABASE_URL's server, a
    fresh database per run, dropped afterwards)."""
    import uuid

    from sqlalchemy.engine import make_url

    from bench.bench_cluster import ADMIN_URL
    from bench.bench_cluster import _admin as admin
    from switch.storage.cli import db_upgrade

    name = f"wte_bench_{uuid.uuid4().hex[:8]}"
    try:
        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    except (OSError, ImportError) as exc:
        report("REGISTER + digest on PostgreSQL", [("skipped", f"no PostgreSQL ({exc})")])
        return
    try:
        url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
        db_upgrade(url)
        bench_register(pool, database_url=url)
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_calls(pool: multiprocessing.pool.Pool) -> None:
    no_limits = ", ".join(f"{k}: 0" for k in (
        "account_concurrent", "account_per_minute", "account_costly_concurrent",
        "account_costly_per_minute", "site_concurrent", "site_per_minute",
        "site_costly_concurrent", "site_costly_per_minute"))
    config = write_plan([(0, USERS_PER_SITE, "passthrough"), (1, USERS_PER_SITE, "passthrough")],
                        "switch: {auth: {max_failures: 1000000}, "
                        f"calls: {{ring_timeout: 10, limits: {{{no_limits}}}}}}}")
    switch = bench_switch(config=config)
    pid = switch.proc.pid
    h, p = switch.host, switch.port
    uas_port = _free_udp_port()
    try:
        pool.apply(_calls, (h, p, 500, 0.0, uas_port, pid))  # warm-up
        _settle(pid)

        def run(total: int, rate: float) -> tuple[int, float, list[float], bool, str, float]:
            r: CallsResult = pool.apply(_calls, (h, p, total, rate, uas_port, pid))
            return (r.completed, r.elapsed, r.setup_latencies, not r.failed,
                    f"{r.completed} of {r.started}, failures {dict(r.failed) or 'none'}, "
                    f"{r.retransmissions} retransmitted", r.cpu_s)

        top = _level("highest (closed loop, 30 in progress)", pid, lambda: run(CALLS_MAX, 0.0))
        lows = [_level(f"at {rate:,.0f}/s", pid, lambda rate=rate: run(  # type: ignore[misc]
            int(rate * (LOW_S if rate == LOW_RATE else MID_S)), rate))
            for rate in _levels(top.rate)]
    finally:
        switch.stop()
        shutil.rmtree(config.parent, ignore_errors=True)
    _print("Calls INVITE..BYE without media across load (setup latency INVITE -> 200; CPU "
           "includes the call records written after the last call)", "calls", [*lows, top])


WORKLOADS = {"options": bench_options, "register": bench_register,
             "register_pg": bench_register_pg, "calls": bench_calls}


def main() -> None:
    chosen = [w for w in os.environ.get("BENCH_LEVELS", ",".join(WORKLOADS)).split(",") if w]
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        for name in chosen:
            WORKLOADS[name](pool)


if __name__ == "__main__":
    main()
