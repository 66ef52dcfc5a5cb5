"""Attended and semi-attended transfer (REFER with Replaces, RFC 3891/5589) between pjsua2
phones, on an anchored site and on a passthrough site, and INVITE with Replaces.

501410 talks to 501411, puts it on hold, calls 501412, then transfers with pjsua2's
`xferReplaces`: 501411 and 501412 hear each other's tones, 501410's two calls are released,
each remaining phone is told the other's number (P-Asserted-Identity in the re-INVITE or
UPDATE it receives), and the call records name the final parties.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pjsua2 as pj
import pytest
import yaml

from tests.support.audio import dominant_frequency
from tests.support.pjphone import Phone, PjCall, carrier_port, make_carrier_phone, make_phone
from tests.support.server import RunningSwitch, config_with, start_switch, wait_record

MOBILE = "+33612345678"
PASSWORDS = {u: f"demo-{u}" for u in ("501410", "501411", "501412")}
CONFIRMED = pj.PJSIP_INV_STATE_CONFIRMED
DISCONNECTED = pj.PJSIP_INV_STATE_DISCONNECTED
# 1000 Hz comes out distorted through pjsua2's speex/16000 (what two pjsua2 phones agree on
# without the relay): tones that survive every codec of the test
FREQ = {"501411": 440, "501412": 600}


def _config(tmp: Path, media: str, carrier: int) -> Path:
    """The example plan with site 01 (501410, 501411, 501412) in `media` mode, its carrier
    trunk at the test library's carrier transport."""
    path = config_with(tmp, {"calls.ring_timeout": 20}, carrier_port=carrier)
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    for customer in data["customers"]:
        for site in customer["sites"]:
            if site["code"] == "01":
                site["media"] = media
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module", params=["anchor", "passthrough"])
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
         pj_lib: Any) -> Iterator[tuple[RunningSwitch, dict[str, Phone], str]]:
    media = str(request.param)
    tmp = tmp_path_factory.mktemp(f"xfer-{media}")
    running = start_switch(tmp, config=_config(tmp, media, carrier_port(pj_lib)))
    phones = {u: make_phone(pj_lib, transport="UDP", user=u, host=running.host,
                            port=running.port, password=pw, register=True)
              for u, pw in PASSWORDS.items()}
    phones["carrier"] = make_carrier_phone(pj_lib, MOBILE)
    try:
        for user in PASSWORDS:
            assert phones[user].wait_registration(lambda e: e[0] == 200, since=0) is not None, \
                running.log_text()[-2000:]
        yield running, phones, media
    finally:
        pj_lib.ep.hangupAllCalls()
        pj_lib.wait_until(lambda: False, 0.5)
        for phone in phones.values():
            phone.shutdown()
        running.stop()


def target(switch: RunningSwitch, user: str) -> str:
    return f"sip:{user}@{switch.host}:{switch.port}"


def reset(phones: dict[str, Phone]) -> None:
    for p in phones.values():
        p.account.answer_with = None
        p.account.incoming.clear()
        p.account.tone_freq = None
        p.account.record_path = None


def record_from_now(call: PjCall, path: Path) -> None:
    """Record what `call` hears from now on (the time before the transfer is left out)."""
    rec = pj.AudioMediaRecorder()
    rec.createRecorder(str(path))
    call.getAudioMedia(-1).startTransmit(rec)
    call.recorder = rec


def told_identity(call: PjCall, number: str) -> bool:
    """Did the phone receive an in-dialog request asserting `number` (RFC 3325)?"""
    return any(f"sip:{number}@" in line
               for msg in call.rx_requests for line in msg.splitlines()
               if line.lower().startswith("p-asserted-identity:"))


