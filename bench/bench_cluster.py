"""REGISTERs and calls per second through the Kamailio edge with 1 and 2 nodes, and the
scaling factors (issue 22).

The edge and the nodes are started as `wte cluster up` would (switch.cluster.launcher),
on a fresh PostgreSQL database (DATABASE_URL's server, default the test server); the load
generator (bench/loadgen_register.py: REGISTER -> 401 -> REGISTER with digest -> 200, the
200 leaving once the binding is committed to PostgreSQL) sends to the edge. Kamailio hashes
each Call-ID to a node, so the two rounds of a registration reach the same node.

On a 2-core machine the edge, the load generator and the nodes share the two cores: the
factor says what a second process per machine buys there, not what a second machine buys.
Calls per second: the call load generator (bench/loadgen_calls.py) plays caller and
callee through the edge; its in-dialog requests ignore Record-Route, which the edge relays
when they name a node (cluster/kamailio.cfg).

    python -m bench.bench_cluster            # or `make bench`
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench.bench_register import REALM, USERS_PER_SITE, password_of, site_users, write_plan
from bench.common import process_cpu_seconds, report
from bench.loadgen_calls import CallsResult, run_calls
from bench.loadgen_register import RegisterResult, run_register

ACCOUNTS = int(os.environ.get("BENCH_CLUSTER_ACCOUNTS", "6000"))
CALLS = int(os.environ.get("BENCH_CLUSTER_CALLS", "3000"))
CALLS_WINDOW = 30
CALLS_LIMIT_S = 20.0
CALLERS, CALLEES, FIRST_REGISTER_SITE = 0, 1, 2  # site codes
WINDOW = int(os.environ.get("BENCH_CLUSTER_WINDOW", "100"))
ADMIN_URL = os.environ.get("TEST_DATABASE_URL",
                           "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


def _calls(host: str, port: int, uas_port: int, total: int) -> CallsResult:
    """Closed-loop calls (hold 0 s, no media) from site 00 to site 01, through the edge."""
    coro = run_calls(host, port, callers=site_users(CALLERS, USERS_PER_SITE),
                     callees=site_users(CALLEES, USERS_PER_SITE), realm=REALM, domain=REALM,
                     total=total, concurrency=CALLS_WINDOW, hold_s=0, rate=0,
                     limit_s=CALLS_LIMIT_S, uas_port=uas_port, password=password_of)
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


def _load(host: str, port: int, users: list[str]) -> RegisterResult:
    coro = run_register(host, port, users, REALM, REALM, WINDOW, 60.0, password=password_of)
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


async def _admin(sql: str) -> None:
    import asyncpg

    from switch.cluster.listener import asyncpg_dsn

    conn = await asyncpg.connect(asyncpg_dsn(ADMIN_URL))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _wait_ready(log: Path, proc: subprocess.Popen[bytes], mark: str, limit: float = 60) -> None:
    end = time.monotonic() + limit
    while mark not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > end:
            raise RuntimeError(f"{log.name}: not ready\n{log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.2)


@dataclass
class Measured:
    register: RegisterResult
    register_cpu: float  # the nodes' CPU seconds, all nodes summed
    calls: CallsResult
    calls_cpu: float


def _run(nodes_count: int, config: Path, url: str, users: list[str]) -> Measured:
    """REGISTERs, then calls, through one edge in front of `nodes_count` nodes."""
    from scenarios.switchproc import free_port_pair, free_udp_port
    from switch.cluster.launcher import (
        NodeSpec,
        kamailio_binary,
        kamailio_command,
        node_command,
        prepare_node_dirs,
        write_edge,
    )

    run_dir = Path(tempfile.mkdtemp(prefix="wte-bench-cluster-"))
    binary = kamailio_binary()
    assert binary is not None
    used: list[int] = []
    edge_port = free_port_pair()
    used += range(edge_port, edge_port + 5)
    nodes = []
    for i in range(nodes_count):
        port = free_port_pair(avoid=used)
        used += range(port, port + 5)
        nodes.append(NodeSpec(f"bench{i + 1}", "127.0.0.1", port,
                              (20000 + 3000 * i, 22999 + 3000 * i), run_dir / f"bench{i + 1}"))
    cfg = write_edge(run_dir, "127.0.0.1", edge_port, nodes)
    prepare_node_dirs(nodes, run_dir / "shared")
    env = dict(os.environ, DATABASE_URL=url, PYTHONUNBUFFERED="1")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for n in nodes:
            log = run_dir / f"{n.node_id}.log"
            with log.open("wb") as out:
                procs.append(subprocess.Popen(node_command(n, config), stdout=out, stderr=out,
                                              env=env))
            _wait_ready(log, procs[-1], " ready")
        log = run_dir / "kamailio.log"
        with log.open("wb") as out:
            procs.append(subprocess.Popen(kamailio_command(binary, cfg, run_dir), stdout=out,
                                          stderr=out))
        _wait_ready(log, procs[-1], "Listening on")
        time.sleep(2)  # the first OPTIONS probes
        with mp.get_context("spawn").Pool(1) as pool:
            pool.apply(_load, ("127.0.0.1", edge_port, users[:200]))  # warm-up

            def nodes_cpu() -> float:
                return sum(process_cpu_seconds(p.pid) for p in procs[:-1])

            cpu0 = nodes_cpu()
            reg: RegisterResult = pool.apply(_load, ("127.0.0.1", edge_port, users[200:]))
            time.sleep(1)  # peers apply the last notices
            cpu1 = nodes_cpu()
            uas_port = free_udp_port()
            pool.apply(_calls, ("127.0.0.1", edge_port, uas_port, 200))  # warm-up
            time.sleep(1)
            cpu2 = nodes_cpu()
            calls: CallsResult = pool.apply(_calls, ("127.0.0.1", edge_port, uas_port, CALLS))
            cpu3 = nodes_cpu()
        return Measured(reg, cpu1 - cpu0, calls, cpu3 - cpu2)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(run_dir, ignore_errors=True)


def main() -> None:
    from switch.cluster.launcher import kamailio_binary, kamailio_modules
    from switch.storage.cli import db_upgrade

    if kamailio_binary() is None or kamailio_modules() is None:
        report("cluster through the Kamailio edge", [("skipped", "kamailio is not installed")])
        return
    per_run = ACCOUNTS + 200
    sites = FIRST_REGISTER_SITE + (2 * per_run + USERS_PER_SITE - 1) // USERS_PER_SITE
    # the load comes from a few hundred accounts at rates no phone reaches: the toll-fraud
    # brakes (per-account and per-site limits) are lifted, as in bench_calls
    no_limits = ", ".join(f"{k}: 0" for k in (
        "account_concurrent", "account_per_minute", "account_costly_concurrent",
        "account_costly_per_minute", "site_concurrent", "site_per_minute",
        "site_costly_concurrent", "site_costly_per_minute"))
    config = write_plan([(s, USERS_PER_SITE, "passthrough") for s in range(sites)],
                        "switch: {auth: {max_failures: 1000000}, "
                        f"calls: {{ring_timeout: 10, limits: {{{no_limits}}}}}}}")
    users = [u for s in range(FIRST_REGISTER_SITE, sites)
             for u in site_users(s, USERS_PER_SITE)]
    regs: list[tuple[str, str]] = []
    calls: list[tuple[str, str]] = []
    reg_rate: dict[int, float] = {}
    call_rate: dict[int, float] = {}
    try:
        for i, count in enumerate((1, 2)):
            name = f"wte_bench_{uuid.uuid4().hex[:8]}"
            asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
            url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
            try:
                db_upgrade(url)
                for attempt in range(3):  # a free port taken meanwhile by another process
                    try:
                        m = _run(count, config, url, users[i * per_run:(i + 1) * per_run])
                        break
                    except RuntimeError:
                        if attempt == 2:
                            raise
            finally:
                asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            label = f"{count} node{'s' if count > 1 else ''}"
            r = m.register
            reg_rate[count] = r.registered / r.elapsed if r.elapsed else 0.0
            regs.append((label, f"{reg_rate[count]:,.0f} authenticated registrations/s "
                         f"({r.registered:,} of {r.accounts:,}, {r.errors} errors, "
                         f"{r.timeouts} timed out); nodes' CPU "
                         f"{m.register_cpu / max(r.registered, 1) * 1e6:.0f} us per "
                         "registration, all nodes summed"))
            c = m.calls
            call_rate[count] = c.completed / c.elapsed if c.elapsed else 0.0
            calls.append((label, f"{call_rate[count]:,.0f} calls/s ({c.completed:,} completed "
                          f"of {c.started:,}, failures {dict(sorted(c.failed.items())) or 'none'}"
                          f"); nodes' CPU {m.calls_cpu / max(c.completed, 1) * 1000:.2f} ms "
                          "per call, all nodes summed"))
    finally:
        shutil.rmtree(config.parent, ignore_errors=True)
    cores = f"on {os.cpu_count()} cores (edge, load generator and nodes share them)"
    if reg_rate.get(1):
        regs.append(("scaling factor 2 nodes / 1 node", f"{reg_rate[2] / reg_rate[1]:.2f} "
                     + cores))
    if call_rate.get(1):
        calls.append(("scaling factor 2 nodes / 1 node", f"{call_rate[2] / call_rate[1]:.2f} "
                      + cores))
    report("REGISTER with digest through the Kamailio edge, bindings in PostgreSQL", regs)
    report(f"Calls through the Kamailio edge (INVITE..BYE, no media, {CALLS_WINDOW} in "
           "progress)", calls)


if __name__ == "__main__":
    main()
