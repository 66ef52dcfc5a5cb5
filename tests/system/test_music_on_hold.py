"""Music on hold in an anchored call, heard by a real phone (pjsua2, an independent stack).

501410 calls 501411 (site 01 anchors media); both send a test tone. 501410 puts the call on
hold (pjsua2 `setHold`: a re-INVITE with a=sendonly): 501411 then hears the shipped music on
hold -- its spectrum is made of the track's notes, not of 501410's tone. After the resume
(re-INVITE, sendrecv) the two hear each other's tones again.

An old-style party (the test carrier, raw SIP) holds with c=0.0.0.0 (RFC 2543, RFC 3264
section 8.4): the called user hears the music too, and no more of it after the resume.
"""

from __future__ import annotations

import gc
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pjsua2 as pj
import pytest

from switch.dialog.sdp import Direction, parse_sdp
from switch.sip import Response
from tests.support.audio import dominant_frequency, read_wav
from tests.support.carrier import SDP, Carrier
from tests.support.pjphone import Phone, PjCall, make_phone
from tests.support.server import RunningSwitch, start_switch
from tools.make_moh import NOTE_HZ

CALLER_TONE = 1400  # well above every note of the track (all below 1 kHz)
CALLEE_TONE = 1700
CONFIRMED = pj.PJSIP_INV_STATE_CONFIRMED


