"""`wte scenario run FILE... [--target HOST:PORT] [--engine own|pjsua2] [--junit out.xml]`.

Without --target, a switch is started for the run (the example configuration with a short
ring timeout, free loopback ports, a temporary data directory), and call records are read
from its database. The last line is the summary `N passed, M failed`.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import TextIO

from .engine import Engine, Pump
from .junit import write_junit
from .model import Scenario
from .own import OwnEngine
from .parse import ScenarioFileError, load_scenario
from .records import RecordReader
from .runner import RunContext, ScenarioResult, run_scenarios
from .switchproc import run_config, start_switch

ENGINES = ("own", "pjsua2")


def collect(files: list[str]) -> list[Path]:
    """Files as given; a directory stands for its *.yaml / *.yml files (not subdirectories)."""
    out: list[Path] = []
    for f in files:
        p = Path(f)
        if p.is_dir():
            out.extend(sorted(q for q in p.iterdir() if q.suffix in (".yaml", ".yml")))
        else:
            out.append(p)
    return out


def load_all(paths: list[Path]) -> tuple[list[Scenario], list[tuple[str, str]]]:
    scenarios: list[Scenario] = []
    errors: list[tuple[str, str]] = []
    for p in paths:
        try:
            scenarios.append(load_scenario(p))
        except ScenarioFileError as exc:
            errors.append((str(p), str(exc)))
    return scenarios, errors


def parse_target(target: str) -> tuple[str, int]:
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--target {target!r} is not HOST:PORT")
    return host, int(port)


def make_engine(name: str, pump: Pump, pj_library: object | None = None) -> Engine:
    if name == "own":
        return OwnEngine()
    if name == "pjsua2":
        from .pj_engine import PjEngine

        return PjEngine(pump, pj_library)
    raise ValueError(f"unknown engine {name!r} (own or pjsua2)")


async def play(scenarios: list[Scenario], target: tuple[str, int], engine: Engine, pump: Pump,
               out: TextIO, data_dir: str | None = None) -> list[ScenarioResult]:
    """Play loaded scenarios against a running switch (the pytest entry point)."""
    records = RecordReader(data_dir) if data_dir else None
    ctx = RunContext(target, engine, OwnEngine(), pump, records,
                     concurrency=1 if engine.name == "pjsua2" else 50)
    try:
        return await run_scenarios(scenarios, ctx, out)
    finally:
        if records is not None:
            await records.close()


def scenario_main(files: list[str], target: str | None, engine: str, junit: str | None,
                  out: TextIO) -> int:
    """Run scenario files; 0 when all passed, 1 when any failed, 2 on a usage error."""
    if engine not in ENGINES:
        out.write(f"error: unknown engine {engine!r} (own or pjsua2)\n")
        return 2
    paths = collect(files)
    if not paths:
        out.write("error: no scenario files\n")
        return 2
    scenarios, errors = load_all(paths)
    for _, message in errors:
        out.write(f"ERROR {message}\n")
    results: list[ScenarioResult] = []
    if scenarios:
        try:
            results = _run(scenarios, target, engine, out)
        except (ValueError, RuntimeError, OSError) as exc:
            out.write(f"error: {exc}\n")
            return 2
    if junit:
        write_junit(junit, results, engine, tuple(errors))
    passed = sum(1 for r in results if r.passed)
    failed = len(results) - passed + len(errors)
    out.write(f"{passed} passed, {failed} failed\n")
    out.flush()
    return 0 if failed == 0 else 1


def _run(scenarios: list[Scenario], target: str | None, engine_name: str,
         out: TextIO) -> list[ScenarioResult]:
    pump = Pump()
    engine = make_engine(engine_name, pump)
    try:
        if target is not None:
            return asyncio.run(play(scenarios, parse_target(target), engine, pump, out))
        with tempfile.TemporaryDirectory(prefix="wte-scenarios-") as tmp:
            data_dir = Path(tmp)
            switch = start_switch(data_dir, run_config(data_dir))
            out.write(f"started a switch on {switch.host}:{switch.port} (data in {data_dir})\n")
            try:
                return asyncio.run(play(scenarios, (switch.host, switch.port), engine, pump,
                                        out, str(data_dir)))
            finally:
                switch.stop()
    finally:
        asyncio.run(engine.close())
