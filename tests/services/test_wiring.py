"""The composition root: what each service receives (no sockets opened)."""

from __future__ import annotations

from pathlib import Path

from switch.app import ServeOptions, Switch, SwitchBound, build_switch
from switch.services.ports import Reloadable, Service
from tests.support.server import config_with


async def built(tmp_path: Path, overrides: dict[str, object]) -> Switch:
    return build_switch(ServeOptions(config_with(tmp_path, overrides), data_dir=tmp_path))


async def test_the_configured_t1_t2_reach_the_calls(tmp_path: Path) -> None:
    switch = await built(tmp_path, {"transaction.t1": 0.2, "transaction.t2": 2.5,
                                     "calls.ring_timeout": 7, "calls.hunt_step": 3})
    try:
        timers = switch.calls.timers
        assert (timers.t1, timers.t2, timers.ring_timeout, timers.hunt_step) == (0.2, 2.5, 7, 3)
        assert switch.runtime.txn.config.t1 == 0.2
    finally:
        await switch.engine.dispose()


async def test_every_service_has_one_lifecycle_and_the_plan_reloads(tmp_path: Path) -> None:
    switch = await built(tmp_path, {})
    try:
        assert all(isinstance(s, Service) for s in switch.services)
        assert switch.calls in switch.services and switch.emergency in switch.services
        # each service gets what it uses at construction: only the HTTP admin API reads
        # the whole switch; the schema is migrated before any storage user starts
        assert switch.registration in switch.services and switch.records in switch.services
        assert [type(s.service).__name__ for s in switch.services
                if isinstance(s, SwitchBound)] == ["HttpApi"]
        assert type(switch.services[0]).__name__ == "DatabaseService"
        assert switch.registration.engine is switch.engine
        assert [type(s).__name__ for s in switch.reloadable] == ["PlanService"]
        assert all(isinstance(s, Reloadable) for s in switch.reloadable)
        # the call service shares the registrar's digest, guard and location service
        assert switch.calls.authority is switch.registration
        assert switch.calls.emergency is switch.emergency
    finally:
        await switch.engine.dispose()
