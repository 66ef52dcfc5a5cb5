"""Call park and retrieve with real phones (issue 16).

501410 talks to 501411 and blind-transfers it (REFER) to the park code `*68`: the switch
answers 501411 itself, logs the orbit and tells 501411 the orbit; 501412 dials `*88` and
the orbit and talks to 501411 (each phone's recording holds the other's tone). A second
parked call that nobody retrieves rings 501410 again after the park timeout.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pjsua2 as pj
import pytest
import yaml

from tests.support.audio import band_level as level
from tests.support.audio import read_wav
from tests.support.pjphone import Phone, PjCall, registered_phones
from tests.support.server import EXAMPLE_CONFIG, RunningSwitch, start_switch, write_config

CONFIRMED = pj.PJSIP_INV_STATE_CONFIRMED
DISCONNECTED = pj.PJSIP_INV_STATE_DISCONNECTED
USERS = ("501410", "501411", "501412")
PARK_TIMEOUT = 6


@pytest.fixture(scope="module")
def switch(pj_lib: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSwitch]:
    tmp = tmp_path_factory.mktemp("park")
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    data.setdefault("switch", {}).setdefault("calls", {})["park_timeout"] = PARK_TIMEOUT
    running = start_switch(tmp, config=write_config(tmp / "park.yaml", data))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def phones(pj_lib: Any, switch: RunningSwitch) -> Iterator[dict[str, Phone]]:
    yield from registered_phones(pj_lib, switch.host, switch.port, USERS)


def lines(switch: RunningSwitch, *words: str) -> list[str]:
    return [ln for ln in switch.log_lines if all(w in ln for w in words)]


def park_a_call(pj_lib: Any, switch: RunningSwitch, phones: dict[str, Phone],
                record: Path | None = None) -> tuple[PjCall, int]:
    """501410 calls 501411 (who answers) and transfers it to *68: (501411's call, orbit)."""
    parker, parked = phones["501410"], phones["501411"]
    parked.account.answer_with = 200
    parked.account.tone_freq = 1000.0 if record is not None else None
    parked.account.record_path = str(record) if record is not None else None
    before = len(parked.account.incoming)
    call = parker.call(f"sip:501411@{switch.host}:{switch.port}")
    assert pj_lib.wait_until(lambda: call.state == CONFIRMED, 8), switch.log_text()[-2000:]
    assert pj_lib.wait_until(lambda: len(parked.account.incoming) > before, 5)
    theirs = parked.account.incoming[-1]
    assert pj_lib.wait_until(lambda: theirs.state == CONFIRMED, 5)
    seen = len(lines(switch, "park call=", "parker=501410"))
    call.xfer(f"sip:*68@{switch.host}:{switch.port}", pj.CallOpParam(True))
    assert pj_lib.wait_until(lambda: len(lines(switch, "park call=", "orbit=",
                                               "parker=501410")) > seen, 10), \
        switch.log_text()[-3000:]
    # the parker's call is released; the parked party stays in a call with the switch
    assert pj_lib.wait_until(lambda: call.state == DISCONNECTED, 10)
    assert theirs.state == CONFIRMED
    line = lines(switch, "park call=", "orbit=", "parker=501410")[-1]
    found = re.search(r"orbit=(\d+)", line)
    assert found is not None
    return theirs, int(found.group(1))


def test_a_parked_call_is_retrieved_with_its_orbit(
        pj_lib: Any, switch: RunningSwitch, phones: dict[str, Phone], tmp_path: Path) -> None:
    parked, orbit = park_a_call(pj_lib, switch, phones, tmp_path / "parked.wav")
    assert orbit == 1  # the lowest free orbit
    pj_lib.wait_until(lambda: False, 1.0)
    heard = tmp_path / "retriever.wav"
    retriever = phones["501412"].call(f"sip:*88{orbit}@{switch.host}:{switch.port}",
                                      tone_freq=1700.0, record_path=str(heard))
    assert pj_lib.wait_until(lambda: retriever.state == CONFIRMED, 8)
    assert pj_lib.wait_until(lambda: bool(lines(switch, "retrieved by=501412")), 5), \
        switch.log_text()[-3000:]
    pj_lib.wait_until(lambda: False, 3.0)
    retriever.stop_media()
    parked.stop_media()
    pj_lib.wait_until(lambda: False, 0.3)
    data, rate = read_wav(heard)
    tail = data[-2 * rate:]
    assert level(tail, rate, 1000.0) > 200, level(tail, rate, 1000.0)  # 501411 is heard
    data, rate = read_wav(tmp_path / "parked.wav")
    tail = data[-2 * rate:]
    assert level(tail, rate, 1700.0) > 200, level(tail, rate, 1700.0)  # and hears 501412
    # the retriever hangs up: the parked party's call ends too
    retriever.hangup(pj.CallOpParam(True))
    assert pj_lib.wait_until(lambda: parked.state == DISCONNECTED, 8)
    # the orbit is free again: dialing it now finds nothing
    empty = phones["501412"].call(f"sip:*88{orbit}@{switch.host}:{switch.port}")
    assert pj_lib.wait_until(lambda: empty.state == CONFIRMED, 8)
    assert pj_lib.wait_until(lambda: empty.state == DISCONNECTED, 15)
    assert lines(switch, f"park retrieve call={empty.sip_call_id}", "empty")


def test_an_unretrieved_call_rings_the_parker_again(
        pj_lib: Any, switch: RunningSwitch, phones: dict[str, Phone]) -> None:
    parker = phones["501410"]
    parker.account.answer_with = None  # rings only: the test answers it
    before = len(parker.account.incoming)
    parked, orbit = park_a_call(pj_lib, switch, phones)
    # nobody retrieves it: after the park timeout, 501410 rings again
    assert pj_lib.wait_until(lambda: len(parker.account.incoming) > before,
                             PARK_TIMEOUT + 8), switch.log_text()[-3000:]
    assert lines(switch, f"orbit={orbit} not retrieved: ringing back 501410")
    back = parker.account.incoming[-1]
    op = pj.CallOpParam()
    op.statusCode = 200
    back.answer(op)
    assert pj_lib.wait_until(lambda: back.state == CONFIRMED, 8)
    assert parked.state == CONFIRMED
    parked.stop_media()  # its tone generator goes before the call (pjsua2's order)
    pj_lib.wait_until(lambda: False, 0.3)
    back.hangup(pj.CallOpParam(True))
    assert pj_lib.wait_until(lambda: parked.state == DISCONNECTED, 8)