def consult(pj_lib: Any, switch: RunningSwitch, phones: dict[str, Phone], *,
            answer_target: bool) -> tuple[PjCall, PjCall, PjCall]:
    """501410 talks to 501411, holds it, calls 501412 (answered or still ringing)."""
    reset(phones)
    phones["501411"].account.answer_with = 200
    phones["501411"].account.tone_freq = FREQ["501411"]
    phones["501412"].account.answer_with = 200 if answer_target else None
    phones["501412"].account.tone_freq = FREQ["501412"]
    first = phones["501410"].call(target(switch, "501411"))
    assert pj_lib.wait_until(lambda: first.state == CONFIRMED, 8), switch.log_text()[-3000:]
    transferee = phones["501411"].account.incoming[0]
    assert pj_lib.wait_until(lambda: transferee.state == CONFIRMED, 5)
    first.setHold(pj.CallOpParam(True))
    pj_lib.wait_until(lambda: False, 0.5)
    second = phones["501410"].call(target(switch, "501412"))
    if answer_target:
        assert pj_lib.wait_until(lambda: second.state == CONFIRMED, 8), \
            switch.log_text()[-3000:]
    else:
        assert pj_lib.wait_until(lambda: second.state == pj.PJSIP_INV_STATE_EARLY, 8), \
            switch.log_text()[-3000:]
    return first, second, transferee


@pytest.mark.parametrize("kind", ["attended", "semi_attended", "semi_attended_hangs_up"])
def test_transfer_with_replaces(pj_lib: Any, site: tuple[RunningSwitch, dict[str, Phone], str],
                                kind: str, tmp_path: Path) -> None:
    switch, phones, media = site
    semi = kind.startswith("semi_attended")
    first, second, transferee = consult(pj_lib, switch, phones, answer_target=not semi)
    first_id, second_id = first.sip_call_id, second.sip_call_id
    try:
        first.xferReplaces(second, pj.CallOpParam(True))
        assert pj_lib.wait_until(lambda: len(phones["501412"].account.incoming) == 1, 5)
        new = phones["501412"].account.incoming[0]
        if kind == "semi_attended_hangs_up":
            # the transferor hangs up the consultation while the target rings (CANCEL):
            # its call ends with 487, the target rings on for the transferee
            pj_lib.wait_until(lambda: False, 0.3)
            second.hangup(pj.CallOpParam(True))
            assert pj_lib.wait_until(lambda: second.state == DISCONNECTED, 5)
            assert second.last_status == 487 and new.state != DISCONNECTED
        if semi:
            pj_lib.wait_until(lambda: False, 0.5)  # the target rings on; then answers
            op = pj.CallOpParam()
            op.statusCode = 200
            new.answer(op)
        assert pj_lib.wait_until(lambda: new.state == CONFIRMED, 8), switch.log_text()[-3000:]
        # both of the transferor's calls are released by the switch
        assert pj_lib.wait_until(lambda: first.state == DISCONNECTED
                                 and second.state == DISCONNECTED, 8), \
            switch.log_text()[-4000:]
        assert transferee.state == CONFIRMED and new.state == CONFIRMED
        # each remaining phone is told who it now talks to
        assert pj_lib.wait_until(lambda: told_identity(new, "501411")
                                 and told_identity(transferee, "501412"), 5), (
            new.rx_requests, transferee.rx_requests)
        # the switch joined them the way the site's media asks (relay or phone to phone)
        mode = "RELAY" if media == "anchor" else "DIRECT"
        assert any(f"({mode}, " in ln and "attended transfer by 501410" in ln
                   for ln in switch.log_lines), switch.log_text()[-2000:]
        pj_lib.wait_until(lambda: False, 0.3)  # media settles on the new path
        record_from_now(transferee, tmp_path / "transferee.wav")
        record_from_now(new, tmp_path / "target.wav")
        pj_lib.wait_until(lambda: False, 2.0)
        transferee.stop_media()
        new.stop_media()
        transferee.hangup(pj.CallOpParam(True))
        assert pj_lib.wait_until(lambda: new.state == DISCONNECTED, 5), switch.log_text()[-2000:]
    finally:
        pj_lib.ep.hangupAllCalls()
        pj_lib.wait_until(lambda: False, 0.5)
        reset(phones)
    # 501411 hears 501412's tone and 501412 hears 501411's
    heard = dominant_frequency(tmp_path / "transferee.wav", skip_seconds=0.2)
    heard_by_target = dominant_frequency(tmp_path / "target.wav", skip_seconds=0.2)
    assert abs(heard[0] - FREQ["501412"]) < 15 and heard[1] > 100, (media, heard,
                                                                    heard_by_target)
    assert abs(heard_by_target[0] - FREQ["501411"]) < 15 and heard_by_target[1] > 100, (
        media, heard_by_target)
    # the records name the final parties: 501411's call went on with 501412
    rec = wait_record(switch.data_dir, lambda r: r["call_id"] == first_id and r["end"])
    assert rec["caller"] == "501410" and rec["callee"] == "501411"
    assert rec["transferred_to"] == "501412" and rec["disposition"] == "answered"
    consultation = wait_record(switch.data_dir,
                               lambda r: r["call_id"] == second_id and r["end"])
    assert consultation["transferred_to"] == "501411"
    assert consultation["cause"] == "attended transfer"


