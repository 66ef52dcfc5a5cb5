"""Meet-me conference rooms with real phones (issue 16).

Three registered pjsua2 phones dial the example's room 800 (`*71800`): 501410 is its owner
and joins without the PIN; 501411 and 501412 type the PIN (RFC 4733). Each phone sends its
own tone; each phone's recording (what it hears) holds the other two tones and not its own
loudly: the room mixes every participant's G.711 audio minus their own. Then a caller who
types a wrong PIN three times is refused and hung up.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pjsua2 as pj
import pytest

from tests.support.audio import band_level as level
from tests.support.audio import read_wav
from tests.support.pjphone import Phone, PjCall, registered_phones
from tests.support.server import RunningSwitch, start_switch

CONFIRMED = pj.PJSIP_INV_STATE_CONFIRMED
DISCONNECTED = pj.PJSIP_INV_STATE_DISCONNECTED
USERS = ("501410", "501411", "501412")
# away from the room's cues (600, 900, 1200 Hz) and from each other
TONES = {"501410": 500.0, "501411": 1000.0, "501412": 1700.0}
PIN = "4321"


@pytest.fixture(scope="module")
def switch(pj_lib: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSwitch]:
    running = start_switch(tmp_path_factory.mktemp("conference"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def phones(pj_lib: Any, switch: RunningSwitch) -> Iterator[dict[str, Phone]]:
    yield from registered_phones(pj_lib, switch.host, switch.port, USERS)


def lines(switch: RunningSwitch, *words: str) -> list[str]:
    return [ln for ln in switch.log_lines if all(w in ln for w in words)]


def test_three_phones_hear_each_other_but_not_themselves(
        pj_lib: Any, switch: RunningSwitch, phones: dict[str, Phone], tmp_path: Path) -> None:
    room = f"sip:*71800@{switch.host}:{switch.port}"
    calls: dict[str, PjCall] = {}
    for user in USERS:
        call = phones[user].call(room, tone_freq=TONES[user],
                                 record_path=str(tmp_path / f"{user}.wav"))
        assert pj_lib.wait_until(lambda c=call: c.state == CONFIRMED and c.media_active, 8), \
            switch.log_text()[-2000:]
        if user != "501410":  # the owner joins without the PIN
            pj_lib.wait_until(lambda: False, 1.0)
            call.dialDtmf(PIN + "#")
        assert pj_lib.wait_until(lambda u=user: bool(lines(
            switch, "conference room=acme:room:800 join", f"caller={u}")), 10), \
            switch.log_text()[-3000:]
        calls[user] = call
    assert lines(switch, "event=joined", "owner=True")
    # everyone in: listen to the room for a while, then stop the recordings
    pj_lib.wait_until(lambda: False, 4.0)
    for call in calls.values():
        call.stop_media()
    pj_lib.wait_until(lambda: False, 0.5)
    for user in USERS:
        data, rate = read_wav(tmp_path / f"{user}.wav")
        assert len(data) > 4 * rate, user
        tail = data[-3 * rate:]  # the last 3 s: all three in the room
        own = level(tail, rate, TONES[user])
        others = [level(tail, rate, TONES[o]) for o in USERS if o != user]
        assert min(others) > 200, (user, own, others)  # both others clearly heard
        assert own < 0.1 * min(others), (user, own, others)  # never oneself (mix-minus)
    for call in calls.values():
        call.hangup(pj.CallOpParam(True))
    assert pj_lib.wait_until(lambda: all(c.state == DISCONNECTED for c in calls.values()), 8)
    assert pj_lib.wait_until(lambda: len(lines(
        switch, "conference room=acme:room:800 leave")) >= 3, 5)


def test_a_wrong_pin_is_refused_after_three_tries(
        pj_lib: Any, switch: RunningSwitch, phones: dict[str, Phone]) -> None:
    call = phones["501411"].call(f"sip:*71800@{switch.host}:{switch.port}")
    assert pj_lib.wait_until(lambda: call.state == CONFIRMED and call.media_active, 8)
    for _ in range(3):
        pj_lib.wait_until(lambda: False, 1.0)
        call.dialDtmf("9999#")
        pj_lib.wait_until(lambda: False, 1.5)
    # the switch says the code is wrong, goodbye, and hangs up
    assert pj_lib.wait_until(lambda: call.state == DISCONNECTED, 20), switch.log_text()[-3000:]
    assert len(lines(switch, f"conference call={call.sip_call_id}", "event=wrong-pin")) == 3
    assert lines(switch, f"conference call={call.sip_call_id}", "event=refused",
                 "why=wrong-pin")
    assert not lines(switch, "join", f"call={call.sip_call_id}")


def test_the_owner_removes_the_last_participant(
        pj_lib: Any, switch: RunningSwitch, phones: dict[str, Phone]) -> None:
    room = f"sip:*71800@{switch.host}:{switch.port}"
    owner = phones["501410"].call(room)
    assert pj_lib.wait_until(lambda: owner.state == CONFIRMED and owner.media_active, 8)
    guest = phones["501412"].call(room)
    assert pj_lib.wait_until(lambda: guest.state == CONFIRMED and guest.media_active, 8)
    pj_lib.wait_until(lambda: False, 1.0)
    guest.dialDtmf(PIN + "#")
    assert pj_lib.wait_until(lambda: bool(lines(
        switch, f"conference call={guest.sip_call_id}", "event=joined")), 10)
    owner.dialDtmf("2")  # the owner's key: remove the participant who joined last
    assert pj_lib.wait_until(lambda: guest.state == DISCONNECTED, 15), \
        switch.log_text()[-3000:]
    assert lines(switch, f"conference call={owner.sip_call_id}", "event=remove",
                 "removed=501412")
    assert lines(switch, f"conference call={guest.sip_call_id}", "event=removed")
    assert owner.state == CONFIRMED  # the owner stays
    owner.hangup(pj.CallOpParam(True))
    assert pj_lib.wait_until(lambda: owner.state == DISCONNECTED, 5)
