"""Hold through the anchor: what the switch answers (RFC 3264 6.1, 8.4) and what the relay
does (music for the held party), for sendonly, inactive and the RFC 2543 c=0.0.0.0."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import AsyncIterator

import numpy as np
import pytest

from media import MediaEngine, MusicOnHold
from media.hold import HoldState
from switch.b2bua.effects import Side
from switch.dialog.sdp import Direction, parse_sdp
from switch.media_service import Anchor, MediaService

_ranges = itertools.count(secrets.randbelow(40))

OFFER = (b"v=0\r\no=a 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
         b"m=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\n"
         b"a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n")
ANSWER = (b"v=0\r\no=b 7 7 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\n"
          b"m=audio 5000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n"
          b"a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n")
OLD_PHONE_HOLD = OFFER.replace(b"c=IN IP4 10.0.0.1", b"c=IN IP4 0.0.0.0")  # RFC 2543 hold


@pytest.fixture
async def anchor() -> AsyncIterator[Anchor]:
    base = 36000 + 100 * (next(_ranges) % 40)
    service = MediaService("127.0.0.1", base, base + 99)
    service.engine = MediaEngine("127.0.0.1", base, base + 99)
    await service.engine.start()
    made = await service.anchor(OFFER)
    assert made is not None
    made.answer_for_caller(None, ANSWER)
    made.latch(ANSWER)
    made.hold_music = MusicOnHold(np.full(1600, 1000, np.int16))
    yield made
    await made.close()
    await service.engine.stop()


def direction(answer: bytes) -> Direction:
    sdp = parse_sdp(answer)
    return sdp.direction_of(sdp.media[0])


def music_to(anchor: Anchor, side: Side) -> bool:
    return anchor.relay_leg(side).playing_music


@pytest.mark.parametrize(("offer", "expected"), [
    (OFFER.replace(b"a=sendrecv", b"a=sendonly"), Direction.RECVONLY),
    (OFFER.replace(b"a=sendrecv", b"a=inactive"), Direction.INACTIVE),
    (OLD_PHONE_HOLD, Direction.RECVONLY),
], ids=["sendonly", "inactive", "c=0.0.0.0"])
async def test_caller_holds_callee_hears_music_until_resume(anchor: Anchor, offer: bytes,
                                                            expected: Direction) -> None:
    answer = anchor.answer_reoffer(Side.CALLER, offer)
    assert direction(answer) is expected
    assert parse_sdp(answer).media[0].formats[0] == "8"  # the call's codec stays
    assert anchor.relay.hold_state is HoldState.HELD_BY_A
    assert music_to(anchor, Side.CALLEE) and not music_to(anchor, Side.CALLER)
    assert anchor.relay.leg_a.holding_back and anchor.relay.leg_b.holding_back
    answer = anchor.answer_reoffer(Side.CALLER, OFFER)  # resume: sendrecv, a real address
    assert direction(answer) is Direction.SENDRECV
    assert anchor.relay.hold_state is HoldState.TALKING
    assert not music_to(anchor, Side.CALLEE)
    assert not (anchor.relay.leg_a.holding_back or anchor.relay.leg_b.holding_back)


async def test_old_phone_hold_keeps_the_phone_address(anchor: Anchor) -> None:
    leg = anchor.relay.leg_a
    before = leg.dest
    anchor.answer_reoffer(Side.CALLER, OLD_PHONE_HOLD)
    assert leg.dest == before == ("10.0.0.1", 4000)  # 0.0.0.0 means "do not send", not where


async def test_callee_holds_caller_hears_music(anchor: Anchor) -> None:
    hold = ANSWER.replace(b"a=sendrecv", b"a=sendonly")  # the callee's re-INVITE offer
    assert direction(anchor.answer_reoffer(Side.CALLEE, hold)) is Direction.RECVONLY
    assert music_to(anchor, Side.CALLER) and not music_to(anchor, Side.CALLEE)
    # the caller refreshes its session (sendrecv) meanwhile: still on hold, music plays on
    anchor.answer_reoffer(Side.CALLER, OFFER)
    assert anchor.relay.hold_state is HoldState.HELD_BY_B and music_to(anchor, Side.CALLER)


async def test_recvonly_offer_is_no_hold(anchor: Anchor) -> None:
    # the offerer still receives (RFC 3264 8.4 only calls sendonly/inactive a hold)
    answer = anchor.answer_reoffer(Side.CALLER, OFFER.replace(b"a=sendrecv", b"a=recvonly"))
    assert direction(answer) is Direction.SENDONLY
    assert anchor.relay.hold_state is HoldState.TALKING and not music_to(anchor, Side.CALLEE)


async def test_without_a_source_the_held_party_gets_silence(anchor: Anchor) -> None:
    anchor.hold_music = None
    anchor.answer_reoffer(Side.CALLER, OFFER.replace(b"a=sendrecv", b"a=inactive"))
    assert anchor.relay.hold_state is HoldState.HELD_BY_A
    assert not music_to(anchor, Side.CALLEE) and anchor.relay.leg_a.holding_back


async def test_transfer_target_replacing_the_holder_is_heard(anchor: Anchor) -> None:
    from switch.transfer import latch_onto

    anchor.answer_reoffer(Side.CALLER, OFFER.replace(b"a=sendrecv", b"a=sendonly"))
    target = ANSWER.replace(b"10.0.0.2", b"10.0.0.9")
    latch_onto(anchor, Side.CALLER, target)  # the holder transferred the callee
    assert anchor.relay.hold_state is HoldState.TALKING
    assert not music_to(anchor, Side.CALLEE)