def test_the_called_party_transfers_between_its_two_incoming_calls(
        pj_lib: Any, site: tuple[RunningSwitch, dict[str, Phone], str],
        tmp_path: Path) -> None:
    """501411 is called by 501410 and then by 501412, holds the first and joins them with
    REFER/Replaces: the transferor is the callee of both calls this time."""
    switch, phones, media = site
    reset(phones)
    first = phones["501410"].call(target(switch, "501411"), tone_freq=FREQ["501411"])
    try:
        assert pj_lib.wait_until(lambda: len(phones["501411"].account.incoming) == 1, 5)
        x = phones["501411"].account.incoming[0]
        op = pj.CallOpParam()
        op.statusCode = 200
        x.answer(op)
        assert pj_lib.wait_until(lambda: first.state == CONFIRMED, 5)
        x.setHold(pj.CallOpParam(True))
        pj_lib.wait_until(lambda: False, 0.5)
        second = phones["501412"].call(target(switch, "501411"), tone_freq=FREQ["501412"])
        assert pj_lib.wait_until(lambda: len(phones["501411"].account.incoming) == 2, 5)
        y = phones["501411"].account.incoming[1]
        y.answer(op)
        assert pj_lib.wait_until(lambda: second.state == CONFIRMED and y.state == CONFIRMED, 5)
        x.xferReplaces(y, pj.CallOpParam(True))
        assert pj_lib.wait_until(lambda: x.state == DISCONNECTED and y.state == DISCONNECTED,
                                 8), switch.log_text()[-3000:]
        assert first.state == CONFIRMED and second.state == CONFIRMED
        assert pj_lib.wait_until(lambda: told_identity(first, "501412")
                                 and told_identity(second, "501410"), 5), (
            first.rx_requests, second.rx_requests)
        pj_lib.wait_until(lambda: False, 0.3)
        record_from_now(first, tmp_path / "first.wav")
        pj_lib.wait_until(lambda: False, 1.5)
        first.stop_media()
        second.stop_media()
        second.hangup(pj.CallOpParam(True))
        assert pj_lib.wait_until(lambda: first.state == DISCONNECTED, 5)
    finally:
        pj_lib.ep.hangupAllCalls()
        pj_lib.wait_until(lambda: False, 0.5)
        reset(phones)
    freq, level = dominant_frequency(tmp_path / "first.wav", skip_seconds=0.2)
    assert abs(freq - FREQ["501412"]) < 15 and level > 100, (media, freq, level)


def test_replaces_naming_someone_elses_call_is_refused(
        pj_lib: Any, site: tuple[RunningSwitch, dict[str, Phone], str]) -> None:
    """501411 cannot hand its call to the dialog of a call it is not part of: the REFER
    is refused, nothing is released."""
    switch, phones, _ = site
    reset(phones)
    phones["501411"].account.answer_with = 200
    phones["501412"].account.answer_with = 200
    mine = phones["501410"].call(target(switch, "501411"))
    other = phones["501410"].call(target(switch, "501412"))
    try:
        assert pj_lib.wait_until(lambda: mine.state == CONFIRMED
                                 and other.state == CONFIRMED, 8)
        b_side = phones["501411"].account.incoming[0]
        assert pj_lib.wait_until(lambda: b_side.state == CONFIRMED, 5)
        # 501411 names 501410's dialog with 501412 (it knows no such dialog of its own)
        b_side.xferReplaces(other, pj.CallOpParam(True))
        assert pj_lib.wait_until(
            lambda: any("attended transfer refused: 403" in ln for ln in switch.log_lines), 5), \
            switch.log_text()[-2000:]
        pj_lib.wait_until(lambda: False, 0.5)
        assert mine.state == CONFIRMED and other.state == CONFIRMED
    finally:
        pj_lib.ep.hangupAllCalls()
        pj_lib.wait_until(lambda: False, 0.5)
        reset(phones)


