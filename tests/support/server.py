"""The switch as a real process for system tests (see scenarios.switchproc)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from scenarios.switchproc import (
    REPO,
    SwitchProcess,
    free_port_pair,
    free_udp_port,
    move_example_trunk,
    run_config,
)
from scenarios.switchproc import start_switch as _start

EXAMPLE_CONFIG = Path(os.environ.get("WTE_TEST_CONFIG", REPO / "config" / "example.yaml"))
RunningSwitch = SwitchProcess
__all__ = ["EXAMPLE_CONFIG", "REPO", "RunningSwitch", "call_records", "config_with",
           "free_port_pair", "start_switch", "wait_record", "write_config"]


def start_switch(data_dir: Path, *, config: Path = EXAMPLE_CONFIG, port: int | None = None,
                 env: dict[str, str] | None = None, timeout: float = 30.0) -> SwitchProcess:
    """`wte serve` on free ports. The example configuration is served from a copy whose
    carrier trunk is on a free port (`carrier_port` of the result), not 127.0.0.1:5090."""
    if config == EXAMPLE_CONFIG:
        data_dir.mkdir(parents=True, exist_ok=True)
        config = run_config(data_dir, EXAMPLE_CONFIG, {}, name="example-config.yaml")
    return _start(data_dir, config, port=port, env=env, timeout=timeout)


def config_with(tmp_dir: Path, switch_overrides: dict[str, object], *,
                carrier_port: int = 0) -> Path:
    """A copy of the example configuration with some `switch:` settings changed, its carrier
    trunk moved off the well-known 127.0.0.1:5090 to `carrier_port` (0: a free port; the
    started switch tells it as `carrier_port`)."""
    return run_config(tmp_dir, EXAMPLE_CONFIG, switch_overrides, name="config.yaml",
                      carrier_port=carrier_port)


def write_config(path: Path, data: dict[str, object], *, carrier_port: int = 0) -> Path:
    """Write a loaded (and edited) configuration for a test switch, its carrier trunk moved
    off 127.0.0.1:5090 as `config_with` does."""
    import yaml

    move_example_trunk(data, carrier_port or free_udp_port())
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
