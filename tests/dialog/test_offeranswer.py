"""RFC 3264 offer/answer: answers to phone offers, hold, rejected streams, the tracker."""

from __future__ import annotations

import dataclasses

import pytest

from switch.dialog.offeranswer import (
    MediaCapabilities,
    OAState,
    OfferAnswer,
    OfferAnswerError,
    SdpKind,
    SdpVersioner,
    build_answer,
    build_offer,
    bump_version,
    is_hold,
    negotiated_streams,
    rewrite_connection,
)
from switch.dialog.sdp import Direction, SessionDescription, parse_sdp
from switch.sip import SipError

CAPS = MediaCapabilities(address="198.51.100.7", port=30000, codecs=("PCMU", "PCMA"))


def offer(formats: str, rtpmaps: str = "", direction: str = "sendrecv", conn: str = "192.0.2.10",
          extra_m: str = "") -> SessionDescription:
    return parse_sdp(
        "v=0\r\no=alice 1 1 IN IP4 192.0.2.10\r\ns=-\r\n"
        f"c=IN IP4 {conn}\r\nt=0 0\r\n{extra_m}"
        f"m=audio 49170 RTP/AVP {formats}\r\n{rtpmaps}a={direction}\r\n"
    )


TE = "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"


@pytest.mark.parametrize(
    ("formats", "rtpmaps", "prefs", "expected"),
    [
        ("0 8 101", TE, ("PCMU", "PCMA"), ("0", "101")),
        ("8 0 101", TE, ("PCMU", "PCMA"), ("0", "101")),  # our preference wins
        ("0 8 101", TE, ("PCMA", "PCMU"), ("8", "101")),
        ("8 101", TE, ("PCMU", "PCMA"), ("8", "101")),
        ("0 8", "", ("PCMU",), ("0",)),  # no telephone-event offered: none answered
        ("18 8 96", "a=rtpmap:96 telephone-event/8000\r\n", ("PCMA",), ("8", "96")),  # offered dynamic PT kept
        ("0 8 101", TE + "a=rtpmap:8 pcma/8000\r\n", ("PCMA",), ("8", "101")),  # case-insensitive names
    ],
)
def test_codec_choice(formats: str, rtpmaps: str, prefs: tuple[str, ...], expected: tuple[str, ...]) -> None:
    caps = dataclasses.replace(CAPS, codecs=prefs)
    ans = build_answer(offer(formats, rtpmaps), caps)
    m = ans.media[0]
    assert m.formats == expected
    assert m.port == 30000 and ans.connection is not None and ans.connection.address == "198.51.100.7"
    assert m.direction is Direction.SENDRECV
    te = m.telephone_event
    if te is not None:
        assert m.fmtp[str(te)] in ("0-15", "0-16")


def test_all_common_codecs_when_not_single() -> None:
    caps = dataclasses.replace(CAPS, single_codec=False)
    assert build_answer(offer("8 0 101", TE), caps).media[0].formats == ("0", "8", "101")


def test_no_telephone_event_when_we_do_not_support_it() -> None:
    caps = dataclasses.replace(CAPS, telephone_event=False)
    assert build_answer(offer("0 101", TE), caps).media[0].formats == ("0",)


def test_no_common_codec_is_488() -> None:
    with pytest.raises(SipError) as err:
        build_answer(offer("18 9 101", TE), CAPS)
    assert err.value.status == 488


@pytest.mark.parametrize(
    ("offered", "local", "answered"),
    [
        ("sendrecv", Direction.SENDRECV, Direction.SENDRECV),
        ("sendonly", Direction.SENDRECV, Direction.RECVONLY),  # peer puts us on hold
        ("recvonly", Direction.SENDRECV, Direction.SENDONLY),
        ("inactive", Direction.SENDRECV, Direction.INACTIVE),
        ("sendrecv", Direction.SENDONLY, Direction.SENDONLY),  # we put the peer on hold
        ("sendonly", Direction.SENDONLY, Direction.INACTIVE),
    ],
)
def test_direction(offered: str, local: Direction, answered: Direction) -> None:
    ans = build_answer(offer("0", direction=offered), CAPS, direction=local)
    assert ans.media[0].direction is answered