def test_invite_with_replaces_takes_the_call(
        pj_lib: Any, site: tuple[RunningSwitch, dict[str, Phone], str],
        tmp_path: Path) -> None:
    """A phone that does the transfer itself: 501412 sends an INVITE with Replaces naming
    the switch's dialog with 501411, takes its place, and talks to 501410 (RFC 3891)."""
    switch, phones, media = site
    reset(phones)
    phones["501411"].account.answer_with = 200
    call = phones["501410"].call(target(switch, "501411"), tone_freq=440)
    try:
        assert pj_lib.wait_until(lambda: call.state == CONFIRMED, 8)
        leaving = phones["501411"].account.incoming[0]
        assert pj_lib.wait_until(lambda: leaving.state == CONFIRMED, 5)
        info = leaving.getInfo()
        # RFC 3891 3: to-tag is the recipient's (the switch's) tag, from-tag the phone's
        switch_tag = _tag(leaving.incoming_msg, "from")
        assert pj_lib.wait_until(lambda: bool(leaving.tx_ok), 2), "no 200 seen"
        own_tag = _tag(leaving.tx_ok[0], "to")
        replaces = f"{info.callIdString};to-tag={switch_tag};from-tag={own_tag}"
        taker = phones["501412"].call(target(switch, "501411"), tone_freq=FREQ["501412"],
                                      headers={"Replaces": replaces})
        assert pj_lib.wait_until(lambda: taker.state == CONFIRMED, 8), \
            switch.log_text()[-3000:]
        assert pj_lib.wait_until(lambda: leaving.state == DISCONNECTED, 5)
        assert call.state == CONFIRMED
        pj_lib.wait_until(lambda: False, 0.3)
        record_from_now(call, tmp_path / "stayer.wav")
        pj_lib.wait_until(lambda: False, 2.0)
        call.stop_media()
        taker.stop_media()
        taker.hangup(pj.CallOpParam(True))
        assert pj_lib.wait_until(lambda: call.state == DISCONNECTED, 5)
    finally:
        pj_lib.ep.hangupAllCalls()
        pj_lib.wait_until(lambda: False, 0.5)
        reset(phones)
    freq, level = dominant_frequency(tmp_path / "stayer.wav", skip_seconds=0.2)
    assert abs(freq - FREQ["501412"]) < 15 and level > 100, (media, freq, level)


def _tag(msg: str, header: str) -> str:
    """The tag of the From or To header of a SIP message."""
    short = header[0]
    line = next(ln for ln in msg.splitlines()
                if ln.lower().startswith((f"{header}:", f"{short}:")))
    return line.split("tag=", 1)[1].split(";")[0].strip()


def test_blind_transfer_shows_each_party_the_other(
        pj_lib: Any, site: tuple[RunningSwitch, dict[str, Phone], str],
        tmp_path: Path) -> None:
    """Blind transfer (REFER without Replaces) on both media modes: 501411 transfers
    501410 to 501412; 501412 is presented 501410 (not the transferor), 501410 is told
    501412, and they hear each other."""
    switch, phones, media = site
    reset(phones)
    phones["501411"].account.answer_with = 200
    phones["501412"].account.answer_with = 200
    phones["501412"].account.tone_freq = FREQ["501412"]
    call = phones["501410"].call(target(switch, "501411"), tone_freq=FREQ["501411"])
    try:
        assert pj_lib.wait_until(lambda: call.state == CONFIRMED, 8)
        transferor = phones["501411"].account.incoming[0]
        assert pj_lib.wait_until(lambda: transferor.state == CONFIRMED, 5)
        transferor.xfer(target(switch, "501412"), pj.CallOpParam(True))
        assert pj_lib.wait_until(lambda: len(phones["501412"].account.incoming) == 1, 8), \
            switch.log_text()[-3000:]
        new = phones["501412"].account.incoming[0]
        assert pj_lib.wait_until(lambda: new.state == CONFIRMED, 5)
        assert pj_lib.wait_until(lambda: transferor.state == DISCONNECTED, 5)
        assert call.state == CONFIRMED
        # the target is presented the transferee, not the transferor (RFC 5589 6)
        assert "sip:501410@" in _header(new.incoming_msg, "from"), new.incoming_msg
        assert pj_lib.wait_until(lambda: told_identity(call, "501412"), 5), call.rx_requests
        pj_lib.wait_until(lambda: False, 0.3)
        record_from_now(call, tmp_path / "transferee.wav")
        record_from_now(new, tmp_path / "target.wav")
        pj_lib.wait_until(lambda: False, 2.0)
        call.stop_media()
        new.stop_media()
        new.hangup(pj.CallOpParam(True))
        assert pj_lib.wait_until(lambda: call.state == DISCONNECTED, 5)
    finally:
        pj_lib.ep.hangupAllCalls()
        pj_lib.wait_until(lambda: False, 0.5)
        reset(phones)
    heard = dominant_frequency(tmp_path / "transferee.wav", skip_seconds=0.2)
    heard_by_target = dominant_frequency(tmp_path / "target.wav", skip_seconds=0.2)
    assert abs(heard[0] - FREQ["501412"]) < 15 and heard[1] > 100, (media, heard)
    assert abs(heard_by_target[0] - FREQ["501411"]) < 15 and heard_by_target[1] > 100, (
        media, heard_by_target)


