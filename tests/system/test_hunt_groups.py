"""Hunt groups ring their members by strategy: simultaneous, sequential, round robin."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pjsua2 as pj
import pytest
import yaml

from tests.support.pjphone import Phone, make_phone
from tests.support.server import EXAMPLE_CONFIG, RunningSwitch, start_switch, write_config

MEMBERS = ("501410", "501412")
STEP = 2


def hunt_config(tmp: Path, strategy: str) -> Path:
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    site = data["customers"][0]["sites"][0]
    group = site["hunt_groups"][0]
    group["strategy"] = strategy
    group["members"] = list(MEMBERS)
    group.pop("schedule", None)  # open at any hour for the test
    data["switch"] = {"calls": {"hunt_step": STEP, "ring_timeout": 20}}
    path = tmp / f"{strategy}.yaml"
    write_config(path, data)
    return path


@pytest.fixture(params=["sequential", "round_robin"])
def hunt(request: pytest.FixtureRequest, pj_lib: Any,
         tmp_path: Path) -> Iterator[tuple[str, RunningSwitch, dict[str, Phone]]]:
    strategy = request.param
    switch = start_switch(tmp_path / "var", config=hunt_config(tmp_path, strategy))
    phones = {u: make_phone(pj_lib, transport="UDP", user=u, host=switch.host,
                            port=switch.port, password=f"demo-{u}", register=True)
              for u in (*MEMBERS, "502411")}
    try:
        for p in phones.values():
            assert p.wait_registration(lambda e: e[0] == 200, since=0) is not None
        yield strategy, switch, phones
    finally:
        pj_lib.ep.hangupAllCalls()
        pj_lib.wait_until(lambda: False, 0.3)
        for p in phones.values():
            p.shutdown()
        switch.stop()


def test_members_ring_one_after_the_other(pj_lib: Any,
                                          hunt: tuple[str, RunningSwitch, dict[str, Phone]]) -> None:
    strategy, switch, phones = hunt
    first, second = phones[MEMBERS[0]].account, phones[MEMBERS[1]].account
    second.answer_with = 200  # the first member never answers
    call = phones["502411"].call(f"sip:501401@{switch.host}:{switch.port}")
    assert pj_lib.wait_until(lambda: len(first.incoming) == 1, 5), switch.log_text()[-2000:]
    assert len(second.incoming) == 0  # one member at a time
    assert pj_lib.wait_until(lambda: call.state == pj.PJSIP_INV_STATE_CONFIRMED, STEP + 6)
    assert len(second.incoming) == 1
    assert pj_lib.wait_until(
        lambda: first.incoming[0].state == pj.PJSIP_INV_STATE_DISCONNECTED, 3)
    call.hangup(pj.CallOpParam(True))
    pj_lib.wait_until(lambda: call.state == pj.PJSIP_INV_STATE_DISCONNECTED, 5)
    if strategy == "round_robin":
        # the next call starts with the other member
        first.incoming.clear()
        second.incoming.clear()
        second.answer_with = None
        phones["502411"].call(f"sip:501401@{switch.host}:{switch.port}")
        assert pj_lib.wait_until(lambda: len(second.incoming) == 1, 5)
        assert len(first.incoming) == 0
