"""Callers waiting in a call queue (issue 14): CPU per waiting caller.

`CALLERS` callers wait at once in the example's support queue (its two agents logged in
and busy, so nobody is served and nobody overflows). Each caller is the real thing but
the SIP: a `QueueCallerApp` on an `ApplicationRunner` over a real media endpoint sending
G.711 to a sink, fed by the `QueueService`: the welcome and its position, the shared music
on hold, and the position again every `ANNOUNCE` seconds (the plan's minimum). Measured
over `SECONDS` seconds once every caller waits: CPU of the one process (one loop, one
core), per waiting caller, and the media clock's skipped ticks.

    .venv/bin/python -m bench bench_queues
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml

from dialplan import load_plan
from ivr.application import CallInfo
from ivr.queue_caller import QueueCallerApp
from media import MediaEngine
from switch.b2bua.decisions import AppContext, InContext
from switch.services.applications import ApplicationRunner, PromptLibrary
from switch.services.queues import QUEUE_APPLICATION, QueueService

REPO = Path(__file__).resolve().parents[1]
CALLERS = 200
ANNOUNCE = 5
SECONDS = 10.0


class NoControl:
    def hang_up(self, cause: str) -> None:
        pass

    def transfer(self, target: str) -> None:
        pass


def _plan(tmp: Path) -> Any:
    data = yaml.safe_load((REPO / "config" / "example.yaml").read_text(encoding="utf-8"))
    support = data["customers"][0]["sites"][0]["queues"][0]
    support.update(max_waiting=1000, max_wait=7200, announce_every=ANNOUNCE)
    path = tmp / "bench-queues.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return load_plan(path)


async def waiting_callers(callers: int, seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        plan = _plan(Path(tmp))
        queue = plan.customers[0].sites[0].queues[0]
        service = QueueService(SimpleNamespace(plan=plan))
        await service.start()
        state = next(iter(service.entries.values())).state
        now = service.now()
        for agent in state.agents:
            state.agent_call(agent, f"busy-{agent}", True, now)  # agents busy: all wait
        factory = service.applications()[QUEUE_APPLICATION]
        assert isinstance(factory, InContext)
        engine = MediaEngine("127.0.0.1", 40000, 49999)
        sinks = []
        for _ in range(4):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            sinks.append(s)
        prompts = PromptLibrary(None)
        decision = SimpleNamespace(target=queue)
        runners = []
        apps: list[QueueCallerApp] = []
        await engine.start()
        for i in range(callers):
            ep = await engine.open_endpoint()
            ep.set_remote("127.0.0.1", sinks[i % 4].getsockname()[1], 0, "PCMU", 101)
            info = CallInfo(f"bench-{i}", "+33612345678", "sip:402@bench", f"b{i}")
            app = factory.make(info, AppContext(decision, None, "127.0.0.1"))  # type: ignore[arg-type]
            assert isinstance(app, QueueCallerApp)
            apps.append(app)
            runner = ApplicationRunner(app, ep, NoControl(), info, recordings=Path(tmp),
                                       prompts=prompts)
            runner.start()
            runner.answered()
            runners.append(runner)
        await asyncio.sleep(1.0)
        waiting = len(state.waiting)
        announced0 = sum(a.announcements for a in apps)
        ticks0, cpu0 = engine.clock.ticks, time.process_time()
        await asyncio.sleep(seconds)
        cpu, ticks = time.process_time() - cpu0, engine.clock.ticks - ticks0
        announced = sum(a.announcements for a in apps) - announced0
        skipped = engine.clock.schedule.skipped if engine.clock.schedule else 0
        for runner in runners:
            await runner.close()
        await engine.stop()
        await service.stop()
        for s in sinks:
            s.close()
    return {
        "callers": waiting,
        "cpu_pct": 100.0 * cpu / seconds,
        "us_per_caller_s": 1e6 * cpu / seconds / max(1, waiting),
        "announcements": announced,
        "ticks": ticks,
        "expected_ticks": int(seconds / 0.02),
        "skipped": skipped,
    }


def main() -> None:
    factory = None
    loop_name = "asyncio"
    try:
        import uvloop

        factory, loop_name = uvloop.new_event_loop, "uvloop"
    except ImportError:
        pass
    print(f"queue bench: {loop_name}, {os.cpu_count()} CPUs, python {sys.version.split()[0]}")
    print(f"{CALLERS} callers waiting in one queue: music on hold, position every {ANNOUNCE} s, "
          f"{SECONDS:.0f} s measured")
    with asyncio.Runner(loop_factory=factory) as runner:
        r = runner.run(waiting_callers(CALLERS, SECONDS))
    ok = r["callers"] == CALLERS and r["skipped"] == 0 and r["cpu_pct"] < 100.0
    print(f"waiting {r['callers']:.0f}, CPU {r['cpu_pct']:.1f} % of one core, "
          f"{r['us_per_caller_s']:.0f} us CPU per waiting caller per second "
          f"({r['us_per_caller_s'] / 1e4:.3f} % of a core), {r['announcements']:.0f} "
          f"announcements, media ticks {r['ticks']:.0f}/{r['expected_ticks']:.0f}, "
          f"skipped {r['skipped']:.0f} {'ok' if ok else 'FAIL'}")


if __name__ == "__main__":
    main()
