"""Three-way calling with real phones (issue 16).

501410 (pjsua2) calls 501411 (baresip, who answers), puts it on hold, calls 501412
(pjsua2, who answers), then dials `*3` on a third line: the switch moves 501411 and 501412
into a room with that call and releases 501410's two first calls. Each phone sends its
own tone; each hears the other two and not itself. When 501410 hangs up, the others are
hung up too. (501411 is baresip because one pjsua2 library holds at most four calls.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pjsua2 as pj
import pytest

from tests.support.audio import band_level as level
from tests.support.audio import read_wav
from tests.support.baresip import Baresip, write_tone
from tests.support.pjphone import Phone, registered_phones
from tests.support.server import RunningSwitch, start_switch

CONFIRMED = pj.PJSIP_INV_STATE_CONFIRMED
DISCONNECTED = pj.PJSIP_INV_STATE_DISCONNECTED
USERS = ("501410", "501411", "501412")
PJSUA = ("501410", "501412")
TONES = {"501410": 500.0, "501411": 1000.0, "501412": 1700.0}


@pytest.fixture(scope="module")
def switch(pj_lib: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSwitch]:
    running = start_switch(tmp_path_factory.mktemp("three-way"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def phones(pj_lib: Any, switch: RunningSwitch) -> Iterator[dict[str, Phone]]:
    yield from registered_phones(pj_lib, switch.host, switch.port, PJSUA)


def lines(switch: RunningSwitch, *words: str) -> list[str]:
    return [ln for ln in switch.log_lines if all(w in ln for w in words)]


def bs_event(pj_lib: Any, bs: Baresip, kind: str, timeout: float = 10.0) -> bool:
    """Wait for a baresip event while pjsua2 keeps running (it has no threads)."""

    def seen() -> bool:
        bs.poll(0.01)
        return any(ev.get("type") == kind for ev in bs.events)

    return bool(pj_lib.wait_until(seen, timeout))


def test_the_held_and_the_active_call_merge_into_a_conference(
        pj_lib: Any, switch: RunningSwitch, phones: dict[str, Phone], tmp_path: Path) -> None:
    host = phones["501410"]
    bs = Baresip(tmp_path / "baresip", user="501411", password="demo-501411",
                 registrar=f"{switch.host}:{switch.port}",
                 tone_wav=write_tone(tmp_path / "tone.wav", TONES["501411"]), host=switch.host)
    try:
        assert pj_lib.wait_until(lambda: "200 OK" in bs.log_text(), 10), bs.log_text()
        first = host.call(f"sip:501411@{switch.host}:{switch.port}")
        assert bs_event(pj_lib, bs, "CALL_INCOMING"), (bs.events, bs.log_text())
        bs.command("accept")
        assert pj_lib.wait_until(lambda: first.state == CONFIRMED and first.media_active, 8)
        first.setHold(pj.CallOpParam(True))
        pj_lib.wait_until(lambda: False, 1.0)
        acc = phones["501412"].account
        acc.answer_with, acc.tone_freq = 200, TONES["501412"]
        acc.record_path = str(tmp_path / "501412.wav")
        second = host.call(f"sip:501412@{switch.host}:{switch.port}")
        assert pj_lib.wait_until(lambda: second.state == CONFIRMED and second.media_active, 8)
        theirs = acc.incoming[-1]
        merge = host.call(f"sip:*3@{switch.host}:{switch.port}", tone_freq=TONES["501410"],
                          record_path=str(tmp_path / "501410.wav"))
        assert pj_lib.wait_until(lambda: merge.state == CONFIRMED, 8)
        assert pj_lib.wait_until(lambda: first.state == DISCONNECTED
                                 and second.state == DISCONNECTED, 10), \
            switch.log_text()[-3000:]
        assert pj_lib.wait_until(
            lambda: lines(switch, "three-way call=", "caller=501410", "merged=2"), 3), \
            (lines(switch, "three-way"), switch.log_text()[-4000:])
        assert theirs.state == CONFIRMED
        bs.poll(0.1)
        assert not any(ev.get("type") == "CALL_CLOSED" for ev in bs.events)
        pj_lib.wait_until(lambda: False, 4.0)
        merge.stop_media()
        theirs.stop_media()
        pj_lib.wait_until(lambda: False, 0.3)
        for user in PJSUA:
            data, rate = read_wav(tmp_path / f"{user}.wav")
            tail = data[-2 * rate:]
            own = level(tail, rate, TONES[user])
            heard = [level(tail, rate, TONES[o]) for o in USERS if o != user]
            assert min(heard) > 200, (user, own, heard)
            assert own < 0.1 * min(heard), (user, own, heard)
        merge.hangup(pj.CallOpParam(True))
        assert pj_lib.wait_until(lambda: theirs.state == DISCONNECTED, 8)
        assert bs_event(pj_lib, bs, "CALL_CLOSED", 8)  # 501411 is hung up too
        heard_path = bs.heard()
        assert heard_path is not None
        data, rate = read_wav(heard_path)
        # 501411 heard 501410 and 501412 in the room (its recording ends with the call)
        window = data[-4 * rate:-1 * rate]
        assert level(window, rate, TONES["501410"]) > 200
        assert level(window, rate, TONES["501412"]) > 200
    finally:
        bs.stop()
        acc = phones["501412"].account
        acc.tone_freq = acc.record_path = None
