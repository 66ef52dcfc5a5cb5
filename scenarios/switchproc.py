"""Starting a switch as a real process: `wte serve` on free loopback ports, in a data dir.

Used by `wte scenario run` when no target is given, by the test suite and by the benches.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_CONFIG = REPO / "config" / "example.yaml"
# A short ring timeout so "no answer" takes seconds; a lenient failure guard so scenarios
# that try wrong passwords do not lock the loopback address out.
RUN_SETTINGS: dict[str, object] = {"calls.ring_timeout": 3, "auth.max_failures": 10000}
PORTS_PER_SWITCH = 5  # SIP UDP/TCP P, TLS P+1, WS P+2, WSS P+3, HTTP P+4
# The example configuration's carrier trunk. A switch that a test or the scenario runner
# starts never points its trunk there (another switch or test run on the host may hold it):
# `run_config` moves it to a free port, where the test carrier listens (issue 11).
EXAMPLE_TRUNK = ("127.0.0.1", 5090)


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port free now, from the kernel's ephemeral range (for a test carrier)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_port_pair(host: str = "127.0.0.1", avoid: Collection[int] = ()) -> int:
    """A port P with UDP P and TCP P to P+4 free (every port `wte serve --sip-port P` uses),
    none of them in `avoid` (ports promised to someone else, such as the test carrier's)."""
    for _ in range(200):
        port = free_udp_port(host)
        if port >= 65535 - PORTS_PER_SWITCH:
            continue
        if any(port + i in avoid for i in range(PORTS_PER_SWITCH)):
            continue
        socks: list[socket.socket] = []
        try:
            for kind, p in ((socket.SOCK_DGRAM, port),
                            *((socket.SOCK_STREAM, port + i) for i in range(PORTS_PER_SWITCH))):
                sk = socket.socket(socket.AF_INET, kind)
                socks.append(sk)
                sk.bind((host, p))
            return port
        except OSError:
            continue
        finally:
            for sk in socks:
                sk.close()
    raise RuntimeError("no free port pair")


def run_config(directory: Path, base: Path = EXAMPLE_CONFIG,
               overrides: Mapping[str, object] | None = None,
               name: str = "scenario-switch.yaml", *, carrier_port: int | None = 0) -> Path:
    """A copy of `base` with `switch:` settings overridden (dotted keys).

    Trunks at the example's carrier address (127.0.0.1:5090) move to `carrier_port` (0: a
    free port chosen now; None: left where `base` puts them), with their `trusted` entry, so
    that no test depends on, or collides over, a well-known port. `trunk_address` reads the
    result back.
    """
    data = yaml.safe_load(base.read_text(encoding="utf-8"))
    if carrier_port is not None:
        move_example_trunk(data, carrier_port or free_udp_port(EXAMPLE_TRUNK[0]))
    section = data.get("switch") or {}
    for dotted, value in (RUN_SETTINGS if overrides is None else overrides).items():
        node = section
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    data["switch"] = section
    path = directory / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _trunks(data: object) -> list[dict[str, object]]:
    customers = data.get("customers") if isinstance(data, dict) else None
    out: list[dict[str, object]] = []
    for customer in customers if isinstance(customers, list) else []:
        trunks = customer.get("trunks") if isinstance(customer, dict) else None
        if isinstance(trunks, list):
            out.extend(t for t in trunks if isinstance(t, dict))
    return out


def move_example_trunk(data: object, port: int) -> int:
    """Point every trunk at the example carrier address (and its `trusted` entry) to `port`
    on the same host, in a loaded configuration; returns how many trunks moved."""
    host, old = EXAMPLE_TRUNK
    moved = 0
    for trunk in _trunks(data):
        if str(trunk.get("host")) != host or trunk.get("port", 5060) != old:
            continue
        trunk["port"] = port
        trusted = trunk.get("trusted")
        if isinstance(trusted, list):
            trunk["trusted"] = [f"{host}:{port}" if t == f"{host}:{old}" else t for t in trusted]
        moved += 1
    return moved


def trunk_address(config: Path) -> tuple[str, int] | None:
    """The (host, port) of the first trunk of a configuration file: where its carrier
    listens; None when it has none."""
    try:
        data = yaml.safe_load(config.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    for trunk in _trunks(data):
        port = trunk.get("port", 5060)
        if isinstance(port, int) and trunk.get("host"):
            return str(trunk["host"]), port
    return None


@dataclass
class SwitchProcess:
    proc: subprocess.Popen[str]
    host: str
    port: int
    data_dir: Path
    config: Path = EXAMPLE_CONFIG
    log_lines: list[str] = field(default_factory=list)
    # where the configuration's (first) trunk points: the test carrier binds there
    carrier: tuple[str, int] | None = None

    @property
    def carrier_port(self) -> int:
        if self.carrier is None:
            raise LookupError(f"{self.config} declares no trunk")
        return self.carrier[1]

    @property
    def tls_port(self) -> int:
        return self.port + 1

    @property
    def http_port(self) -> int:
        return self.port + 4

    def log_text(self) -> str:
        return "\n".join(self.log_lines)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def start_switch(data_dir: Path, config: Path = EXAMPLE_CONFIG, *, host: str = "127.0.0.1",
                 port: int | None = None, env: Mapping[str, str] | None = None,
                 timeout: float = 30.0) -> SwitchProcess:
    """Run `wte serve` and wait for its "ready" line; its output is kept in `log_lines`."""
    trunk = trunk_address(config)
    port = port or free_port_pair(host, avoid=(trunk[1],) if trunk else ())
    cmd = [sys.executable, "-m", "switch", "serve", "--config", str(config), "--sip-host", host,
           "--sip-port", str(port), "--data-dir", str(data_dir)]
    full_env = dict(os.environ, PYTHONUNBUFFERED="1")
    if env:
        full_env.update(env)
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=full_env)
    running = SwitchProcess(proc, host, port, data_dir, config, carrier=trunk)
    ready = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            running.log_lines.append(line.rstrip("\n"))
            if " ready" in line:
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    end = time.monotonic() + timeout
    while time.monotonic() < end and not ready.is_set():
        if proc.poll() is not None:
            time.sleep(0.2)
            raise RuntimeError(f"switch exited with {proc.returncode}:\n{running.log_text()}")
        ready.wait(0.1)
    if not ready.is_set():
        running.stop(signal.SIGKILL)
        raise RuntimeError(f"switch did not become ready:\n{running.log_text()}")
    return running
