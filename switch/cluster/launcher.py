"""`wte cluster up`: Kamailio and N `wte serve` nodes on one machine, for a try (issue 22).

It migrates the database (PostgreSQL from DATABASE_URL: a cluster shares it), writes the
edge's configuration (cluster/kamailio.cfg with its placeholders filled) and dispatcher list
to the run directory, starts Kamailio on the SIP port P and the nodes on P+10, P+20, ...
(each node uses its port to +4), each with its own node id, data directory (its call-record
spool) and RTP range, then waits; Ctrl-C (or SIGTERM) stops the nodes, then the edge.

Voicemail audio and announcements must be the same files on every node: the nodes' data
directories link `voicemail/` and `announcements/` to one shared directory (in production,
a shared file system mounted at the same path on every machine).

The pure helpers (ports, the dispatcher list, the rendered configuration) are what the
system test uses too.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "cluster" / "kamailio.cfg"
NODE_PORT_STEP = 10  # a node takes P..P+4 (UDP/TCP, TLS, WS, WSS, HTTP)
SHARED_DIRS = ("voicemail", "announcements")
MODULE_DIRS = ("/usr/lib/x86_64-linux-gnu/kamailio/modules", "/usr/lib/aarch64-linux-gnu/"
               "kamailio/modules", "/usr/lib/kamailio/modules", "/usr/local/lib64/kamailio/modules")


@dataclass(frozen=True, slots=True)
class NodeSpec:
    node_id: str
    host: str
    sip_port: int
    rtp: tuple[int, int]
    data_dir: Path


def node_specs(count: int, host: str, sip_port: int, run_dir: Path,
               rtp: tuple[int, int] = (20000, 29999)) -> list[NodeSpec]:
    """Nodes node1..nodeN on P+10, P+20, ...; the RTP range split between them."""
    if count < 1:
        raise ValueError("a cluster has at least one node")
    low, high = rtp
    width = (high - low + 1) // count
    if width < 100:
        raise ValueError(f"RTP range {low}-{high} too small for {count} nodes")
    return [NodeSpec(f"node{i + 1}", host, sip_port + NODE_PORT_STEP * (i + 1),
                     (low + i * width, low + (i + 1) * width - 1), run_dir / f"node{i + 1}")
            for i in range(count)]


def dispatcher_list(nodes: list[NodeSpec], set_id: int = 1) -> str:
    """The dispatcher module's list file: `setid destination flags priority attrs`."""
    lines = ["# wte cluster nodes (written by `wte cluster up`)"]
    lines += [f"{set_id} sip:{n.host}:{n.sip_port} 0 0 node={n.node_id}" for n in nodes]
    return "\n".join(lines) + "\n"


def render_kamailio(template: str, *, host: str, port: int, dispatcher: Path, modules: str,
                    ping_interval: int = 1, debug: int = 2, auth_failures: int = 20,
                    auth_block_seconds: int = 300) -> str:
    """The edge's configuration. `auth_failures` refused authentications from one phone
    address block it for `auth_block_seconds` at the edge (the nodes see the edge's address
    only, so the per-address brake lives here)."""
    values = {"EDGE_HOST": host, "EDGE_PORT": str(port), "DISPATCHER_LIST": str(dispatcher),
              "MODULES": modules, "PING_INTERVAL": str(ping_interval), "DEBUG": str(debug),
              "AUTH_FAILURES": str(auth_failures),
              "AUTH_BLOCK_SECONDS": str(auth_block_seconds)}
    text = template
    for name, value in values.items():
        text = text.replace("{{" + name + "}}", value)
    if re.search(r"\{\{[A-Z_]+\}\}", text):
        raise ValueError("kamailio template: a placeholder was left unfilled")
    return text


def kamailio_binary() -> str | None:
    return shutil.which("kamailio") or next(
        (p for p in ("/usr/sbin/kamailio", "/usr/local/sbin/kamailio") if os.access(p, os.X_OK)),
        None)


def kamailio_modules() -> str | None:
    return next((d for d in MODULE_DIRS if Path(d, "dispatcher.so").exists()), None)


def write_edge(run_dir: Path, host: str, port: int, nodes: list[NodeSpec], *,
               ping_interval: int = 1, auth_failures: int = 20) -> Path:
    """Write kamailio.cfg and dispatcher.list into `run_dir`; the configuration's path."""
    modules = kamailio_modules()
    if modules is None:
        raise FileNotFoundError("no Kamailio modules directory (apt-get install kamailio)")
    run_dir.mkdir(parents=True, exist_ok=True)
    listing = run_dir / "dispatcher.list"
    listing.write_text(dispatcher_list(nodes), encoding="utf-8")
    cfg = run_dir / "kamailio.cfg"
    cfg.write_text(render_kamailio(TEMPLATE.read_text(encoding="utf-8"), host=host, port=port,
                                   dispatcher=listing, modules=modules,
                                   ping_interval=ping_interval, auth_failures=auth_failures),
                   encoding="utf-8")
    return cfg


