"""Starting a switch for a run: `wte serve` on free loopback ports, in a temp data dir."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_CONFIG = REPO / "config" / "example.yaml"
# A short ring timeout so "no answer" takes seconds; a lenient failure guard so scenarios
# that try wrong passwords do not lock the loopback address out.
RUN_SETTINGS: dict[str, object] = {"calls.ring_timeout": 3, "auth.max_failures": 10000}


def free_port_pair(host: str = "127.0.0.1") -> int:
    """A port P with UDP P, TCP P and TCP P+1 free."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if port >= 65534:
            continue
        socks: list[socket.socket] = []
        try:
            for kind, p in ((socket.SOCK_DGRAM, port), (socket.SOCK_STREAM, port),
                            (socket.SOCK_STREAM, port + 1)):
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
               overrides: dict[str, object] | None = None) -> Path:
    """A copy of `base` with `switch:` settings overridden (dotted keys)."""
    data = yaml.safe_load(base.read_text(encoding="utf-8"))
    section = data.get("switch") or {}
    for dotted, value in (RUN_SETTINGS if overrides is None else overrides).items():
        node = section
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    data["switch"] = section
    path = directory / "scenario-switch.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@dataclass
class SwitchProcess:
    proc: subprocess.Popen[str]
    host: str
    port: int
    data_dir: Path
    log_lines: list[str] = field(default_factory=list)

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def start_switch(data_dir: Path, config: Path, *, host: str = "127.0.0.1",
                 timeout: float = 30.0) -> SwitchProcess:
    port = free_port_pair(host)
    cmd = [sys.executable, "-m", "switch", "serve", "--config", str(config), "--sip-host", host,
           "--sip-port", str(port), "--data-dir", str(data_dir)]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env)
    running = SwitchProcess(proc, host, port, data_dir)
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
            raise RuntimeError(f"switch exited with {proc.returncode}:\n"
                               + "\n".join(running.log_lines[-40:]))
        ready.wait(0.1)
    if not ready.is_set():
        running.stop(2)
        raise RuntimeError("switch did not become ready:\n" + "\n".join(running.log_lines[-40:]))
    return running
