"""Media anchoring: what the relay's SDP rewriting gives each side."""

from __future__ import annotations

from switch.b2bua.effects import Side
from switch.dialog.sdp import Direction, parse_sdp
from switch.media_service import MediaService, restrict_codecs

OFFER = (b"v=0\r\no=a 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
         b"m=audio 4000 RTP/AVP 9 0 8 101\r\na=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\n"
         b"a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
         b"a=fmtp:101 0-16\r\na=sendrecv\r\n")
ANSWER = (b"v=0\r\no=b 7 7 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\n"
          b"m=audio 5000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n"
          b"a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n")


def test_restrict_codecs_keeps_only_what_the_engine_reads() -> None:
    m = restrict_codecs(parse_sdp(OFFER)).media[0]
    assert m.formats == ("0", "8", "101")
    assert all(not (v or "").startswith("9 ") for _, v in m.attributes)
    assert ("fmtp", "101 0-16") in m.attributes


async def test_offer_answer_and_hold_through_the_relay() -> None:
    service = MediaService("127.0.0.1", 31000, 31999)
    from media import MediaEngine

    service.engine = MediaEngine("127.0.0.1", 31000, 31999)
    await service.engine.start()
    try:
        anchor = await service.anchor(OFFER)
        assert anchor is not None
        to_b = parse_sdp(anchor.offer_for_callee())
        leg_b = anchor.relay.leg_b
        assert to_b.connection is not None and to_b.connection.host == "127.0.0.1"
        assert to_b.media[0].port == leg_b.local_port
        assert to_b.media[0].formats == ("0", "8", "101")
        to_a = parse_sdp(anchor.answer_for_caller(None, ANSWER))
        anchor.latch(ANSWER)  # the Call's CalleeMedia effect
        assert to_a.media[0].port == anchor.relay.leg_a.local_port
        assert anchor.codec == "PCMA"
        # the caller puts the call on hold: the switch answers recvonly on its own leg
        hold = OFFER.replace(b"a=sendrecv", b"a=sendonly")
        answer = parse_sdp(anchor.answer_reoffer(Side.CALLER, hold))
        assert answer.direction_of(answer.media[0]) is Direction.RECVONLY
        assert answer.media[0].port == anchor.relay.leg_a.local_port
        assert answer.media[0].formats[0] == "8"  # the call's codec stays
        resumed = parse_sdp(anchor.answer_reoffer(Side.CALLER, OFFER))
        assert resumed.direction_of(resumed.media[0]) is Direction.SENDRECV
        assert resumed.origin.session_version == answer.origin.session_version + 1  # RFC 3264 8
        await anchor.close()
    finally:
        await service.engine.stop()


async def test_no_rtp_port_left_answers_503() -> None:
    from media import MediaEngine
    from switch.sip import SipError

    service = MediaService("127.0.0.1", 32000, 32003)  # room for two relays' legs at most
    service.engine = MediaEngine("127.0.0.1", 32000, 32003)
    await service.engine.start()
    anchors = []
    try:
        try:
            for _ in range(4):
                anchors.append(await service.anchor(OFFER))
        except SipError as exc:
            assert exc.status == 503
            assert ("Retry-After", "30") in exc.headers
        else:
            raise AssertionError("the port range never ran out")
    finally:
        for a in anchors:
            if a is not None:
                await a.close()
        await service.engine.stop()
