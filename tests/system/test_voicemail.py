"""Voicemail end to end with pjsua2 phones (issue 13).

501411 calls 501410, who does not answer: after the greeting and the beep 501411 sends a
440 Hz tone for 3 s and hangs up; the message is listed by the visual voicemail API; 501410
dials *86, sends the PIN by RFC 4733, presses the listen key and records what it hears:
the 440 Hz tone is in it; after delete the counts are 0. Busy and unreachable deposits,
the closed hunt group's `voicemail:501410`, the API's refusals, and a deposit that
survives a kill -9 right after the caller's BYE got its 200 OK.
"""

from __future__ import annotations

import base64
import datetime as dt
import gc
import json
import signal
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pjsua2 as pj
import pytest
import yaml

from tests.support.audio import read_wav
from tests.support.pjphone import Phone, PjCall, make_phone
from tests.support.server import (
    EXAMPLE_CONFIG,
    RunningSwitch,
    start_switch,
    write_config,
)

CONFIRMED = pj.PJSIP_INV_STATE_CONFIRMED
DISCONNECTED = pj.PJSIP_INV_STATE_DISCONNECTED
USERS = ("501410", "501411")


def voicemail_config(tmp: Path) -> Path:
    """The example with a 3 s ring timeout and the sales hunt group closed today (its
    closed target is `voicemail:501410`)."""
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    data.setdefault("switch", {})["calls"] = {"ring_timeout": 3}
    acme = data["customers"][0]
    today = dt.datetime.now(ZoneInfo("Europe/Paris")).date()
    acme["schedules"].append({"id": "closed_now", "hours": {"mon": ["08:00-18:00"]},
                              "closed_dates": [str(today + dt.timedelta(days=d))
                                               for d in (-1, 0, 1)]})
    sales = acme["sites"][0]["hunt_groups"][0]
    assert sales["id"] == "sales" and sales["closed"] == "voicemail:501410"
    sales["schedule"] = "closed_now"
    return write_config(tmp / "voicemail.yaml", data)


@pytest.fixture(scope="module")
def switch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSwitch]:
    tmp = tmp_path_factory.mktemp("voicemail")
    running = start_switch(tmp, config=voicemail_config(tmp))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def phones(pj_lib: Any, switch: RunningSwitch) -> Iterator[dict[str, Phone]]:
    made = {u: make_phone(pj_lib, transport="UDP", user=u, host=switch.host, port=switch.port,
                          password=f"demo-{u}", register=True, mwi=True) for u in USERS}
    for phone in made.values():
        assert phone.wait_registration(lambda e: e[0] == 200, since=0) is not None
    yield made
    for phone in made.values():
        phone.shutdown()


# -- helpers --