def test_hold_detection() -> None:
    assert not is_hold(offer("0"))
    assert is_hold(offer("0", direction="sendonly"))
    assert is_hold(offer("0", direction="inactive"))
    assert not is_hold(offer("0", direction="recvonly"))
    old_style = offer("0", conn="0.0.0.0")
    assert is_hold(old_style)
    # RFC 2543 hold: we must not send to 0.0.0.0, we still receive
    assert build_answer(old_style, CAPS).media[0].direction is Direction.RECVONLY
    # resume: sendrecv again
    assert build_answer(offer("0"), CAPS).media[0].direction is Direction.SENDRECV


def test_multiple_m_lines_rejected_kept_in_order() -> None:
    video = "m=video 51372 RTP/AVP 31\r\na=rtpmap:31 H261/90000\r\n"
    off = offer("0 8", extra_m=video + "m=audio 0 RTP/AVP 0\r\n")
    off = dataclasses.replace(off, media=(*off.media, off.media[2]))  # a second usable audio
    ans = build_answer(off, CAPS)
    assert [m.media for m in ans.media] == ["video", "audio", "audio", "audio"]
    assert [m.port for m in ans.media] == [0, 0, 30000, 0]
    assert ans.media[0].formats == ("31",)
    assert ans.media[1].rejected  # offered rejected stays rejected
    assert parse_sdp(ans.to_bytes()) == ans


def test_srtp_offer() -> None:
    savp = parse_sdp(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
        "m=audio 4000 RTP/SAVP 0\r\n"
        "a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:AAAA\r\n"
        "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:BBBB\r\n"
    )
    with pytest.raises(SipError) as err:
        build_answer(savp, CAPS)
    assert err.value.status == 488
    caps = dataclasses.replace(CAPS, srtp_keys=(("AES_CM_128_HMAC_SHA1_80", "inline:OURS"),))
    (c,) = build_answer(savp, caps).media[0].crypto
    assert (c.tag, c.suite, c.key_params) == (2, "AES_CM_128_HMAC_SHA1_80", "inline:OURS")


def test_build_offer_and_answer_each_other() -> None:
    caps = dataclasses.replace(CAPS, codecs=("PCMA", "opus/48000/2", "PCMU"))
    off = build_offer(caps)
    m = off.media[0]
    assert m.formats == ("8", "96", "0", "101")
    assert m.rtpmap[96].encoding == "opus" and m.rtpmap[96].channels == 2
    assert m.fmtp["101"] == "0-16" and m.ptime == 20
    assert parse_sdp(off.to_bytes()) == off
    peer = MediaCapabilities(address="192.0.2.99", port=4000, codecs=("PCMU",))
    ans = build_answer(off, peer)
    (ours,) = negotiated_streams(off, ans)
    assert (ours.remote_address, ours.remote_port, ours.payload_type, ours.encoding) == ("192.0.2.99", 4000, 0, "PCMU")
    assert ours.telephone_event == 101 and ours.direction is Direction.SENDRECV
    (theirs,) = negotiated_streams(ans, off)
    assert (theirs.remote_port, theirs.payload_type) == (30000, 0)


def test_rewrite_connection_for_anchoring() -> None:
    src = parse_sdp(
        "v=0\r\no=bob 5 5 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n"
        "a=ice-ufrag:abcd\r\n"
        "m=audio 7000 RTP/AVP 0\r\nc=IN IP4 10.0.0.6\r\na=rtcp:7001\r\na=candidate:1 1 UDP 1 10.0.0.6 7000 typ host\r\na=sendrecv\r\n"
        "m=video 0 RTP/AVP 31\r\n"
    )
    out = rewrite_connection(src, "2001:db8::1", 40000)
    assert out.connection is not None and (out.connection.addrtype, out.connection.address) == ("IP6", "2001:db8::1")
    assert out.media[0].port == 40000 and out.media[0].connection is None
    assert out.media[0].attributes == (("sendrecv", None),)
    assert out.attributes == ()
    assert out.media[1].port == 0
    assert rewrite_connection(src, "198.51.100.1", [40000, 40002]).media[0].port == 40000


