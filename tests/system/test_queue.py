"""The example's support queue (`402`, `+33562070402`) with real phones (issue 14).

The queue's schedule is forced open (night switch CLI) so the test does not depend on the
clock. Its agents here are 501410 and 501411 (both registered pjsua2 phones); 501411 logs
out with `#50402` first. Three carrier callers enter while 501410 is busy in another
call: the first hears sound (the welcome, its position, music) and the switch logs its
position announcement; when 501410 hangs up it is offered the oldest caller; after that
queue call and the wrap-up, the second; the third waits past the maximum wait and lands
on the overflow target (501412's mailbox). 501411, logged out, never rings for the queue.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pjsua2 as pj
import pytest
import yaml

from tests.support.audio import read_wav
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
CALLER = "+33612345678"
TOKEN = "queue-" + secrets.token_hex(8)
WRAP_UP = 3
MAX_WAIT = 30


def queue_config(tmp: Path, port: int) -> Path:
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    support = data["customers"][0]["sites"][0]["queues"][0]
    assert support["id"] == "support"
    support.update(agents=["501410", "501411"], wrap_up=WRAP_UP, max_wait=MAX_WAIT,
                   announce_every=5)
    data.setdefault("switch", {}).setdefault("calls", {})["ring_timeout"] = 10
    return write_config(tmp / "queue.yaml", data, carrier_port=port)


@pytest.fixture(scope="module")
def switch(pj_lib: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSwitch]:
    tmp = tmp_path_factory.mktemp("queue")
    config = queue_config(tmp, carrier_port(pj_lib))
    running = start_switch(tmp, config=config, env={"WTE_ADMIN_TOKEN": TOKEN})
    out = subprocess.run([sys.executable, "-m", "switch", "schedule", "set", "office", "open",
                          "--config", str(config), "--data-dir", str(running.data_dir)],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    time.sleep(1.2)  # a running switch applies it within a second
    yield running
    running.stop()


@pytest.fixture(scope="module")
def phones(pj_lib: Any, switch: RunningSwitch) -> Iterator[dict[str, Phone]]:
    made = {u: make_phone(pj_lib, transport="UDP", user=u, host=switch.host, port=switch.port,
                          password=f"demo-{u}", register=True) for u in ("501410", "501411")}
    for phone in made.values():
        assert phone.wait_registration(lambda e: e[0] == 200, since=0) is not None
    made["carrier"] = make_carrier_phone(pj_lib, CALLER)
    yield made
    pj_lib.ep.hangupAllCalls()
    pj_lib.wait_until(lambda: False, 0.5)
    for phone in made.values():
        phone.shutdown()


def lines(switch: RunningSwitch, *words: str) -> list[str]:
    return [ln for ln in switch.log_lines if all(w in ln for w in words)]


def queue_log(switch: RunningSwitch) -> str:
    return "\n".join(ln for ln in switch.log_lines[-150:]
                     if "queue" in ln or "divert" in ln or "call " in ln)


def test_queue_serves_the_oldest_first_after_wrap_up_and_overflows_the_last(
        pj_lib: Any, switch: RunningSwitch, phones: dict[str, Phone], tmp_path: Path) -> None:
    """(pjsua2 here holds 4 calls at once: the agent is busy with a first queue caller,
    and two more callers wait meanwhile.)"""
    agent, other, carrier = phones["501410"], phones["501411"], phones["carrier"]
    queue_uri = f"sip:{QUEUE}@{switch.host}:{switch.port}"
    # 501411 logs out of the queue with its code, confirmed by a prompt
    code = other.call(f"sip:#50402@{switch.host}:{switch.port}")
    assert pj_lib.wait_until(lambda: code.state == CONFIRMED, 8), switch.log_text()[-2000:]
    assert pj_lib.wait_until(lambda: code.state == DISCONNECTED, 15)  # the switch hangs up
    assert lines(switch, "queue agent", "agent=501411", "action=logout", "result=ok")
    pj_lib.wait_until(lambda: False, 0.5)
    # a first caller: the free agent is offered it at once and answers (now busy)
    agent.account.answer_with = 200
    first = carrier.call(queue_uri)
    assert pj_lib.wait_until(lambda: first.state == CONFIRMED, 8), queue_log(switch)
    assert pj_lib.wait_until(lambda: bool(agent.account.incoming), 10), queue_log(switch)
    taken = agent.account.incoming[0]
    from_line = next(ln for ln in taken.incoming_msg.splitlines()
                     if ln.lower().startswith(("from:", "f:")))
    # the agent sees the caller's number and the queue's name
    assert CALLER in from_line and "Support" in from_line, from_line
    assert pj_lib.wait_until(lambda: taken.state == CONFIRMED, 8), queue_log(switch)
    assert pj_lib.wait_until(lambda: bool(lines(
        switch, f"queue call={first.sip_call_id}", "outcome=answered", "agent=501410")), 5)
    # two more callers enter while the agent is busy, in this order
    heard = tmp_path / "second-caller.wav"
    waiting = []
    for i in range(2):
        call = carrier.call(queue_uri, record_path=str(heard) if i == 0 else None)
        assert pj_lib.wait_until(lambda c=call: c.state == CONFIRMED, 8), queue_log(switch)
        waiting.append(call)
        pj_lib.wait_until(lambda: False, 0.3)
    ids = [c.sip_call_id for c in waiting]
    for position, call_id in enumerate(ids, 1):
        assert pj_lib.wait_until(lambda cid=call_id, p=position: bool(lines(
            switch, f"queue call={cid}", "event=position", f"position={p}")), 3), \
            queue_log(switch)
    pj_lib.wait_until(lambda: False, 3.0)
    waiting[0].stop_media()
    data, rate = read_wav(heard)
    assert len(data) >= 2 * rate
    rms = float(np.sqrt(np.mean(data[: 3 * rate].astype(np.float64) ** 2)))
    assert rms > 300, rms  # the welcome, the position and the music: sound, not silence
    assert len(agent.account.incoming) == 1  # busy: not offered anything more
    # the agent ends the first call: after the wrap-up, it is offered the oldest waiting
    taken.hangup(pj.CallOpParam(True))
    ended = time.monotonic()
    assert pj_lib.wait_until(lambda: len(agent.account.incoming) >= 2, 20), queue_log(switch)
    assert time.monotonic() - ended >= WRAP_UP - 0.5
    assert lines(switch, f"queue call={ids[0]}", "event=offer", "agent=501410")
    assert not lines(switch, f"queue call={ids[1]}", "event=offer")
    second = agent.account.incoming[1]
    assert pj_lib.wait_until(lambda: second.state == CONFIRMED, 8)
    # the last waits past the maximum wait: the overflow target (501412's mailbox) takes it
    assert pj_lib.wait_until(
        lambda: bool(lines(switch, f"queue call={ids[1]}", "outcome=overflowed",
                           "why=max-wait")), MAX_WAIT + 10), queue_log(switch)
    assert pj_lib.wait_until(
        lambda: bool(lines(switch, f"call {ids[1]}: application transfer to voicemail:501412")),
        5), queue_log(switch)
    assert waiting[1].state == CONFIRMED  # the mailbox answers it on the same call
    # 501411, logged out, never rang for the queue
    assert not other.account.incoming
    assert len(agent.account.incoming) == 2
    # figures: two answered, one overflowed, nobody waiting, one agent logged in
    req = urllib.request.Request(f"http://{switch.host}:{switch.http_port}/metrics")
    req.add_header("Authorization", f"Bearer {TOKEN}")
    with urllib.request.urlopen(req, timeout=5) as resp:
        text = resp.read().decode()
    label = '{customer="acme",queue="support"}'
    figures = {m.group(1): float(m.group(2)) for m in re.finditer(
        r"^wte_queue_(\w+)" + re.escape(label) + r" (\S+)$", text, re.M)}
    assert figures["answered"] == 2 and figures["overflowed"] == 1, figures
    assert figures["waiting"] == 0 and figures["agents_logged_in"] == 1, figures
    pj_lib.ep.hangupAllCalls()
    pj_lib.wait_until(lambda: False, 1.0)
    records = {r["call_id"]: r for r in call_records(switch.data_dir)}
    record = records[first.sip_call_id]
    assert record["decision"] == "queue" and record["transferred_to"] == "501410", record
    assert record["queue_outcome"] == "answered" and 0 <= waited(record) < 10, record
    answered = records[ids[0]]
    assert answered["queue_outcome"] == "answered" and waited(answered) >= WRAP_UP
    overflowed = records[ids[1]]
    assert overflowed["queue_outcome"] == "overflowed", overflowed
    assert MAX_WAIT <= waited(overflowed) < MAX_WAIT + 5, overflowed


def waited(record: dict[str, object]) -> float:
    value = record["queue_wait"]
    assert isinstance(value, int | float), record
    return float(value)
