"""Music on hold in an anchored call, heard by a real phone (pjsua2, an independent stack).

501410 calls 501411 (site 01 anchors media); both send a test tone. 501410 puts the call on
hold (pjsua2 `setHold`: a re-INVITE with a=sendonly): 501411 then hears the shipped music on
hold -- its spectrum is made of the track's notes, not of 501410's tone. After the resume
(re-INVITE, sendrecv) the two hear each other's tones again.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pjsua2 as pj
import pytest

from tests.support.audio import dominant_frequency, read_wav
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
    recorders.clear()
    gc.collect()


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
