"""A cluster for system tests: its own PostgreSQL database, Kamailio and N `wte serve`
nodes on loopback, built with the launcher's helpers (switch.cluster.launcher)."""

from __future__ import annotations

import asyncio
import atexit
import os
import re
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from scenarios.switchproc import REPO, free_port_pair
from switch.cluster.launcher import (
    NodeSpec,
    kamailio_binary,
    kamailio_command,
    node_command,
    prepare_node_dirs,
    write_edge,
)

ADMIN_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


def _dsn(url: str) -> str:
    from switch.cluster.listener import asyncpg_dsn

    return asyncpg_dsn(url)


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_dsn(ADMIN_URL))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_database() -> str:
    """A fresh database for one test module (tests never share a cluster's tables)."""
    name = f"wte_cluster_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    return ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _fetch(url: str, sql: str, *args: object) -> list[dict[str, object]]:
    import asyncpg

    conn = await asyncpg.connect(_dsn(url))
    try:
        return [dict(r) for r in await conn.fetch(sql, *args)]
    finally:
        await conn.close()


def query(url: str, sql: str, *args: object) -> list[dict[str, object]]:
    return asyncio.run(_fetch(url, sql, *args))


@dataclass
class Proc:
    name: str
    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)

    def text(self) -> str:
        return "\n".join(self.lines)


def _die_with_parent() -> None:
    """In the child: SIGKILL when the test process dies, even by a crash (PR_SET_PDEATHSIG),
    so that no edge or node outlives an interrupted run."""
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _spawn(name: str, cmd: list[str], env: dict[str, str], ready_mark: str) -> Proc:
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env, preexec_fn=_die_with_parent)
    p = Proc(name, proc)

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            p.lines.append(line.rstrip("\n"))
            if ready_mark in line:
                p.ready.set()

    threading.Thread(target=pump, daemon=True).start()
    return p


@dataclass
class Cluster:
    url: str
    host: str
    edge_port: int
    nodes: list[NodeSpec]
    edge: Proc
    procs: dict[str, Proc]  # node id -> its process
    config: Path  # the nodes' configuration

    def node_of_port(self, port: int) -> str:
        return next(n.node_id for n in self.nodes if n.sip_port == port)

    def dispatched(self, method: str, call_id: str) -> list[str]:
        """Node ids the edge sent `method` with `call_id` to, in order (its log)."""
        pattern = re.compile(rf"wte-edge: {method} from \S+ call-id {re.escape(call_id)} "
                             rf"(?:to|retried on) node sip:[^:]+:(\d+)")
        return [self.node_of_port(int(m.group(1))) for line in list(self.edge.lines)
                if (m := pattern.search(line))]

    def kill(self, node_id: str) -> None:
        self.procs[node_id].proc.send_signal(signal.SIGKILL)
        self.procs[node_id].proc.wait(5)

    def logs(self) -> str:
        """The tail of every log (in assertion messages); the whole logs in the run
        directory's `*.out` files."""
        run_dir = self.nodes[0].data_dir.parent
        for name, p in [("edge", self.edge), *self.procs.items()]:
            (run_dir / f"{name}.out").write_text(p.text() + "\n", encoding="utf-8")
        return f"(full logs in {run_dir}/*.out)\n" + "\n".join(
            f"=== {name}\n" + p.text()[-3000:]
            for name, p in [("edge", self.edge), *self.procs.items()])

    def stop(self) -> None:
        for p in [*self.procs.values(), self.edge]:
            if p.proc.poll() is None:
                p.proc.terminate()
        for p in [*self.procs.values(), self.edge]:
            try:
                p.proc.wait(15)
            except subprocess.TimeoutExpired:
                p.proc.kill()
                p.proc.wait(5)


def start_cluster(run_dir: Path, config: Path, url: str, count: int = 3,
                  host: str = "127.0.0.1", timeout: float = 40.0,
                  auth_failures: int = 20) -> Cluster:
    from switch.storage.cli import db_upgrade

    binary = kamailio_binary()
    assert binary is not None
    db_upgrade(url)
    used: list[int] = []
    edge_port = free_port_pair(host)
    used += range(edge_port, edge_port + 5)
    nodes: list[NodeSpec] = []
    for i in range(count):
        port = free_port_pair(host, avoid=used)
        used += range(port, port + 5)
        low = 20000 + 3000 * i  # the example's RTP range, split between the nodes
        nodes.append(NodeSpec(f"node{i + 1}", host, port, (low, low + 2999),
                              run_dir / f"node{i + 1}"))
    cfg = write_edge(run_dir, host, edge_port, nodes, ping_interval=1,
                     auth_failures=auth_failures)
    prepare_node_dirs(nodes, run_dir / "shared")
    env = dict(os.environ, PYTHONUNBUFFERED="1", DATABASE_URL=url)
    procs = {n.node_id: _spawn(n.node_id, node_command(n, config), env, " ready") for n in nodes}
    edge = _spawn("edge", kamailio_command(binary, cfg, run_dir), env, "Listening on")
    cluster = Cluster(url, host, edge_port, nodes, edge, procs, config)
    atexit.register(cluster.stop)  # an interrupted run leaves no edge or node behind
    end = time.monotonic() + timeout
    for p in [*procs.values(), edge]:
        while not p.ready.wait(0.2):
            if p.proc.poll() is not None or time.monotonic() > end:
                cluster.stop()
                raise RuntimeError(f"{p.name} did not start:\n{p.text()[-4000:]}")
    time.sleep(1.5)  # the edge's first OPTIONS probes mark the nodes up
    return cluster


__all__ = ["Cluster", "create_database", "drop_database", "query", "start_cluster"]
