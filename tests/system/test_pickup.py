"""Call pickup with real phones (issue 16).

501411 calls 501410, which rings and does not answer; 501412 (same site, so the same
pickup group by default) dials `*8` and is connected to 501411: 501410 stops ringing,
and 501411 and 501412 hear each other's tones. The same with directed pickup
(`*87410`). With nothing ringing, `*8` says so and hangs up.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pjsua2 as pj
import pytest

from tests.support.audio import band_level as level
from tests.support.audio import read_wav
from tests.support.pjphone import Phone, registered_phones
from tests.support.server import RunningSwitch, start_switch

CONFIRMED = pj.PJSIP_INV_STATE_CONFIRMED
DISCONNECTED = pj.PJSIP_INV_STATE_DISCONNECTED
EARLY = pj.PJSIP_INV_STATE_EARLY
USERS = ("501410", "501411", "501412")


@pytest.fixture(scope="module")
def switch(pj_lib: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSwitch]:
    running = start_switch(tmp_path_factory.mktemp("pickup"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def phones(pj_lib: Any, switch: RunningSwitch) -> Iterator[dict[str, Phone]]:
    yield from registered_phones(pj_lib, switch.host, switch.port, USERS)


def lines(switch: RunningSwitch, *words: str) -> list[str]:
    return [ln for ln in switch.log_lines if all(w in ln for w in words)]


@pytest.mark.parametrize("code", ["*8", "*87410"])
def test_501412_picks_up_a_call_ringing_501410(
        pj_lib: Any, switch: RunningSwitch, phones: dict[str, Phone], tmp_path: Path,
        code: str) -> None:
    ringing = phones["501410"].account
    ringing.answer_with = None  # rings, never answers
    before = len(ringing.incoming)
    caller = phones["501411"].call(f"sip:501410@{switch.host}:{switch.port}",
                                   tone_freq=1000.0, record_path=str(tmp_path / "caller.wav"))
    assert pj_lib.wait_until(lambda: len(ringing.incoming) > before, 8)
    rung = ringing.incoming[-1]
    assert pj_lib.wait_until(lambda: rung.state == EARLY, 5)
    picker = phones["501412"].call(f"sip:{code}@{switch.host}:{switch.port}",
                                   tone_freq=1700.0, record_path=str(tmp_path / "picker.wav"))
    assert pj_lib.wait_until(lambda: caller.state == CONFIRMED, 10), switch.log_text()[-3000:]
    assert pj_lib.wait_until(lambda: picker.state == CONFIRMED, 5)
    assert pj_lib.wait_until(lambda: rung.state == DISCONNECTED, 5)  # stopped ringing
    assert pj_lib.wait_until(lambda: bool(lines(
        switch, f"pickup call={picker.sip_call_id}", "connected")), 5), \
        switch.log_text()[-3000:]
    assert lines(switch, f"pickup call={caller.sip_call_id} ringing 501410 picked by 501412")
    pj_lib.wait_until(lambda: False, 3.0)
    caller.stop_media()
    picker.stop_media()
    pj_lib.wait_until(lambda: False, 0.3)
    data, rate = read_wav(tmp_path / "picker.wav")
    assert level(data[-2 * rate:], rate, 1000.0) > 200  # the picker hears the caller
    data, rate = read_wav(tmp_path / "caller.wav")
    assert level(data[-2 * rate:], rate, 1700.0) > 200  # and the caller the picker
    # the caller hangs up: the picker's call ends too
    caller.hangup(pj.CallOpParam(True))
    assert pj_lib.wait_until(lambda: picker.state == DISCONNECTED, 8)


def test_nothing_to_pick_up(pj_lib: Any, switch: RunningSwitch,
                            phones: dict[str, Phone]) -> None:
    picker = phones["501412"].call(f"sip:*8@{switch.host}:{switch.port}")
    assert pj_lib.wait_until(lambda: picker.state == CONFIRMED, 8)
    assert pj_lib.wait_until(lambda: picker.state == DISCONNECTED, 15)
    assert lines(switch, f"pickup call={picker.sip_call_id}", "nothing to pick up")
