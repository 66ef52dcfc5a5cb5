"""The example's auto-attendant (`+33562070400`, "Accueil Toulouse") with real phones: a
pjsua2 phone on the carrier trunk calls it, hears the greeting, and is sent on by a menu
key, by dial by extension, by SIP INFO digits, or to the timeout target after invalid
keys; the schedule forced closed by the night switch sends it to the closed target.

The switch's trunk trusts the pjsua2 library's carrier transport, so these calls arrive as
calls from the public network, presenting +33612345678."""

from __future__ import annotations

import subprocess
import sys
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pjsua2 as pj
import pytest
import yaml

from tests.support.audio import dominant_frequency, read_wav
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
ATTENDANT = "+33562070400"
CALLER = "+33612345678"


def set_schedule(config: Path, data_dir: Path, mode: str) -> None:
    out = subprocess.run([sys.executable, "-m", "switch", "schedule", "set", "office", mode,
                          "--config", str(config), "--data-dir", str(data_dir)],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    time.sleep(1.2)  # a running switch applies it within a second


GREETING_HZ = 600.0  # the operator's greeting announcement: a tone a test can recognise


def attendant_config(tmp: Path, port: int) -> Path:
    """The example plan, its reception attendant greeting callers with the announcement
    `accueil` that the operator adds with `wte announcements add`."""
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    reception = data["customers"][0]["sites"][0]["auto_attendants"][0]
    assert reception["id"] == "reception"
    reception["greeting"] = "accueil"
    assert "8" not in reception["menu"]
    reception["menu"]["8"] = "0612345678"  # an external number: the carrier's mobile
    data.setdefault("switch", {}).setdefault("calls", {})["ring_timeout"] = 10
    return write_config(tmp / "attendant.yaml", data, carrier_port=port)


def add_announcement(config: Path, data_dir: Path, tmp: Path) -> None:
    wav = tmp / "accueil.wav"
    rate = 16000  # any rate: the switch converts it once, at upload
    t = np.arange(int(rate * 2.5)) / rate
    pcm = (0.4 * 32767 * np.sin(2 * np.pi * GREETING_HZ * t)).astype("<i2")
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    out = subprocess.run([sys.executable, "-m", "switch", "announcements", "add", str(wav),
                          "--customer", "acme", "--name", "accueil", "--config", str(config),
                          "--data-dir", str(data_dir)],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.fixture(scope="module")
def setup(pj_lib: Any, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[RunningSwitch, Path]]:
    tmp = tmp_path_factory.mktemp("attendant")
    config = attendant_config(tmp, carrier_port(pj_lib))
    add_announcement(config, tmp, tmp)
    running = start_switch(tmp, config=config)
    set_schedule(config, running.data_dir, "open")  # the test must not depend on the clock
    yield running, config
    running.stop()


@pytest.fixture(scope="module")
def switch(setup: tuple[RunningSwitch, Path]) -> RunningSwitch:
    return setup[0]


@pytest.fixture(scope="module")
def phones(pj_lib: Any, switch: RunningSwitch) -> Iterator[dict[str, Phone]]:
    made = {u: make_phone(pj_lib, transport="UDP", user=u, host=switch.host, port=switch.port,
                          password=f"demo-{u}", register=True) for u in ("501410", "501411")}
    for phone in made.values():
        assert phone.wait_registration(lambda e: e[0] == 200, since=0) is not None
    made["carrier"] = make_carrier_phone(pj_lib, CALLER)
    yield made
    for phone in made.values():
        phone.shutdown()


@pytest.fixture(autouse=True)
def idle(pj_lib: Any, phones: dict[str, Phone]) -> Iterator[None]:
    for phone in phones.values():
        phone.account.incoming.clear()
        phone.account.answer_with = None
        phone.account.tone_freq = None
        phone.account.record_path = None
    yield
    pj_lib.ep.hangupAllCalls()
    pj_lib.wait_until(lambda: False, 0.5)


def call_attendant(pj_lib: Any, switch: RunningSwitch, carrier: Phone,
                   **kwargs: Any) -> Any:
    call = carrier.call(f"sip:{ATTENDANT}@{switch.host}:{switch.port}", **kwargs)
    assert pj_lib.wait_until(lambda: call.state == CONFIRMED, 8), switch.log_text()[-3000:]
    assert pj_lib.wait_until(lambda: call.media_active, 5)
    return call


def rings(pj_lib: Any, phone: Phone, switch: RunningSwitch, timeout: float = 12.0) -> Any:
    assert pj_lib.wait_until(lambda: bool(phone.account.incoming), timeout), \
        f"{phone.aor} never rang: " + "\n".join(
            ln for ln in switch.log_lines[-60:] if "attendant" in ln or "dtmf" in ln
            or "divert" in ln or "call " in ln)
    return phone.account.incoming[0]


def send_info(call: Any, digits: str) -> None:
    prm = pj.CallSendDtmfParam()
    prm.method = pj.PJSUA_DTMF_METHOD_SIP_INFO
    prm.digits = digits
    call.sendDtmf(prm)


def test_greeting_then_key_0_rings_501410_presenting_the_caller(
        pj_lib: Any, switch: RunningSwitch, phones: dict[str, Phone], tmp_path: Path) -> None:
    heard = tmp_path / "greeting.wav"
    call = call_attendant(pj_lib, switch, phones["carrier"], record_path=str(heard))
    pj_lib.wait_until(lambda: False, 2.0)
    call.stop_media()  # closes the recording: the first two seconds after the 200 OK
    data, rate = read_wav(heard)
    assert len(data) >= rate  # at least a second was heard
    rms = float(np.sqrt(np.mean(data[: 2 * rate] ** 2)))
    assert rms > 300, rms  # sound, not silence
    # and it is the announcement the operator added, not the shipped greeting
    freq, _level = dominant_frequency(heard, skip_seconds=0.2, max_seconds=1.8)
    assert abs(freq - GREETING_HZ) < 15, freq
    call.dialDtmf("0")  # RFC 4733
    incoming = rings(pj_lib, phones["501410"], switch)
    from_line = next(ln for ln in incoming.incoming_msg.splitlines()
                     if ln.lower().startswith(("from:", "f:")))
    assert CALLER in from_line, from_line  # the target sees who calls
    assert not phones["501411"].account.incoming
    assert any("attendant" in ln and "key=0" in ln for ln in switch.log_lines)


def test_dial_by_extension_411_rings_501411(pj_lib: Any, switch: RunningSwitch,
                                            phones: dict[str, Phone]) -> None:
    call = call_attendant(pj_lib, switch, phones["carrier"])
    pj_lib.wait_until(lambda: False, 1.0)
    call.dialDtmf("411#")
    rings(pj_lib, phones["501411"], switch)
    assert not phones["501410"].account.incoming


def test_info_digits_are_honoured(pj_lib: Any, switch: RunningSwitch,
                                  phones: dict[str, Phone]) -> None:
    call = call_attendant(pj_lib, switch, phones["carrier"])
    pj_lib.wait_until(lambda: False, 1.0)
    send_info(call, "0")
    rings(pj_lib, phones["501410"], switch)
    assert any("source=info" in ln and "digit=0" in ln for ln in switch.log_lines)


def test_three_invalid_keys_land_on_the_timeout_target(
        pj_lib: Any, switch: RunningSwitch, phones: dict[str, Phone]) -> None:
    call = call_attendant(pj_lib, switch, phones["carrier"])
    for _ in range(3):
        pj_lib.wait_until(lambda: False, 1.0)
        call.dialDtmf("9")  # no such key: "invalid entry", then the menu again
        assert not phones["501410"].account.incoming or _ == 2
    rings(pj_lib, phones["501410"], switch, timeout=20)  # the example's timeout target


def test_connected_parties_hear_each_other(pj_lib: Any, switch: RunningSwitch,
                                           phones: dict[str, Phone], tmp_path: Path) -> None:
    target = phones["501410"].account
    target.answer_with, target.tone_freq = 200, 880
    target.record_path = str(tmp_path / "target-heard.wav")
    heard = tmp_path / "caller-heard.wav"
    call = call_attendant(pj_lib, switch, phones["carrier"], tone_freq=440,
                          record_path=str(heard))
    pj_lib.wait_until(lambda: False, 1.0)
    call.dialDtmf("0")
    answered = rings(pj_lib, phones["501410"], switch)
    assert pj_lib.wait_until(lambda: answered.state == CONFIRMED, 5)
    pj_lib.wait_until(lambda: False, 3.0)
    answered.stop_media()
    call.stop_media()
    call.hangup(pj.CallOpParam(True))
    assert pj_lib.wait_until(lambda: answered.state == DISCONNECTED, 5)  # BYE went through
    freq, level = dominant_frequency(tmp_path / "target-heard.wav", skip_seconds=1.0)
    assert abs(freq - 440) < 15 and level > 100, (freq, level)  # the caller's tone
    data, rate = read_wav(heard)
    tail = tmp_path / "tail.wav"
    _write_tail(heard, tail, seconds=1.5)
    freq, level = dominant_frequency(tail, skip_seconds=0.0)
    assert abs(freq - 880) < 15 and level > 100, (freq, level)  # the target's tone
    assert len(data) > rate
    time.sleep(0.5)
    record = next(r for r in call_records(switch.data_dir) if r["decision"] == "auto_attendant"
                  and r.get("transferred_to") == "501410")
    assert record["caller"] == CALLER


def _write_tail(src: Path, dst: Path, seconds: float) -> None:
    import wave

    with wave.open(str(src), "rb") as w:
        rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
        frames = w.readframes(w.getnframes())
    keep = int(seconds * rate) * width * channels
    with wave.open(str(dst), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(width)
        out.setframerate(rate)
        out.writeframes(frames[-keep:])


def test_closed_schedule_sends_callers_to_the_closed_target(
        pj_lib: Any, setup: tuple[RunningSwitch, Path], phones: dict[str, Phone]) -> None:
    switch, config = setup
    set_schedule(config, switch.data_dir, "closed")
    try:
        call = phones["carrier"].call(f"sip:{ATTENDANT}@{switch.host}:{switch.port}")
        pj_lib.wait_until(lambda: call.state in (CONFIRMED, DISCONNECTED), 8)
        pj_lib.wait_until(lambda: False, 1.0)
        if call.state != DISCONNECTED:  # the mailbox answered: leave it
            call.hangup(pj.CallOpParam(True))
        pj_lib.wait_until(lambda: call.state == DISCONNECTED, 5)
        time.sleep(0.5)
        latest = call_records(switch.data_dir, limit=1)[0]
        assert latest["decision"] == "voicemail" and latest["callee"] == "501410", latest
        assert not phones["501410"].account.incoming
    finally:
        set_schedule(config, switch.data_dir, "open")


def test_a_key_to_an_external_number_reaches_the_carrier_with_diversion(
        pj_lib: Any, switch: RunningSwitch, phones: dict[str, Phone]) -> None:
    """The attendant keeps the caller's number in From, so the carrier is told who sent
    the call on: Diversion (RFC 5806) and History-Info (RFC 7044) name the attendant."""
    call = call_attendant(pj_lib, switch, phones["carrier"])
    pj_lib.wait_until(lambda: False, 1.0)
    call.dialDtmf("8")
    incoming = rings(pj_lib, phones["carrier"], switch)  # the trunk leg, back at the carrier
    lines = incoming.incoming_msg.splitlines()
    request_line = lines[0]
    assert request_line.startswith("INVITE sip:+33612345678@"), request_line
    diversion = next(ln for ln in lines if ln.lower().startswith("diversion:"))
    assert "+33562070400" in diversion and "reason=unconditional" in diversion, diversion
    assert any(ln.lower().startswith("history-info:") and "+33562070400" in ln
               for ln in lines)
    from_line = next(ln for ln in lines if ln.lower().startswith(("from:", "f:")))
    assert CALLER in from_line, from_line
