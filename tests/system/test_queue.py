"""The example's support queue (`402`, `+33562070402`) with real phones (issue 14).

The queue's schedule is forced open (night switch CLI) so the test does not depend on the
clock. Its agents here are 501410 and 501411 (both registered pjsua2 phones); 501411 logs
out with `#50402` first. Three carrier callers enter while 501410 is busy with a first
queue caller: the first of them hears sound (the welcome, its position, music) and the
switch logs each position announcement; when 501410 hangs up it is offered the oldest
waiting caller after the wrap-up; the two others wait past the maximum wait and land on
the overflow target (501412's mailbox). 501411, logged out, never rings for the queue.

Callback: a caller presses the queue's callback key (5) and hangs up; when the agent is
free again the switch calls the agent (who sees the caller's number and the queue's
name), and on its answer the caller's carrier phone rings with the queue's number as the
caller; the two talk through the switch.
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

from switch.sip import Response
from tests.support.audio import read_wav
from tests.support.carrier import Carrier
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


def queue_config(tmp: Path, port: int, extra_port: int) -> Path:
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    # a second carrier address, a small Python user agent: this pjsua2 build holds at most
    # 4 calls per process, and the test needs more callers at once
    data["customers"][0]["trunks"][0]["trusted"].append(f"127.0.0.1:{extra_port}")
    support = data["customers"][0]["sites"][0]["queues"][0]
    assert support["id"] == "support"
    support.update(agents=["501410", "501411"], wrap_up=WRAP_UP, max_wait=MAX_WAIT,
                   announce_every=5, callback_key="5")
    data.setdefault("switch", {}).setdefault("calls", {})["ring_timeout"] = 10
    return write_config(tmp / "queue.yaml", data, carrier_port=port)


@pytest.fixture(scope="module")
def extra() -> Iterator[Carrier]:
    carrier = Carrier()
    yield carrier
    carrier.close()


@pytest.fixture(scope="module")
def switch(pj_lib: Any, extra: Carrier,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSwitch]:
    tmp = tmp_path_factory.mktemp("queue")
    config = queue_config(tmp, carrier_port(pj_lib), extra.port)
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
    assert pj_lib.settle_calls(), "calls of earlier tests still hold this library's slots"
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
        pj_lib: Any, switch: RunningSwitch, phones: dict[str, Phone], extra: Carrier,
        tmp_path: Path) -> None:
    """The agent is busy with a first queue caller while three more callers wait."""
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
    call = carrier.call(queue_uri, record_path=str(heard))
    assert pj_lib.wait_until(lambda: call.state == CONFIRMED, 8), queue_log(switch)
    waiting = [call]
    ids = [call.sip_call_id]
    oks: list[Response] = []
    for number in ("+33612345679", "+33612345670"):  # two more, from the other address
        pj_lib.wait_until(lambda: False, 0.3)
        cid = extra.call(switch.host, switch.port, QUEUE, from_number=number)
        ok = extra.final_response(cid)
        assert ok.status == 200, ok
        extra.ack(ok, switch.host, switch.port)
        ids.append(cid)
        oks.append(ok)
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
    # the last two wait past the maximum wait: the overflow target (501412's mailbox)
    for cid in ids[1:]:
        assert pj_lib.wait_until(
            lambda c=cid: bool(lines(switch, f"queue call={c}", "outcome=overflowed",
                                     "why=max-wait")), MAX_WAIT + 10), queue_log(switch)
        assert pj_lib.wait_until(
            lambda c=cid: bool(lines(switch,
                                     f"call {c}: application transfer to voicemail:501412")),
            5), queue_log(switch)
    assert not lines(switch, "ended", *ids[1:2])  # the mailbox answers on the same call
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
    assert figures["answered"] == 2 and figures["overflowed"] == 2, figures
    assert figures["waiting"] == 0 and figures["agents_logged_in"] == 1, figures
    pj_lib.ep.hangupAllCalls()
    for ok in oks:
        extra.bye(ok, switch.host, switch.port)
    pj_lib.wait_until(lambda: False, 1.5)
    records = {r["call_id"]: r for r in call_records(switch.data_dir)}
    record = records[first.sip_call_id]
    assert record["decision"] == "queue" and record["transferred_to"] == "501410", record
    assert record["queue_outcome"] == "answered" and 0 <= waited(record) < 10, record
    answered = records[ids[0]]
    assert answered["queue_outcome"] == "answered" and waited(answered) >= WRAP_UP
    for cid in ids[1:]:
        overflowed = records[cid]
        assert overflowed["queue_outcome"] == "overflowed", overflowed
        assert MAX_WAIT <= waited(overflowed) < MAX_WAIT + 5, overflowed


def test_a_caller_who_asks_for_a_callback_is_called_back_when_the_agent_frees(
        pj_lib: Any, switch: RunningSwitch, phones: dict[str, Phone]) -> None:
    agent, other, carrier = phones["501410"], phones["501411"], phones["carrier"]
    queue_uri = f"sip:{QUEUE}@{switch.host}:{switch.port}"
    code = other.call(f"sip:#50402@{switch.host}:{switch.port}")  # 501411 out (again)
    assert pj_lib.wait_until(lambda: code.state == DISCONNECTED, 20), queue_log(switch)
    pj_lib.wait_until(lambda: False, WRAP_UP + 0.5)  # the previous test's wrap-up
    before = len(agent.account.incoming)
    agent.account.answer_with = 200
    busy = carrier.call(queue_uri)  # the agent takes this one: busy
    assert pj_lib.wait_until(lambda: len(agent.account.incoming) > before, 10), \
        queue_log(switch)
    taken = agent.account.incoming[before]
    assert pj_lib.wait_until(lambda: taken.state == CONFIRMED, 8), queue_log(switch)
    agent.account.answer_with = None  # the callback rings: the test answers it
    waiting = carrier.call(queue_uri)
    assert pj_lib.wait_until(lambda: waiting.state == CONFIRMED, 8), queue_log(switch)
    cid = waiting.sip_call_id
    assert pj_lib.wait_until(lambda: bool(lines(switch, f"queue call={cid}", "event=position")),
                             5), queue_log(switch)
    pj_lib.wait_until(lambda: False, 2.0)  # media flowing both ways first
    waiting.dialDtmf("5")  # RFC 4733: the queue's callback key
    assert pj_lib.wait_until(lambda: bool(lines(
        switch, f"queue call={cid}", "event=callback-requested", f"number={CALLER}",
        "position=1")), 5), queue_log(switch)
    # the confirmation plays, then the switch hangs up
    assert pj_lib.wait_until(lambda: waiting.state == DISCONNECTED, 20), queue_log(switch)
    assert not lines(switch, f"queue call={cid}", "outcome=abandoned")
    # the agent frees: after the wrap-up, its phone rings for the callback
    carrier_before = len(carrier.account.incoming)
    taken.hangup(pj.CallOpParam(True))
    assert pj_lib.wait_until(lambda: len(agent.account.incoming) > before + 1,
                             WRAP_UP + 10), queue_log(switch)
    ring = agent.account.incoming[before + 1]
    from_line = header(ring.incoming_msg, "from")
    assert CALLER in from_line and "Support" in from_line, from_line
    assert not carrier.account.incoming[carrier_before:]  # the agent first
    op = pj.CallOpParam()
    op.statusCode = 200
    ring.answer(op)
    assert pj_lib.wait_until(lambda: ring.state == CONFIRMED, 8), queue_log(switch)
    assert pj_lib.wait_until(lambda: bool(lines(
        switch, f"queue call={cid}", "outcome=called_back", "agent=501410")), 5), \
        queue_log(switch)
    # then the caller's carrier phone rings, the queue's number as the caller
    assert pj_lib.wait_until(lambda: len(carrier.account.incoming) > carrier_before, 15), \
        queue_log(switch)
    back = carrier.account.incoming[carrier_before]
    from_line = header(back.incoming_msg, "from")
    assert QUEUE in from_line and CALLER not in from_line, from_line
    assert QUEUE in header(back.incoming_msg, "p-asserted-identity")
    back.answer(op)
    assert pj_lib.wait_until(lambda: back.state == CONFIRMED, 8), queue_log(switch)
    pj_lib.wait_until(lambda: False, 1.0)
    assert ring.state == CONFIRMED  # the agent and the caller talk
    back.hangup(pj.CallOpParam(True))
    assert pj_lib.wait_until(lambda: ring.state == DISCONNECTED, 8), queue_log(switch)
    if busy.state == CONFIRMED:
        busy.hangup(pj.CallOpParam(True))
    pj_lib.wait_until(lambda: False, 1.0)
    req = urllib.request.Request(f"http://{switch.host}:{switch.http_port}/metrics")
    req.add_header("Authorization", f"Bearer {TOKEN}")
    with urllib.request.urlopen(req, timeout=5) as resp:
        text = resp.read().decode()
    assert 'wte_queue_called_back{customer="acme",queue="support"} 1' in text
    records = call_records(switch.data_dir)
    original = next(r for r in records if r["call_id"] == cid)
    assert original["queue_outcome"] == "callback", original
    called = [r for r in records if r["queue_outcome"] == "called_back"]
    assert len(called) == 1, called
    assert called[0]["callee"] == "501410" and called[0]["transferred_to"] == CALLER, called
    assert called[0]["answer"] is not None and called[0]["end"] is not None, called


def header(message: str, name: str) -> str:
    short = {"from": "f:", "to": "t:"}.get(name)
    for ln in message.splitlines():
        low = ln.lower()
        if low.startswith(f"{name}:") or (short is not None and low.startswith(short)):
            return ln
    return ""


def waited(record: dict[str, object]) -> float:
    value = record["queue_wait"]
    assert isinstance(value, int | float), record
    return float(value)
