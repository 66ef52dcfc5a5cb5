"""A ring-all queue (issue 14) with real phones: both free agents ring at once for a
carrier caller; the second agent answers and takes the caller; the first stops ringing."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pjsua2 as pj
import pytest
import yaml

from tests.support.pjphone import Phone, carrier_port, make_carrier_phone, make_phone
from tests.support.server import (
    EXAMPLE_CONFIG,
    REPO,
    RunningSwitch,
    call_records,
    start_switch,
    write_config,
)

CONFIRMED = pj.PJSIP_INV_STATE_CONFIRMED
DISCONNECTED = pj.PJSIP_INV_STATE_DISCONNECTED
QUEUE = "+33562070402"


def ring_all_config(tmp: Path, port: int) -> Path:
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    support = data["customers"][0]["sites"][0]["queues"][0]
    support.update(agents=["501410", "501411"], strategy="ring_all", wrap_up=2)
    return write_config(tmp / "ring-all.yaml", data, carrier_port=port)


@pytest.fixture(scope="module")
def switch(pj_lib: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSwitch]:
    tmp = tmp_path_factory.mktemp("ring-all")
    config = ring_all_config(tmp, carrier_port(pj_lib))
    running = start_switch(tmp, config=config)
    out = subprocess.run([sys.executable, "-m", "switch", "schedule", "set", "office", "open",
                          "--config", str(config), "--data-dir", str(running.data_dir)],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    time.sleep(1.2)  # a running switch applies it within a second
    yield running
    running.stop()


def test_ring_all_rings_every_free_agent_and_the_first_to_answer_takes_the_caller(
        pj_lib: Any, switch: RunningSwitch) -> None:
    agents = {u: make_phone(pj_lib, transport="UDP", user=u, host=switch.host,
                            port=switch.port, password=f"demo-{u}", register=True)
              for u in ("501410", "501411")}
    carrier: Phone | None = None
    try:
        for phone in agents.values():
            assert phone.wait_registration(lambda e: e[0] == 200, since=0) is not None
        carrier = make_carrier_phone(pj_lib, "+33612345678")
        call = carrier.call(f"sip:{QUEUE}@{switch.host}:{switch.port}")
        assert pj_lib.wait_until(lambda: call.state == CONFIRMED, 8)
        log = "\n".join(switch.log_lines[-40:])
        assert pj_lib.wait_until(lambda: all(p.account.incoming for p in agents.values()),
                                 10), log
        first, second = (agents[u].account.incoming[0] for u in ("501410", "501411"))
        op = pj.CallOpParam()
        op.statusCode = 200
        second.answer(op)
        assert pj_lib.wait_until(lambda: second.state == CONFIRMED, 8)
        assert pj_lib.wait_until(lambda: first.state == DISCONNECTED, 8)  # cancelled
        assert pj_lib.wait_until(lambda: any(
            f"queue call={call.sip_call_id}" in ln and "outcome=answered" in ln
            and "agent=501411" in ln for ln in switch.log_lines), 5), switch.log_text()[-3000:]
        call.hangup(pj.CallOpParam(True))
        assert pj_lib.wait_until(lambda: second.state == DISCONNECTED, 8)
        pj_lib.wait_until(lambda: False, 1.0)
        record = next(r for r in call_records(switch.data_dir)
                      if r["call_id"] == call.sip_call_id)
        assert record["queue_outcome"] == "answered" and record["transferred_to"] == "501411"
    finally:
        pj_lib.ep.hangupAllCalls()
        pj_lib.wait_until(lambda: False, 0.5)
        for phone in [*agents.values(), *([carrier] if carrier else [])]:
            phone.shutdown()
