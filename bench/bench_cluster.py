"""REGISTERs per second through the Kamailio edge with 1 and 2 nodes, and the scaling factor
(issue 22).

The edge and the nodes are started as `wte cluster up` would (switch.cluster.launcher),
on a fresh PostgreSQL database (DATABASE_URL's server, default the test server); the load
generator (bench/loadgen_register.py: REGISTER -> 401 -> REGISTER with digest -> 200, the
200 leaving once the binding is committed to PostgreSQL) sends to the edge. Kamailio hashes
each Call-ID to a node, so the two rounds of a registration reach the same node.

On a 2-core machine the edge, the load generator and the nodes share the two cores: the
factor says what a second process per machine buys there, not what a second machine buys.
Calls per second through the edge are not measured yet (the call load generator sends its
in-dialog requests without the edge's Record-Route).

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
from pathlib import Path

from bench.bench_register import REALM, USERS_PER_SITE, password_of, site_users, write_plan
from bench.common import process_cpu_seconds, report
from bench.loadgen_register import RegisterResult, run_register

ACCOUNTS = int(os.environ.get("BENCH_CLUSTER_ACCOUNTS", "6000"))
WINDOW = int(os.environ.get("BENCH_CLUSTER_WINDOW", "100"))
ADMIN_URL = os.environ.get("TEST_DATABASE_URL",
                           "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


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


def _run(nodes_count: int, config: Path, url: str,
         users: list[str]) -> tuple[RegisterResult, float]:
    """The load's result and the CPU seconds the nodes spent on it (all nodes summed)."""
    from scenarios.switchproc import free_port_pair
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
            cpu0 = sum(process_cpu_seconds(p.pid) for p in procs[:-1])
            result: RegisterResult = pool.apply(_load, ("127.0.0.1", edge_port, users[200:]))
            time.sleep(1)  # peers apply the last notices
            cpu = sum(process_cpu_seconds(p.pid) for p in procs[:-1]) - cpu0
        return result, cpu
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
    sites = (2 * (ACCOUNTS + 200) + USERS_PER_SITE - 1) // USERS_PER_SITE
    config = write_plan([(s, USERS_PER_SITE, "passthrough") for s in range(sites)],
                        "switch: {auth: {max_failures: 1000000}}")
    users = [u for s in range(sites) for u in site_users(s, USERS_PER_SITE)]
    per_run = ACCOUNTS + 200
    rows: list[tuple[str, str]] = []
    rates: dict[int, float] = {}
    try:
        for i, count in enumerate((1, 2)):
            name = f"wte_bench_{uuid.uuid4().hex[:8]}"
            asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
            url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
            try:
                db_upgrade(url)
                for attempt in range(3):  # a free port taken meanwhile by another process
                    try:
                        r, cpu = _run(count, config, url,
                                      users[i * per_run:(i + 1) * per_run])
                        break
                    except RuntimeError:
                        if attempt == 2:
                            raise
            finally:
                asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            rates[count] = r.registered / r.elapsed if r.elapsed else 0.0
            rows.append((f"{count} node{'s' if count > 1 else ''}",
                         f"{rates[count]:,.0f} authenticated registrations/s "
                         f"({r.registered:,} of {r.accounts:,}, {r.errors} errors, "
                         f"{r.timeouts} timed out, {r.retransmissions} retransmitted; "
                         f"statuses {dict(sorted(r.statuses.items()))}); nodes' CPU "
                         f"{cpu / max(r.registered, 1) * 1e6:.0f} us per registration, "
                         "all nodes summed"))
    finally:
        shutil.rmtree(config.parent, ignore_errors=True)
    if rates.get(1):
        rows.append(("scaling factor 2 nodes / 1 node", f"{rates[2] / rates[1]:.2f} "
                     f"on {os.cpu_count()} cores (edge, load generator and nodes share them)"))
    report("REGISTER with digest through the Kamailio edge, bindings in PostgreSQL", rows)


if __name__ == "__main__":
    main()