def test_versioner_bumps_only_on_change() -> None:
    v = SdpVersioner(1000)
    a = v.stamp(build_offer(CAPS))
    assert (a.origin.session_id, a.origin.session_version) == ("1000", 1000)
    assert v.stamp(build_offer(CAPS)) == a  # unchanged: same version (RFC 3264 8)
    b = v.stamp(build_offer(CAPS, direction=Direction.SENDONLY))
    assert b.origin.session_version == 1001 and b.origin.session_id == "1000"
    c = v.stamp(build_offer(CAPS))
    assert c.origin.session_version == 1002
    assert bump_version(c).origin.session_version == 1003


# -- the tracker -----------------------------------------------------------------------------

A = build_offer(CAPS)
B = dataclasses.replace(build_answer(A, CAPS), origin=dataclasses.replace(A.origin, username="peer"))


def test_initial_offer_in_invite() -> None:
    uac, uas = OfferAnswer(), OfferAnswer()
    assert uac.send(A) is SdpKind.OFFER and uac.state is OAState.OFFER_SENT
    assert uas.receive(A) is SdpKind.OFFER and uas.state is OAState.OFFER_RECEIVED
    assert uas.send(B) is SdpKind.ANSWER and uas.is_complete
    assert uac.receive(B) is SdpKind.ANSWER and uac.is_complete
    assert (uac.local, uac.remote, uas.local, uas.remote) == (A, B, B, A)
    # the answer of an unreliable 183 again in the 200: not a new offer (RFC 3261 13.2.1)
    assert uac.receive(B) is SdpKind.REPEAT and uac.is_complete


def test_late_offer_answer_in_ack() -> None:
    uas = OfferAnswer()
    assert uas.send(A) is SdpKind.OFFER  # in the 2xx to an INVITE without SDP
    assert uas.send(A) is SdpKind.REPEAT  # 2xx retransmission
    assert uas.receive(B, request="ACK") is SdpKind.ANSWER and uas.is_complete


def test_update_offer_while_complete_and_answer_in_its_2xx() -> None:
    oa = OfferAnswer()
    oa.receive(A, request="INVITE")
    oa.send(B)
    a2 = bump_version(A)
    assert oa.receive(a2, request="UPDATE") is SdpKind.OFFER
    assert oa.receive(a2, request="UPDATE") is SdpKind.REPEAT  # retransmission absorbed
    b2 = bump_version(B)
    assert oa.send(b2) is SdpKind.ANSWER and oa.remote == a2 and oa.local == b2


def test_ack_without_answer_or_with_offer() -> None:
    uas = OfferAnswer()
    uas.send(A)
    with pytest.raises(OfferAnswerError) as err:
        uas.receive_ack(None)
    assert err.value.status == 400 and uas.state is OAState.NO_OFFER
    done = OfferAnswer()
    done.receive(A)
    done.send(B)
    assert done.receive_ack(None) is None
    with pytest.raises(OfferAnswerError):
        done.receive_ack(bump_version(A))


def test_glare_is_491_and_pending_offer_is_500() -> None:
    oa = OfferAnswer()
    oa.receive(A)
    oa.send(B)
    oa.send(bump_version(B), request="INVITE")  # our re-INVITE
    with pytest.raises(OfferAnswerError) as err:
        oa.receive(bump_version(A), request="INVITE")  # theirs crosses it
    assert err.value.status == 491 and oa.state is OAState.OFFER_SENT
    other = OfferAnswer()
    other.receive(A)
    with pytest.raises(OfferAnswerError) as err:
        other.receive(bump_version(A), request="UPDATE")  # an UPDATE offer while their INVITE offer is unanswered
    assert err.value.status == 500 and ("Retry-After", "5") in err.value.headers


def test_rollback_keeps_the_session() -> None:
    oa = OfferAnswer()
    oa.send(A)
    oa.receive(B)
    oa.send(bump_version(A))
    oa.rollback()  # the re-INVITE got 488
    assert oa.state is OAState.COMPLETE and oa.local == A and oa.remote == B
    with pytest.raises(OfferAnswerError):
        oa.rollback()


def test_missing_transitions() -> None:
    oa = OfferAnswer()
    with pytest.raises(OfferAnswerError) as err:
        oa.receive_answer(B)
    assert err.value.status == 400
    oa.send_offer(A)
    with pytest.raises(OfferAnswerError) as err:
        oa.send_offer(bump_version(A))
    assert err.value.status == 500
    with pytest.raises(OfferAnswerError):
        oa.send_answer(B)
