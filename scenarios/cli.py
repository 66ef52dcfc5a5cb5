"""`wte scenario run FILE... [--target HOST:PORT [--api-token TOKEN]] [--engine own|pjsua2]
[--junit out.xml]`.

Without --target, a switch is started for the run (the example configuration with a short
ring timeout, free loopback ports, its carrier trunk moved to a free port where the
scenarios' carrier phones listen, a temporary data directory), and call records are read
from its database. With --target, carrier phones listen on the example trunk's address,
127.0.0.1:5090 (the external switch's configuration decides; `carrier=` overrides it).
The last line is the summary `N passed, M failed`.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import TextIO

from .engine import Engine, Pump
from .junit import write_junit
from .model import EXAMPLE_CARRIER, Scenario
from .own import OwnEngine
from .parse import ScenarioFileError, load_scenario
from .records import ApiRecordReader, RecordReader, RecordSource
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


def load_all(paths: list[Path], engine: str | None = None
             ) -> tuple[list[Scenario], list[tuple[str, str]]]:
    """Load every file; with `engine`, a step that engine cannot play is a load error."""
    scenarios: list[Scenario] = []
    errors: list[tuple[str, str]] = []
    for p in paths:
        try:
            scenarios.append(load_scenario(p, engine))
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
        try:
            import pjsua2  # noqa: F401
        except ImportError:
            raise ValueError("the pjsua2 engine needs PJSIP's Python wheel: "
                             "pip install 'wte[pjsua2]' (or pjsua2-python)") from None
        from .pj_engine import PjEngine

        return PjEngine(pump, pj_library)
    raise ValueError(f"unknown engine {name!r} (own or pjsua2)")


async def play(scenarios: list[Scenario], target: tuple[str, int], engine: Engine, pump: Pump,
               out: TextIO, data_dir: str | None = None,
               carrier: str = EXAMPLE_CARRIER,
               api_token: str | None = None) -> list[ScenarioResult]:
    """Play loaded scenarios against a running switch (the pytest entry point); `carrier`
    is the "host:port" its carrier trunk points at. Call records are read from `data_dir`'s
    database, or with `api_token` through the switch's admin API (HTTP port: SIP + 4)."""
    records: RecordSource | None = None
    if api_token:
        records = ApiRecordReader(f"http://{target[0]}:{target[1] + 4}", api_token)
    elif data_dir:
        records = RecordReader(data_dir)
    ctx = RunContext(target, engine, OwnEngine(), pump, records,
                     concurrency=1 if engine.name == "pjsua2" else 50, carrier=carrier)
    try:
        return await run_scenarios(scenarios, ctx, out)
    finally:
        if records is not None:
            await records.close()


def scenario_main(files: list[str], target: str | None, engine: str, junit: str | None,
                  out: TextIO, carrier: str | None = None, api_token: str | None = None) -> int:
    """Run scenario files; 0 when all passed, 1 when any failed, 2 on a usage error.

    `carrier` ("host:port") is where the target switch's carrier trunk points; only with
    `target` (a switch the runner starts gets a free port)."""
    if engine not in ENGINES:
        out.write(f"error: unknown engine {engine!r} (own or pjsua2)\n")
        return 2
    paths = collect(files)
    if not paths:
        out.write("error: no scenario files\n")
        return 2
    scenarios, errors = load_all(paths, engine)  # before any switch or phone starts
    for _, message in errors:
        out.write(f"ERROR {message}\n")
    results: list[ScenarioResult] = []
    if scenarios:
        try:
            results = _run(scenarios, target, engine, out, carrier, api_token)
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
         out: TextIO, carrier: str | None = None,
         api_token: str | None = None) -> list[ScenarioResult]:
    if carrier is not None:
        if target is None:
            raise ValueError("a carrier address goes with --target (a switch the runner "
                             "starts gets its carrier on a free port)")
        parse_target(carrier)
    pump = Pump()
    engine = make_engine(engine_name, pump)
    try:
        if target is not None:
            return asyncio.run(play(scenarios, parse_target(target), engine, pump, out,
                                    carrier=carrier or EXAMPLE_CARRIER, api_token=api_token))
        with tempfile.TemporaryDirectory(prefix="wte-scenarios-") as tmp:
            data_dir = Path(tmp)
            switch = start_switch(data_dir, run_config(data_dir))  # trunk on a free port
            trunk = switch.carrier or tuple(EXAMPLE_CARRIER.rsplit(":", 1))
            out.write(f"started a switch on {switch.host}:{switch.port}, its carrier trunk at "
                      f"{trunk[0]}:{trunk[1]} (data in {data_dir})\n")
            try:
                return asyncio.run(play(scenarios, (switch.host, switch.port), engine, pump,
                                        out, str(data_dir), carrier=f"{trunk[0]}:{trunk[1]}"))
            finally:
                switch.stop()
    finally:
        asyncio.run(engine.close())
