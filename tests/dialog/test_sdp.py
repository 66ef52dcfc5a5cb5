"""SDP parse/serialise (RFC 8866): round trips and invalid inputs with their status."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switch.dialog.sdp import (
    Connection,
    Crypto,
    Direction,
    RtpMap,
    SdpError,
    parse_sdp,
    serialize,
)

PHONE_OFFER = (
    "v=0\r\n"
    "o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n"
    "s=-\r\n"
    "c=IN IP4 192.0.2.10\r\n"
    "t=0 0\r\n"
    "m=audio 49170 RTP/AVP 0 8 101\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-15\r\n"
    "a=ptime:20\r\n"
    "a=sendrecv\r\n"
)

FULL = (
    "v=0\r\n"
    "o=- 20518 0 IN IP4 203.0.113.1\r\n"
    "s=Talk\r\n"
    "i=A call\r\n"
    "u=http://example.com/x\r\n"
    "e=ops@example.com\r\n"
    "p=+33 5 62 07 04 10\r\n"
    "c=IN IP4 203.0.113.1\r\n"
    "b=AS:84\r\n"
    "t=0 0\r\n"
    "r=7d 1h 0 25h\r\n"
    "t=3034423619 3042462419\r\n"
    "z=2882844526 -1h 2898848070 0\r\n"
    "a=recvonly\r\n"
    "m=audio 49170 RTP/SAVP 0 18\r\n"
    "i=voice\r\n"
    "c=IN IP4 203.0.113.2\r\n"
    "b=AS:64\r\n"
    "a=rtpmap:18 G729/8000\r\n"
    "a=fmtp:18 annexb=no\r\n"
    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32\r\n"
    "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj|2^20|1:32 KDR=1\r\n"
    "a=sendonly\r\n"
    "m=video 0 RTP/AVP 31\r\n"
    "m=audio 5004/2 RTP/AVP 96\r\n"
    "a=rtpmap:96 opus/48000/2\r\n"
    "a=inactive\r\n"
)


@pytest.mark.parametrize("text", [PHONE_OFFER, FULL])
def test_round_trip(text: str) -> None:
    sdp = parse_sdp(text.encode())
    assert serialize(sdp) == text
    assert parse_sdp(sdp.to_bytes()) == sdp


def test_bare_lf_is_accepted_and_serialised_with_crlf() -> None:
    sdp = parse_sdp(PHONE_OFFER.replace("\r\n", "\n"))
    assert serialize(sdp) == PHONE_OFFER


def test_views() -> None:
    sdp = parse_sdp(PHONE_OFFER)
    assert sdp.origin.session_version == 2890844526
    assert sdp.connection == Connection("192.0.2.10", "IN", "IP4")
    m = sdp.media[0]
    assert (m.media, m.port, m.proto, m.formats) == ("audio", 49170, "RTP/AVP", ("0", "8", "101"))
    assert m.rtpmap[101] == RtpMap(101, "telephone-event", 8000)
    assert m.fmtp == {"101": "0-15"}
    assert m.ptime == 20
    assert m.direction is Direction.SENDRECV
    assert m.telephone_event == 101
    assert sdp.connection_of(m) == sdp.connection


def test_full_views() -> None:
    sdp = parse_sdp(FULL)
    a, video, opus = sdp.media
    assert a.crypto[0] == Crypto(1, "AES_CM_128_HMAC_SHA1_80",
                                 "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32")
    assert a.crypto[1].session_params == "KDR=1"
    assert a.rtpmap[0].encoding == "PCMU"  # static, no rtpmap line
    assert a.direction is Direction.SENDONLY
    assert sdp.connection_of(a) is not None and sdp.connection_of(a).host == "203.0.113.2"  # type: ignore[union-attr]
    assert video.rejected and not a.rejected
    assert opus.port_count == 2 and opus.rtpmap[96] == RtpMap(96, "opus", 48000, 2)
    assert sdp.direction_of(opus) is Direction.INACTIVE
    assert sdp.direction_of(video) is Direction.RECVONLY  # session-level attribute
    assert len(sdp.timings) == 2 and sdp.timings[0].repeats == ("7d 1h 0 25h",)


def test_direction_inversion() -> None:
    assert Direction.SENDONLY.inverted() is Direction.RECVONLY
    assert Direction.RECVONLY.inverted() is Direction.SENDONLY
    assert Direction.SENDRECV.inverted() is Direction.SENDRECV
    assert Direction.INACTIVE.inverted() is Direction.INACTIVE


def test_with_direction_replaces_attribute() -> None:
    m = parse_sdp(PHONE_OFFER).media[0].with_direction(Direction.SENDONLY)
    assert m.direction is Direction.SENDONLY
    assert sum(1 for n, v in m.attributes if v is None) == 1


BAD = [
    ("", "missing"),
    ("o=- 1 1 IN IP4 1.2.3.4\r\nv=0\r\ns=-\r\n", "out of order"),
    ("v=1\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\n", "v= must be 0"),
    ("v=0\r\no=- 1 IN IP4 1.2.3.4\r\ns=-\r\n", "6 fields"),
    ("v=0\r\no=- x 1 IN IP4 1.2.3.4\r\ns=-\r\n", "session id"),
    ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4\r\n", "c= needs"),
    ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 70000 RTP/AVP 0\r\n", "out of range"),
    ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 4000 RTP/AVP\r\n", "without formats"),
    ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 4000 RTP/AVP 200\r\n", "payload type"),
    ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n", "no c= line"),
    ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU\r\n", "rtpmap"),
    ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 0\r\na=crypto:x y\r\n", "crypto"),
    ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nx=unknown\r\n", "unknown line type"),
    ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\ns=again\r\n", "repeated"),
    ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\ns=x\r\n", "out of order"),
    ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\ngarbage\r\n", "bad line"),
]


@pytest.mark.parametrize(("text", "why"), BAD)
def test_invalid_sdp_is_400(text: str, why: str) -> None:
    with pytest.raises(SdpError) as err:
        parse_sdp(text)
    assert err.value.status == 400
    assert why in err.value.reason


def test_not_utf8_and_too_large() -> None:
    with pytest.raises(SdpError):
        parse_sdp(b"v=0\r\n\xff\xfe")
    with pytest.raises(SdpError):
        parse_sdp("v=0\r\n" + "a=x\r\n" * 20000)


def test_linear_time_on_many_attributes() -> None:
    head = "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
    small = head + "a=x-y:" + "z" * 10 + "\r\n" * 1
    big = head + "a=foo:bar\r\n" * 5000
    t0 = time.perf_counter()
    parse_sdp(small)
    t1 = time.perf_counter()
    sdp = parse_sdp(big)
    t2 = time.perf_counter()
    assert len(sdp.media[0].attributes) == 5000
    assert t2 - t1 < 0.5 and t1 - t0 < 0.5

_LINES = st.sampled_from([
    "v=0", "o=- 1 1 IN IP4 1.2.3.4", "s=-", "c=IN IP4 1.2.3.4", "t=0 0", "m=audio 4000 RTP/AVP 0 8",
    "a=rtpmap:8 PCMA/8000", "a=sendonly", "a=crypto:1 S K", "b=AS:1", "m=video 0 RTP/AVP 31",
    "a=fmtp:101 0-15", "x=y", "a=rtpmap:1", "", "=", "o=", "m=audio", "r=1d 1h 0",
])


@settings(max_examples=300, deadline=None)
@given(st.lists(_LINES, max_size=14), st.text(max_size=30))
def test_fuzz_only_sdp_errors(lines: list[str], noise: str) -> None:
    text = "\r\n".join([*lines, noise])
    try:
        sdp = parse_sdp(text)
    except SdpError as err:
        assert err.status == 400
        return
    assert parse_sdp(serialize(sdp)) == sdp
