"""Interoperability with the SIP clients of Debian 12: baresip and sipsak, next to pjsua2.

Issue 19: a new user tried baresip and sipsak and neither could register. These tests run
the real binaries against `wte serve`: headless baresip registers with the demo password
and calls a pjsua2 phone with audio both ways (a tone each way, found in what the other
side recorded); sipsak registers; pjsua2 still authenticates with SHA-256 (read on the
wire through a relay); a Workspace line refuses a second device with 403 and a Warning.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pjsua2 as pj
import pytest

from switch.storage.cli import database_url
from switch.storage.devices import DeviceRow, devices_main, read_devices
from tests.support.audio import dominant_frequency
from tests.support.baresip import Baresip, require_binary, sipsak_register, write_tone
from tests.support.pjphone import Phone, make_phone
from tests.support.server import RunningSwitch, config_with, start_switch, wait_record
from tests.support.udp_relay import UdpRelay, digest_algorithm, header_values

DEMO = {u: f"demo-{u}" for u in ("501410", "501411", "501412", "501420", "502411", "502412")}
CONFIRMED = pj.PJSIP_INV_STATE_CONFIRMED
DISCONNECTED = pj.PJSIP_INV_STATE_DISCONNECTED


@pytest.fixture(scope="module")
def switch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSwitch]:
    tmp = tmp_path_factory.mktemp("interop")
    running = start_switch(tmp, config=config_with(tmp, {"calls.ring_timeout": 5}))
    yield running
    running.stop()


def devices(switch: RunningSwitch) -> list[DeviceRow]:
    """The switch's device inventory, read from its database as `wte devices` does."""
    return asyncio.run(read_devices(database_url(str(switch.data_dir)), time.time()))


def wait_device(switch: RunningSwitch, predicate: Any, timeout: float = 10.0) -> DeviceRow:
    end = time.monotonic() + timeout
    while True:
        found = [d for d in devices(switch) if predicate(d)]
        if found:
            return found[0]
        if time.monotonic() > end:
            raise AssertionError(f"no such device in {devices(switch)}\n{switch.log_text()[-3000:]}")
        time.sleep(0.2)


@pytest.fixture
def callee(pj_lib: Any, switch: RunningSwitch, tmp_path: Path) -> Iterator[Phone]:
    phone = make_phone(pj_lib, transport="UDP", user="501411", host=switch.host,
                       port=switch.port, password=DEMO["501411"], register=True)
    assert phone.wait_registration(lambda e: e[0] == 200, since=0) is not None, switch.log_text()
    yield phone
    pj_lib.ep.hangupAllCalls()
    pj_lib.wait_until(lambda: all(c.state in (DISCONNECTED, pj.PJSIP_INV_STATE_NULL)
                                  for c in phone.account.incoming), 5)
    phone.shutdown()


def test_baresip_registers_and_calls_a_pjsua2_phone_with_two_way_audio(
        pj_lib: Any, switch: RunningSwitch, callee: Phone, tmp_path: Path) -> None:
    require_binary("baresip")
    callee.account.answer_with = 200
    callee.account.tone_freq = 440
    callee.account.record_path = str(tmp_path / "pjsua2-heard.wav")
    tone = write_tone(tmp_path / "baresip-says.wav", 1000)
    bs = Baresip(tmp_path / "baresip", user="501410", password=DEMO["501410"],
                 registrar=f"{switch.host}:{switch.port}", tone_wav=tone, host=switch.host)
    try:
        # registered: the binding is stored, and the inventory knows the software
        row = wait_device(switch, lambda d: d.user == "501410" and d.vendor == "baresip")
        assert row.active and row.transport == "udp" and row.firmware
        bs.command("dial", f"sip:501411@{switch.host}:{switch.port}")
        assert pj_lib.wait_until(lambda: len(callee.account.incoming) == 1, 10), (
            bs.log_text(), switch.log_text()[-3000:])
        incoming = callee.account.incoming[0]
        assert pj_lib.wait_until(lambda: incoming.state == CONFIRMED and incoming.media_active, 10)
        assert bs.wait_event("CALL_ESTABLISHED", 5) is not None, bs.log_text()
        pj_lib.wait_until(lambda: False, 3.0)  # audio flows both ways
        call_id = incoming.sip_call_id
        incoming.stop_media()
        bs.command("hangup")
        assert bs.wait_event("CALL_CLOSED", 10) is not None, bs.log_text()
        assert pj_lib.wait_until(lambda: incoming.state == DISCONNECTED, 10)
    finally:
        bs.stop()
    heard_by_pjsua2, level_a = dominant_frequency(tmp_path / "pjsua2-heard.wav")
    assert abs(heard_by_pjsua2 - 1000) < 20 and level_a > 100, (heard_by_pjsua2, level_a)
    baresip_heard = bs.heard()
    assert baresip_heard is not None, list(bs.recordings.iterdir())
    heard_by_baresip, level_b = dominant_frequency(baresip_heard)
    assert abs(heard_by_baresip - 440) < 20 and level_b > 100, (heard_by_baresip, level_b)
    assert call_id  # the call is on record, answered, in G.711
    rec = wait_record(switch.data_dir, lambda r: r["callee"] == "501411" and r["caller"] == "501410"
                      and r["end"] and r["answer"])
    assert rec["codec"] in ("PCMU", "PCMA")