def api(switch: RunningSwitch, method: str, path: str, user: str,
        password: str | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(f"http://{switch.host}:{switch.http_port}{path}",
                                 method=method)
    token = base64.b64encode(f"{user}:{password or 'demo-' + user}".encode()).decode()
    req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            body = resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        body, status = exc.read(), exc.code
    if body[:4] == b"RIFF":
        return status, body
    return status, json.loads(body) if body else None


def messages(switch: RunningSwitch, user: str) -> dict[str, Any]:
    status, body = api(switch, "GET", "/voicemail/v1/messages", user)
    assert status == 200, body
    assert isinstance(body, dict)
    return body


class Tone:
    """A tone a phone sends into its call from now until `stop()`."""

    def __init__(self, call: PjCall, freq: int) -> None:
        self.gen = pj.ToneGenerator()
        self.gen.createToneGenerator(8000, 1)
        desc = pj.ToneDesc()
        desc.freq1, desc.freq2, desc.on_msec, desc.off_msec, desc.volume = freq, 0, 30000, 0, 0
        vec = pj.ToneDescVector()
        vec.append(desc)
        self.gen.play(vec, True)
        info = call.getInfo()
        self.aud = next(call.getAudioMedia(i) for i, mi in enumerate(info.media)
                        if mi.type == pj.PJMEDIA_TYPE_AUDIO)
        self.gen.startTransmit(self.aud)

    def stop(self) -> None:
        self.gen.stopTransmit(self.aud)
        del self.gen
        gc.collect()


def recording_started(switch: RunningSwitch, call: PjCall) -> bool:
    return any(f"recording call={call.sip_call_id}" in ln for ln in switch.log_lines)


def deposit(pj_lib: Any, switch: RunningSwitch, caller: Phone, dialed: str,
            seconds: float = 3.0) -> PjCall:
    """`caller` dials, waits for the greeting and the beep (the switch's recorder starts),
    sends 440 Hz for `seconds` and hangs up; returns once the switch answered the BYE.

    PJSIP calls the call DISCONNECTED as soon as it sends its BYE; the switch logs "call ...
    ended" right after it sent the BYE's 200 OK (and only once the message is stored)."""
    call = caller.call(f"sip:{dialed}@{switch.host}:{switch.port}")
    assert pj_lib.wait_until(lambda: call.state == CONFIRMED, 12), switch.log_text()[-3000:]
    assert pj_lib.wait_until(lambda: call.media_active, 5)
    assert pj_lib.wait_until(lambda: recording_started(switch, call), 20), \
        switch.log_text()[-3000:]
    tone = Tone(call, 440)
    pj_lib.wait_until(lambda: False, seconds)
    tone.stop()
    call.hangup(pj.CallOpParam(True))
    assert pj_lib.wait_until(lambda: call.state == DISCONNECTED, 10)
    assert pj_lib.wait_until(lambda: any(f"call {call.sip_call_id} ended" in ln
                                         for ln in switch.log_lines), 10)
    return call


def tone_windows(path: Path, freq: float) -> int:
    """How many 0.5 s windows of the WAV are dominated by `freq` (±10 Hz), loud enough."""
    data, rate = read_wav(path)
    n = rate // 2
    found = 0
    for start in range(0, len(data) - n, n):
        w = data[start:start + n]
        if float(np.sqrt(np.mean(w ** 2))) < 300:
            continue
        spectrum = np.abs(np.fft.rfft(w * np.hanning(n)))
        spectrum[0] = 0
        peak = float(np.fft.rfftfreq(n, 1.0 / rate)[int(np.argmax(spectrum))])
        if abs(peak - freq) <= 10:
            found += 1
    return found


def finish(pj_lib: Any, phones: dict[str, Phone]) -> None:
    pj_lib.ep.hangupAllCalls()
    pj_lib.wait_until(lambda: all(c.state in (DISCONNECTED, pj.PJSIP_INV_STATE_NULL)
                                  for p in phones.values() for c in p.account.incoming), 5)
    for p in phones.values():
        p.account.answer_with = None
        p.account.incoming.clear()


def clear_mailbox(switch: RunningSwitch, user: str) -> None:
    for m in messages(switch, user)["messages"]:
        api(switch, "DELETE", f"/voicemail/v1/messages/{m['id']}", user)


# -- the tests --

def test_no_answer_deposit_then_listen_and_delete(pj_lib: Any, switch: RunningSwitch,
                                                  phones: dict[str, Phone],
                                                  tmp_path: Path) -> None:
    clear_mailbox(switch, "501410")
    lamp = phones["501410"].account.mwi
    try:
        deposit(pj_lib, switch, phones["501411"], "501410")
        assert len(phones["501410"].account.incoming) == 1  # it rang first, unanswered
        # the phone's message-waiting indication (RFC 3842) says one new message
        assert pj_lib.wait_until(lambda: bool(lamp) and "Voice-Message: 1/0" in lamp[-1], 5), \
            lamp[-3:]
        assert "Messages-Waiting: yes" in lamp[-1]
    finally:
        finish(pj_lib, phones)
    # stored before the BYE was answered: listed at once
    box = messages(switch, "501410")
    assert (box["new"], box["old"]) == (1, 0), box
    [msg] = box["messages"]
    assert msg["caller"] == "501411" and not msg["heard"] and not msg["urgent"]
    assert 2.0 <= msg["duration"] <= 4.5, msg
    status, wav = api(switch, "GET", f"/voicemail/v1/messages/{msg['id']}/audio", "501410")
    assert status == 200 and wav[:4] == b"RIFF"
    stored = tmp_path / "stored.wav"
    stored.write_bytes(wav)
    assert tone_windows(stored, 440) >= 4

    heard = tmp_path / "heard.wav"
    call = phones["501410"].call(f"sip:%2A86@{switch.host}:{switch.port}",
                                 record_path=str(heard))
    try:
        assert pj_lib.wait_until(lambda: call.state == CONFIRMED, 8), switch.log_text()[-3000:]
        assert pj_lib.wait_until(lambda: call.media_active, 5)
        pj_lib.wait_until(lambda: False, 1.0)
        call.dialDtmf("1410#")  # RFC 4733
        assert pj_lib.wait_until(lambda: any("PIN accepted" in ln for ln in switch.log_lines),
                                 8), switch.log_text()[-3000:]
        pj_lib.wait_until(lambda: False, 1.0)
        call.dialDtmf("1")  # listen
        pj_lib.wait_until(lambda: False, 16.0)  # date, caller, the message, the menu
        call.dialDtmf("7")  # delete
        assert pj_lib.wait_until(lambda: any(f"message {msg['id']} deleted" in ln
                                             for ln in switch.log_lines), 8)
        call.stop_media()
        call.hangup(pj.CallOpParam(True))
        assert pj_lib.wait_until(lambda: call.state == DISCONNECTED, 8)
    finally:
        finish(pj_lib, phones)
    assert tone_windows(heard, 440) >= 4, "the 440 Hz message was not heard"
    box = messages(switch, "501410")
    assert (box["new"], box["old"], box["messages"]) == (0, 0, [])
    # deleted: the lamp clears
    assert pj_lib.wait_until(lambda: "Messages-Waiting: no" in lamp[-1], 5), lamp[-3:]


def test_do_not_disturb_sends_callers_to_the_mailbox(pj_lib: Any, switch: RunningSwitch,
                                                     phones: dict[str, Phone]) -> None:
    """Issue 15: DND is busy treatment, and busy treatment is the mailbox when the user
    has one: 501411's call is answered by 501410's busy greeting; 501410 never rings."""
    code = phones["501410"].call(f"sip:%2A78@{switch.host}:{switch.port}")
    assert pj_lib.wait_until(lambda: code.state == DISCONNECTED, 15)
    clear_mailbox(switch, "501410")
    try:
        call = deposit(pj_lib, switch, phones["501411"], "501410", seconds=2.0)
        assert phones["501410"].account.incoming == []
    finally:
        finish(pj_lib, phones)
        undo = phones["501410"].call(f"sip:%2A79@{switch.host}:{switch.port}")
        assert pj_lib.wait_until(lambda: undo.state == DISCONNECTED, 15)
    assert any(f"call {call.sip_call_id}: application voicemail_busy" in ln
               for ln in switch.log_lines)
    assert messages(switch, "501410")["new"] == 1
    clear_mailbox(switch, "501410")


def test_busy_deposit_uses_the_busy_greeting(pj_lib: Any, switch: RunningSwitch,
                                             phones: dict[str, Phone]) -> None:
    clear_mailbox(switch, "501410")
    phones["501410"].account.answer_with = 486
    try:
        call = deposit(pj_lib, switch, phones["501411"], "501410", seconds=2.0)
    finally:
        finish(pj_lib, phones)
    assert any(f"call {call.sip_call_id}: application voicemail_busy" in ln
               for ln in switch.log_lines)
    box = messages(switch, "501410")
    assert box["new"] == 1 and box["messages"][0]["caller"] == "501411"
    clear_mailbox(switch, "501410")


def test_unreachable_deposit_and_the_api_refusals(pj_lib: Any, switch: RunningSwitch,
                                                  phones: dict[str, Phone]) -> None:
    """501412 (Claire) has no registered phone: her mailbox answers at once."""
    try:
        call = deposit(pj_lib, switch, phones["501411"], "501412", seconds=2.0)
    finally:
        finish(pj_lib, phones)
    assert any(f"call {call.sip_call_id}: nobody to ring, answering with voicemail_unavailable"
               in ln for ln in switch.log_lines)
    box = messages(switch, "501412")
    assert box["new"] == 1
    mid = box["messages"][0]["id"]
    # another user's message: 404, as a message that does not exist; nothing changes
    for method, path in (("GET", f"/voicemail/v1/messages/{mid}/audio"),
                         ("POST", f"/voicemail/v1/messages/{mid}/heard"),
                         ("DELETE", f"/voicemail/v1/messages/{mid}")):
        assert api(switch, method, path, "501410")[0] == 404
    assert messages(switch, "501410")["messages"] == []
    # a user without voicemail (501411: `voicemail: false`) has no mailbox to read
    assert api(switch, "GET", "/voicemail/v1/messages", "501411")[0] == 404
    # wrong credentials: 401
    status, _ = api(switch, "GET", "/voicemail/v1/messages", "501412", "wrong-password")
    assert status == 401
    # heard, then deleted, by its owner
    status, body = api(switch, "POST", f"/voicemail/v1/messages/{mid}/heard", "501412")
    assert status == 200 and body == {"id": mid, "heard": True}
    assert (messages(switch, "501412")["new"], messages(switch, "501412")["old"]) == (0, 1)
    assert api(switch, "DELETE", f"/voicemail/v1/messages/{mid}", "501412")[0] == 204
    assert messages(switch, "501412")["messages"] == []


def test_closed_hunt_group_reaches_the_mailbox(pj_lib: Any, switch: RunningSwitch,
                                               phones: dict[str, Phone]) -> None:
    clear_mailbox(switch, "501410")
    try:
        call = deposit(pj_lib, switch, phones["501411"], "501401", seconds=2.0)
    finally:
        finish(pj_lib, phones)
    assert phones["501410"].account.incoming == []  # the closed group rang nobody
    assert any(f"call {call.sip_call_id}: application voicemail_deposit" in ln
               for ln in switch.log_lines)
    box = messages(switch, "501410")
    assert box["new"] == 1 and box["messages"][0]["caller"] == "501411"
    clear_mailbox(switch, "501410")


def test_a_deposit_survives_kill_9_right_after_the_bye(pj_lib: Any, tmp_path: Path) -> None:
    first = start_switch(tmp_path, config=voicemail_config(tmp_path))
    caller = make_phone(pj_lib, transport="UDP", user="501411", host=first.host,
                        port=first.port, password="demo-501411", register=True)
    try:
        assert caller.wait_registration(lambda e: e[0] == 200, since=0) is not None
        # 501412 has no phone: the mailbox answers at once
        deposit(pj_lib, first, caller, "501412", seconds=2.0)
        first.stop(signal.SIGKILL)  # right after the 200 OK of the BYE
    finally:
        caller.shutdown()
        pj_lib.ep.hangupAllCalls()
    second = start_switch(tmp_path, config=voicemail_config(tmp_path), port=first.port)
    try:
        box = messages(second, "501412")
        assert box["new"] == 1, box
        mid = box["messages"][0]["id"]
        status, wav = api(second, "GET", f"/voicemail/v1/messages/{mid}/audio", "501412")
        assert status == 200
        (tmp_path / "after.wav").write_bytes(wav)
        assert tone_windows(tmp_path / "after.wav", 440) >= 2
    finally:
        second.stop()
