"""A pjsua2 phone in a call with a media endpoint of the switch (issue 5): it hears the
switch's 1 kHz prompt, the switch records what it sends, and reports its DTMF digits sent
both as RFC 4733 events and as in-band tones."""

from __future__ import annotations

import gc
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pjsua2 as pj
import pytest

from tests.support.audio import dominant_frequency
from tests.support.pjphone import make_phone
from tests.support.server import RunningSwitch, start_switch

DIGITS = "0123456789*#"


@pytest.fixture(scope="module")
def switch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSwitch]:
    running = start_switch(tmp_path_factory.mktemp("media"))
    yield running
    running.stop()


def play_inband(pj_lib: Any, call: Any, digits: str) -> None:
    gen = pj.ToneGenerator()
    gen.createToneGenerator(8000, 1)
    vec = pj.ToneDigitVector()
    for d in digits:
        td = pj.ToneDigit()
        td.digit = d
        td.on_msec = 120
        td.off_msec = 120
        td.volume = 0
        vec.append(td)
    info = call.getInfo()
    aud = next(call.getAudioMedia(i) for i, mi in enumerate(info.media)
               if mi.type == pj.PJMEDIA_TYPE_AUDIO)
    gen.startTransmit(aud)
    gen.playDigits(vec)
    pj_lib.wait_until(lambda: False, 0.25 * len(digits) + 1.0)
    gen.stopTransmit(aud)
    del gen
    gc.collect()


def test_prompt_recording_and_dtmf(pj_lib: Any, switch: RunningSwitch, tmp_path: Path) -> None:
    phone = make_phone(pj_lib, transport="UDP", user="501410", host=switch.host,
                       port=switch.port, password="demo-501410", register=True)
    heard = tmp_path / "heard.wav"
    try:
        assert phone.wait_registration(lambda e: e[0] == 200, since=0) is not None
        call = phone.call(f"sip:%2A45@{switch.host}:{switch.port}", tone_freq=440,
                          record_path=str(heard))
        assert pj_lib.wait_until(lambda: call.state == pj.PJSIP_INV_STATE_CONFIRMED, 8), \
            switch.log_text()[-2000:]
        assert pj_lib.wait_until(lambda: call.media_active, 5)
        pj_lib.wait_until(lambda: False, 1.5)  # the switch's beep; our 440 Hz goes out
        call.stop_media()  # stop our tone and close our recording of the beep
        call.dialDtmf(DIGITS)  # RFC 4733 (pjsua2's default DTMF method)
        pj_lib.wait_until(lambda: False, 3.5)
        play_inband(pj_lib, call, DIGITS)
        call.hangup(pj.CallOpParam(True))
        pj_lib.wait_until(lambda: call.state == pj.PJSIP_INV_STATE_DISCONNECTED, 5)
        pj_lib.wait_until(lambda: any("record test" in ln and "saved=" in ln
                                      for ln in switch.log_lines), 5)
    finally:
        phone.shutdown()
    # the phone heard the switch's 1 kHz prompt
    freq, level = dominant_frequency(heard, skip_seconds=0.1, max_seconds=0.9)
    assert abs(freq - 1000) < 20 and level > 100, (freq, level)
    # the switch reported exactly the digits, once each, RFC 4733 first then in-band
    dtmf = [re.search(r"digit=(\S) source=(\S+)", ln) for ln in switch.log_lines
            if " dtmf call=" in ln]
    got = [(m.group(1), m.group(2)) for m in dtmf if m]
    assert "".join(d for d, _ in got) == DIGITS + DIGITS, got
    sources = [s for _, s in got]
    assert len(set(sources[:12])) == 1 and len(set(sources[12:])) == 1
    assert sources[0] != sources[12]
    # the switch's recording holds the 440 Hz tone the phone sent
    saved = next(ln for ln in switch.log_lines if "record test" in ln and "saved=True" in ln)
    path = Path(saved.split("path=")[1].split()[0])
    freq, level = dominant_frequency(path, skip_seconds=0.3, max_seconds=1.3)
    assert abs(freq - 440) < 9 and level > 100, (freq, level)