def test_sipsak_registers(switch: RunningSwitch) -> None:
    done = sipsak_register(user="501412", password=DEMO["501412"], host=switch.host,
                           port=switch.port)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output + switch.log_text()[-2000:]
    # the challenge sipsak answered listed MD5 first (it takes the first one)
    challenges = [ln for ln in output.splitlines() if ln.startswith("WWW-Authenticate:")]
    assert challenges and "algorithm=MD5" in challenges[0], output
    row = wait_device(switch, lambda d: d.user == "501412" and d.vendor == "sipsak")
    assert row.active and row.expires_in > 200
    # `wte devices`: one JSON line per device with user, model, firmware, transport, source
    # and last registration
    out = io.StringIO()
    assert devices_main(argparse.Namespace(data_dir=switch.data_dir), out) == 0
    listed = [json.loads(line) for line in out.getvalue().splitlines()]
    mine = [d for d in listed if d["user"] == "501412"]
    assert mine and mine[0]["model"] == "sipsak" and mine[0]["firmware"] == "0.9.8.1"
    assert mine[0]["transport"] == "udp" and mine[0]["source"].startswith(f"{switch.host}:")
    assert abs(mine[0]["registered_at"] - time.time()) < 60


def test_a_workspace_line_refuses_a_second_device(switch: RunningSwitch) -> None:
    first = sipsak_register(user="501420", password=DEMO["501420"], host=switch.host,
                            port=switch.port, contact=f"sip:501420@{switch.host}:45061")
    assert first.returncode == 0, first.stdout + first.stderr
    second = sipsak_register(user="501420", password=DEMO["501420"], host=switch.host,
                             port=switch.port, contact=f"sip:501420@{switch.host}:45062")
    output = second.stdout + second.stderr
    assert second.returncode != 0 and "403" in output, output
    assert "device limit" in output, output  # the Warning says why
    rows = [d for d in devices(switch) if d.user == "501420" and d.active]
    assert [d.contact for d in rows] == [f"sip:501420@{switch.host}:45061"]


def test_pjsua2_still_authenticates_with_sha256(pj_lib: Any, switch: RunningSwitch,
                                                callee: Phone) -> None:
    """REGISTER (401) and INVITE (407): the credentials pjsua2 sends are SHA-256."""
    relay = UdpRelay((switch.host, switch.port), host=switch.host)
    phone = make_phone(pj_lib, transport="UDP", user="502412", host=switch.host, port=relay.port,
                       password=DEMO["502412"], register=True)
    try:
        assert phone.wait_registration(lambda e: e[0] == 200, since=0) is not None, switch.log_text()
        registers = relay.requests("REGISTER")
        credentials = [v for r in registers for v in header_values(r, "Authorization")]
        assert credentials, registers
        assert {digest_algorithm(v) for v in credentials} == {"SHA-256"}, credentials
        challenges = [m.decode() for m in relay.to_client if m.startswith(b"SIP/2.0 401")]
        offered = header_values(challenges[0], "WWW-Authenticate")
        assert [digest_algorithm(v) for v in offered] == ["SHA-256", "MD5"], offered
        callee.account.answer_with = 486
        call = phone.call(f"sip:501411@{switch.host}:{relay.port}")
        assert pj_lib.wait_until(lambda: call.state == DISCONNECTED, 10), switch.log_text()[-2000:]
        assert call.last_status == 486
        invites = relay.requests("INVITE")
        proxy_credentials = [v for r in invites for v in header_values(r, "Proxy-Authorization")]
        assert proxy_credentials and {digest_algorithm(v) for v in proxy_credentials} == {"SHA-256"}
    finally:
        phone.shutdown()
        pj_lib.wait_until(lambda: False, 0.3)
        relay.close()