def _header(msg: str, header: str) -> str:
    short = header[0]
    return next((ln for ln in msg.splitlines()
                 if ln.lower().startswith((f"{header}:", f"{short}:"))), "")


def test_a_consultation_to_the_network_goes_on_and_stays_billed(
        pj_lib: Any, site: tuple[RunningSwitch, dict[str, Phone], str],
        tmp_path: Path) -> None:
    """501410 holds 501411, consults a mobile through the carrier trunk, and joins them:
    the outgoing call to the network is the one that goes on (501411 moves into it), so
    its record keeps counting until the mobile hangs up, naming 501411; the internal call
    ends at the join, naming the mobile."""
    switch, phones, media = site
    reset(phones)
    phones["501411"].account.answer_with = 200
    phones["501411"].account.tone_freq = FREQ["501411"]
    phones["carrier"].account.answer_with = 200
    phones["carrier"].account.tone_freq = FREQ["501412"]
    first = phones["501410"].call(target(switch, "501411"))
    try:
        assert pj_lib.wait_until(lambda: first.state == CONFIRMED, 8)
        transferee = phones["501411"].account.incoming[0]
        first.setHold(pj.CallOpParam(True))
        pj_lib.wait_until(lambda: False, 0.5)
        second = phones["501410"].call(target(switch, "0612345678"))
        assert pj_lib.wait_until(lambda: second.state == CONFIRMED, 8), \
            switch.log_text()[-3000:]
        mobile = phones["carrier"].account.incoming[0]
        first_id, second_id = first.sip_call_id, second.sip_call_id
        first.xferReplaces(second, pj.CallOpParam(True))
        assert pj_lib.wait_until(lambda: first.state == DISCONNECTED
                                 and second.state == DISCONNECTED, 8), \
            switch.log_text()[-3000:]
        assert transferee.state == CONFIRMED and mobile.state == CONFIRMED
        # the internal call ended at the join; the call to the network is still open
        internal = wait_record(switch.data_dir, lambda r: r["call_id"] == first_id and r["end"])
        assert internal["transferred_to"] == MOBILE, internal
        assert told_identity(transferee, MOBILE) or pj_lib.wait_until(
            lambda: told_identity(transferee, MOBILE), 3), transferee.rx_requests
        pj_lib.wait_until(lambda: False, 0.3)
        record_from_now(transferee, tmp_path / "transferee.wav")
        pj_lib.wait_until(lambda: False, 1.5)
        transferee.stop_media()
        mobile.stop_media()
        mobile.hangup(pj.CallOpParam(True))
        assert pj_lib.wait_until(lambda: transferee.state == DISCONNECTED, 5)
    finally:
        pj_lib.ep.hangupAllCalls()
        pj_lib.wait_until(lambda: False, 0.5)
        reset(phones)
    freq, level = dominant_frequency(tmp_path / "transferee.wav", skip_seconds=0.2)
    assert abs(freq - FREQ["501412"]) < 15 and level > 100, (media, freq, level)
    billed = wait_record(switch.data_dir, lambda r: r["call_id"] == second_id and r["end"])
    assert billed["callee"] == MOBILE and billed["transferred_to"] == "501411"
    assert float(str(billed["end"])) > float(str(internal["end"])) + 1.5  # the joined talk
    assert billed["decision"] == "external" and billed["billable"] is True
