"""parse_sdp's cache and its fast rtpmap check (issue 21) change nothing it answers."""

from __future__ import annotations

import pytest

from switch.dialog.sdp import SdpError, parse_sdp

HEAD = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"


def body(media: str = "m=audio 4000 RTP/AVP 0\r\n", attrs: str = "a=rtpmap:0 PCMU/8000\r\n"
         ) -> bytes:
    return (HEAD + media + attrs).encode()


def test_the_same_body_gives_the_same_description() -> None:
    first = parse_sdp(body())
    assert parse_sdp(body()) is first  # served again, not parsed again
    assert parse_sdp(body().decode()) == first  # a str body parses to an equal tree
    assert first.media[0].rtpmap[0].encoding == "PCMU"


def test_an_invalid_body_raises_every_time() -> None:
    bad = body(attrs="a=rtpmap:0 PCMU\r\n")
    for _ in range(2):
        with pytest.raises(SdpError) as exc:
            parse_sdp(bad)
        assert exc.value.status == 400


@pytest.mark.parametrize("value", ["128 PCMU/8000", "0 PCMU/", "0 /8000", "x PCMU/8000",
                                   "0 PCMU/8000/x", "0 PCMU/8000/1/2"])
def test_rtpmaps_the_full_check_refuses_are_still_refused(value: str) -> None:
    with pytest.raises(SdpError):
        parse_sdp(body(attrs=f"a=rtpmap:{value}\r\n"))


@pytest.mark.parametrize("value", ["0 PCMU/8000", " 0  PCMU/8000 ", "111 opus/48000/2",
                                   "101 telephone-event/8000"])
def test_rtpmaps_the_full_check_accepts_are_accepted(value: str) -> None:
    sdp = parse_sdp(body(media="m=audio 4000 RTP/AVP 0 101 111\r\n", attrs=f"a=rtpmap:{value}\r\n"))
    assert sdp.media[0].attribute("rtpmap") == value


def test_a_large_body_is_parsed_without_the_cache() -> None:
    attrs = "".join(f"a=x-{i}:{'v' * 40}\r\n" for i in range(120))  # over 4 KB
    sdp = parse_sdp(body(attrs=attrs))
    assert len(sdp.media[0].attributes) == 120
    assert parse_sdp(body(attrs=attrs)) is not sdp


def test_a_media_section_keeps_every_line() -> None:
    media = ("m=audio 4000/2 RTP/AVP 0\r\ni=voice\r\nc=IN IP4 192.0.2.9\r\nb=AS:64\r\n"
             "k=prompt\r\na=rtpmap:0 PCMU/8000\r\na=sendonly\r\n")
    m = parse_sdp(body(media=media, attrs="")).media[0]
    assert (m.media, m.port, m.port_count, m.proto, m.formats) == ("audio", 4000, 2, "RTP/AVP",
                                                                   ("0",))
    assert (m.info, m.bandwidths, m.key) == ("voice", ("AS:64",), "prompt")
    assert m.connection is not None and m.connection.address == "192.0.2.9"
    assert m.attributes == (("rtpmap", "0 PCMU/8000"), ("sendonly", None))