def kamailio_command(binary: str, cfg: Path, run_dir: Path) -> list[str]:
    """In the foreground (-DD), logging to stderr (-E), its runtime files in `run_dir`."""
    return [binary, "-DD", "-E", "-f", str(cfg), "-Y", str(run_dir), "-P",
            str(run_dir / "kamailio.pid"), "-m", "256", "-M", "16"]


def prepare_node_dirs(nodes: list[NodeSpec], shared: Path) -> None:
    """Each node's data directory, its voicemail and announcements linked to `shared`."""
    for name in SHARED_DIRS:
        (shared / name).mkdir(parents=True, exist_ok=True)
    for n in nodes:
        n.data_dir.mkdir(parents=True, exist_ok=True)
        for name in SHARED_DIRS:
            link = n.data_dir / name
            if not link.exists() and not link.is_symlink():
                link.symlink_to(shared / name, target_is_directory=True)


def node_command(spec: NodeSpec, config: Path) -> list[str]:
    return [sys.executable, "-m", "switch", "serve", "--config", str(config),
            "--sip-host", spec.host, "--sip-port", str(spec.sip_port),
            "--rtp-ports", f"{spec.rtp[0]}-{spec.rtp[1]}", "--data-dir", str(spec.data_dir),
            "--node-id", spec.node_id]


def add_arguments(parser: argparse.ArgumentParser, default_config: str) -> None:
    sub = parser.add_subparsers(dest="cluster_command", required=True, metavar="ACTION")
    up = sub.add_parser("up", help="start Kamailio and N nodes on this machine; Ctrl-C stops",
                        description="Needs DATABASE_URL on PostgreSQL (the nodes share it) "
                        "and the kamailio binary. The edge listens on --sip-port P (UDP and "
                        "TCP); node i on P+10*i. Files and logs go to --run-dir.")
    up.add_argument("--nodes", type=int, default=2, help="how many nodes (default 2)")
    up.add_argument("--sip-host", default="127.0.0.1", help="address of the edge and nodes")
    up.add_argument("--sip-port", type=int, default=5060, help="the edge's port (default 5060)")
    up.add_argument("--config", default=default_config, help="the nodes' configuration YAML")
    up.add_argument("--run-dir", default="var/cluster", help="configs, logs, data directories")


def cluster_up(args: argparse.Namespace, out: TextIO) -> int:
    from switch.storage.cli import db_upgrade
    from switch.storage.engine import is_sqlite

    url = os.environ.get("DATABASE_URL", "")
    if not url or is_sqlite(url):
        out.write("error: set DATABASE_URL to a PostgreSQL database "
                  "(postgresql+asyncpg://user@host/db): the nodes share it\n")
        return 2
    binary = kamailio_binary()
    if binary is None:
        out.write("error: kamailio not found (Debian: apt-get install kamailio)\n")
        return 2
    run_dir = Path(args.run_dir).resolve()
    nodes = node_specs(args.nodes, args.sip_host, args.sip_port, run_dir)
    db_upgrade(url)  # once, before any node: the nodes then find the schema at head
    cfg = write_edge(run_dir, args.sip_host, args.sip_port, nodes)
    prepare_node_dirs(nodes, run_dir / "shared")
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    stop = False

    def request_stop(_sig: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        for n in nodes:
            log = (run_dir / f"{n.node_id}.log").open("ab")
            procs.append((n.node_id, subprocess.Popen(node_command(n, Path(args.config)),
                                                      cwd=REPO, stdout=log, stderr=log)))
            out.write(f"{n.node_id}: sip:{n.host}:{n.sip_port} (log {log.name})\n")
        edge_log = (run_dir / "kamailio.log").open("ab")
        procs.append(("kamailio", subprocess.Popen(kamailio_command(binary, cfg, run_dir),
                                                   stdout=edge_log, stderr=edge_log)))
        out.write(f"edge: sip:{args.sip_host}:{args.sip_port} (kamailio, log {edge_log.name})\n"
                  "Ctrl-C stops them all\n")
        out.flush()
        while not stop:
            for name, proc in procs:
                if proc.poll() is not None:
                    out.write(f"{name} exited with status {proc.returncode}\n")
                    out.flush()
                    procs.remove((name, proc))
                    break
            time.sleep(0.5)
    finally:
        for _name, proc in reversed(procs):  # the edge first, then the nodes drain
            if proc.poll() is None:
                proc.terminate()
        for _name, proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
    out.write("stopped\n")
    return 0
