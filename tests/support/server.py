"""Start `wte serve` as a real process on free loopback ports, for system tests."""

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

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_CONFIG = Path(os.environ.get("WTE_TEST_CONFIG", REPO / "config" / "example.yaml"))


def free_port_pair(host: str = "127.0.0.1") -> int:
    """A port P with UDP P and TCP P to P+4 free: SIP UDP/TCP (P), TLS (P+1), WS (P+2),
    WSS (P+3) and the HTTP API (P+4)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if port >= 65530:
            continue
        try:
            socks = []
            for kind, p in ((socket.SOCK_DGRAM, port),
                            *((socket.SOCK_STREAM, port + i) for i in range(5))):
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


@dataclass
class RunningSwitch:
    proc: subprocess.Popen[str]
    host: str
    port: int
    data_dir: Path
    config: Path
    log_lines: list[str] = field(default_factory=list)

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


def start_switch(data_dir: Path, *, config: Path = EXAMPLE_CONFIG, port: int | None = None,
                 env: dict[str, str] | None = None, timeout: float = 30.0) -> RunningSwitch:
    host = "127.0.0.1"
    port = port or free_port_pair(host)
    cmd = [sys.executable, "-m", "switch", "serve", "--config", str(config),
           "--sip-host", host, "--sip-port", str(port), "--data-dir", str(data_dir)]
    full_env = dict(os.environ)
    full_env.setdefault("PYTHONUNBUFFERED", "1")
    if env:
        full_env.update(env)
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=full_env)
    running = RunningSwitch(proc, host, port, data_dir, config)
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


def config_with(tmp_dir: Path, switch_overrides: dict[str, object]) -> Path:
    """A copy of the example configuration with some `switch:` settings changed."""
    import yaml

    data = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    section = data.setdefault("switch", {}) or {}
    for dotted, value in switch_overrides.items():
        node = section
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    data["switch"] = section
    path = tmp_dir / "config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def call_records(data_dir: Path, limit: int = 50) -> list[dict[str, object]]:
    """The switch's call records (newest first), through `wte calls` as an operator would."""
    import json

    out = subprocess.run(
        [sys.executable, "-m", "switch", "calls", "--data-dir", str(data_dir),
         "--limit", str(limit)],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    if out.returncode != 0:
        raise RuntimeError(out.stdout + out.stderr)
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def wait_record(data_dir: Path, predicate: object, timeout: float = 5.0) -> dict[str, object]:
    """The newest call record matching `predicate`, waiting for the switch to write it."""
    end = time.monotonic() + timeout
    while True:
        for rec in call_records(data_dir):
            if predicate(rec):  # type: ignore[operator]
                return rec
        if time.monotonic() > end:
            raise AssertionError(f"no matching call record in {call_records(data_dir)[:5]}")
        time.sleep(0.2)