@pytest.fixture(scope="module")
def switch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSwitch]:
    running = start_switch(tmp_path_factory.mktemp("moh"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def phones(pj_lib: Any, switch: RunningSwitch) -> Iterator[dict[str, Phone]]:
    made = {user: make_phone(pj_lib, transport="UDP", user=user, host=switch.host,
                             port=switch.port, password=f"demo-{user}", register=True)
            for user in ("501410", "501411")}
    for phone in made.values():
        assert phone.wait_registration(lambda e: e[0] == 200, since=0) is not None
    yield made
    for phone in made.values():
        phone.shutdown()


def audio_status(call: PjCall) -> int:
    info = call.getInfo()
    return next(int(mi.status) for mi in info.media if mi.type == pj.PJMEDIA_TYPE_AUDIO)


def audio_media(call: PjCall) -> Any:
    info = call.getInfo()
    index = next(i for i, mi in enumerate(info.media) if mi.type == pj.PJMEDIA_TYPE_AUDIO)
    return call.getAudioMedia(index)


def record(pj_lib: Any, calls: list[tuple[PjCall, Path]], seconds: float) -> None:
    """Record what each call hears for `seconds` (new recorders: the media may have been
    re-created by the re-INVITE); the WAV headers are written when the recorders go."""
    recorders = []
    for call, path in calls:
        rec = pj.AudioMediaRecorder()
        rec.createRecorder(str(path))
        audio_media(call).startTransmit(rec)
        recorders.append(rec)
    pj_lib.wait_until(lambda: False, seconds)
    del rec
    recorders.clear()
    gc.collect()
    # PJSIP's conference bridge removes (and so closes) a port on its own clock thread: the
    # WAV header gets its sizes a moment later
    assert pj_lib.wait_until(lambda: all(closed(path) for _c, path in calls), 3)


def closed(path: Path) -> bool:
    head = path.read_bytes()[:8]
    return len(head) == 8 and head[4:8] != bytes(4)


def band_share(path: Path, freqs: tuple[float, ...], *, skip: float = 0.3) -> float:
    """The part of the recording's power (above 100 Hz) within 1.5 % of `freqs`."""
    data, rate = read_wav(path)
    data = data[int(skip * rate):]
    power = np.abs(np.fft.rfft(data * np.hanning(len(data)))) ** 2
    f = np.fft.rfftfreq(len(data), 1.0 / rate)
    audible = f > 100
    near = np.zeros_like(audible)
    for hz in freqs:
        near |= np.abs(f - hz) <= max(3.0, 0.015 * hz)
    total = float(power[audible].sum())
    return float(power[near & audible].sum()) / total if total > 0 else 0.0


def test_held_party_hears_music_then_the_other_again(pj_lib: Any, switch: RunningSwitch,
                                                     phones: dict[str, Phone],
                                                     tmp_path: Path) -> None:
    callee = phones["501411"].account
    callee.answer_with = 200
    callee.tone_freq = CALLEE_TONE
    call = phones["501410"].call(f"sip:501411@{switch.host}:{switch.port}",
                                 tone_freq=CALLER_TONE)
    try:
        assert pj_lib.wait_until(lambda: call.state == CONFIRMED and call.media_active, 8), \
            switch.log_text()[-3000:]
        held = callee.incoming[0]
        assert pj_lib.wait_until(lambda: held.media_active, 5)

        call.setHold(pj.CallOpParam(True))  # re-INVITE, a=sendonly (RFC 3264 section 8.4)
        # the switch answers the re-INVITE itself: 501411 gets no re-INVITE, only music
        assert pj_lib.wait_until(lambda: audio_status(call) == pj.PJSUA_CALL_MEDIA_LOCAL_HOLD,
                                 5), switch.log_text()[-3000:]
        record(pj_lib, [(held, tmp_path / "on-hold.wav")], 2.5)

        prm = pj.CallOpParam(True)
        prm.opt.flag = pj.PJSUA_CALL_UNHOLD
        call.reinvite(prm)
        assert pj_lib.wait_until(lambda: audio_status(call) == pj.PJSUA_CALL_MEDIA_ACTIVE, 5)
        for c in (call, held):  # the tones go to the (possibly re-created) media again
            c.tone.startTransmit(audio_media(c))
        record(pj_lib, [(held, tmp_path / "callee-after.wav"),
                        (call, tmp_path / "caller-after.wav")], 2.5)
    finally:
        pj_lib.ep.hangupAllCalls()
        pj_lib.wait_until(lambda: call.state == pj.PJSIP_INV_STATE_DISCONNECTED, 5)
        call.stop_media()
        for c in callee.incoming:
            c.stop_media()
        callee.incoming.clear()
        callee.answer_with = callee.tone_freq = None

    # on hold: the track's notes, not the holder's tone
    music = band_share(tmp_path / "on-hold.wav", NOTE_HZ)
    holder = band_share(tmp_path / "on-hold.wav", (CALLER_TONE,))
    peak, level = dominant_frequency(tmp_path / "on-hold.wav")
    assert music > 0.6 and holder < 0.01, (music, holder, peak)
    assert level > 100 and min(abs(peak - n) for n in NOTE_HZ) < 0.015 * peak, (peak, level)
    # resumed: each hears the other's tone again, no music left
    heard_by_callee, level_b = dominant_frequency(tmp_path / "callee-after.wav")
    heard_by_caller, level_a = dominant_frequency(tmp_path / "caller-after.wav")
    assert abs(heard_by_callee - CALLER_TONE) < 20 and level_b > 100, (heard_by_callee, level_b)
    assert abs(heard_by_caller - CALLEE_TONE) < 20 and level_a > 100, (heard_by_caller, level_a)
    assert band_share(tmp_path / "callee-after.wav", NOTE_HZ) < 0.05


def carrier_reinvite(pj_lib: Any, carrier: Carrier, ok: Response, body: bytes, cseq: int,
                     switch: RunningSwitch) -> Response:
    """A re-INVITE in the carrier's dialog (RFC 3261 14.1), answered and ACKed."""
    contact = (ok.headers.get("Contact") or "").strip().strip("<>").split(">")[0]
    head = (
        f"Via: SIP/2.0/UDP {carrier.addr[0]}:{carrier.addr[1]};"
        f"branch=z9hG4bK{secrets.token_hex(6)};rport\r\nMax-Forwards: 70\r\n"
        f"From: {ok.headers.get('From')}\r\nTo: {ok.headers.get('To')}\r\n"
        f"Call-ID: {ok.call_id}\r\n")
    carrier.sock.sendto((
        f"INVITE {contact} SIP/2.0\r\n{head}CSeq: {cseq} INVITE\r\n"
        f"Contact: <sip:carrier@{carrier.addr[0]}:{carrier.addr[1]}>\r\n"
        f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body, (switch.host, switch.port))
    end = time.monotonic() + 5
    while time.monotonic() < end:
        pj_lib.poll(10)
        got = carrier._recv(0.01)
        if got is None:
            continue
        msg = got[0]
        if isinstance(msg, Response) and msg.cseq.seq == cseq and msg.status >= 200:
            carrier.sock.sendto((f"ACK {contact} SIP/2.0\r\n{head}CSeq: {cseq} ACK\r\n"
                                 "Content-Length: 0\r\n\r\n").encode(),
                                (switch.host, switch.port))
            return msg
    raise AssertionError(f"no answer to the re-INVITE; saw {carrier.received[-3:]}")


def test_old_phone_hold_with_zero_address(pj_lib: Any, switch: RunningSwitch,
                                          phones: dict[str, Phone], tmp_path: Path) -> None:
    carrier = Carrier(port=switch.carrier_port)
    callee = phones["501411"].account
    callee.answer_with = 200
    try:
        call_id = carrier.call(switch.host, switch.port, "+33562070411")
        ok = None
        for _ in range(100):
            pj_lib.poll(20)
            try:
                ok = carrier.final_response(call_id, timeout=0.05)
                break
            except AssertionError:
                continue
        assert ok is not None and ok.status == 200, switch.log_text()[-2000:]
        carrier.ack(ok, switch.host, switch.port)
        held = callee.incoming[0]
        assert pj_lib.wait_until(lambda: held.media_active, 5)

        hold = SDP.replace(b"c=IN IP4 127.0.0.1", b"c=IN IP4 0.0.0.0")
        answer = carrier_reinvite(pj_lib, carrier, ok, hold, 2, switch)
        assert answer.status == 200
        sdp = parse_sdp(answer.body)
        assert sdp.direction_of(sdp.media[0]) is Direction.RECVONLY  # RFC 3264 section 6.1
        record(pj_lib, [(held, tmp_path / "on-hold.wav")], 2.5)

        assert carrier_reinvite(pj_lib, carrier, ok, SDP, 3, switch).status == 200  # resume
        # the phone's jitter buffer and loss concealment play on a moment after the last
        # packet: let them drain before listening
        pj_lib.wait_until(lambda: False, 1.0)
        record(pj_lib, [(held, tmp_path / "resumed.wav")], 1.5)
    finally:
        pj_lib.ep.hangupAllCalls()
        pj_lib.wait_until(lambda: all(c.state == pj.PJSIP_INV_STATE_DISCONNECTED
                                      for c in callee.incoming), 5)
        callee.incoming.clear()
        callee.answer_with = None
        carrier.close()
    assert band_share(tmp_path / "on-hold.wav", NOTE_HZ) > 0.6
    _, level = dominant_frequency(tmp_path / "on-hold.wav")
    assert level > 100
    # resumed: the carrier sends nothing, so nothing of the music is left either (the
    # level says so; the spectrum of near silence is noise, so no band share is asked)
    assert dominant_frequency(tmp_path / "resumed.wav", skip_seconds=0.5)[1] < 50
