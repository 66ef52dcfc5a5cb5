"""Multipart bodies (RFC 2046 5.1), stream framing (RFC 3261 18.3, RFC 5626 4.4.1),
responses (8.2.6) and a few parser rules (7.3.1 folding, 7.5 leading CRLF, 18.3 length)."""

from __future__ import annotations

import pytest

from switch.sip import (
    BodyPart,
    Headers,
    Request,
    SipParseError,
    StreamFramer,
    build_multipart,
    make_response,
    parse_message,
    parse_multipart,
)

SDP = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
PIDF = b'<?xml version="1.0"?>\r\n<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="pres:a@b"/>\r\n'
INVITE = (b"INVITE sip:bob@example.org SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n"
          b'From: "A" <sip:a@example.com>;tag=1\r\nTo: <sip:bob@example.org;tag=inuri>\r\n'
          b"Call-ID: c1@example.com\r\nCSeq: 1 INVITE\r\nTimestamp: 54\r\nContent-Length: 4\r\n\r\nabcd")


def test_multipart_round_trip() -> None:
    parts = [BodyPart((("Content-Type", "application/sdp"),), SDP),
             BodyPart((("Content-Type", "application/pidf+xml"), ("Content-ID", "<loc@b>")), PIDF),
             BodyPart((), b"")]
    ctype, body = build_multipart(parts, "unique-boundary-1")
    assert ctype == "multipart/mixed;boundary=unique-boundary-1"
    assert parse_multipart(ctype, body) == parts
    quoted, body2 = build_multipart(parts[:1], "has space:colon")
    assert quoted == 'multipart/mixed;boundary="has space:colon"'
    assert parse_multipart(quoted, body2) == parts[:1]
    assert parts[2].content_type == "text/plain"  # RFC 2046 5.1: the default


def test_multipart_preamble_padding_and_epilogue() -> None:
    body = (b"preamble\r\n--xx  \r\nContent-Type: text/plain\r\n folded\r\n\r\nhello\r\n"
            b"--xx\r\n\r\nno headers\r\n--xx--  \r\nepilogue")
    parts = parse_multipart("Multipart/Related; type=application/sdp; boundary=xx", body)
    assert parts[0].header("content-type") == "text/plain folded" and parts[0].body == b"hello"
    assert parts[1].headers == () and parts[1].body == b"no headers"


@pytest.mark.parametrize("ctype,body", [
    ("application/sdp; boundary=x", b"--x\r\n\r\na\r\n--x--"),
    ("multipart/mixed", b"--x\r\n\r\na\r\n--x--"),
    ("multipart/mixed;boundary=x", b"no delimiter at all"),
    ("multipart/mixed;boundary=x", b"--x\r\n\r\nunclosed"),
    ("multipart/mixed;boundary=x", b"--xjunk\r\n\r\na\r\n--x--"),
    ("multipart/mixed;boundary=x", b"--x\r\nNo-Separator: here\r\n--x--"),
])
def test_bad_multipart(ctype: str, body: bytes) -> None:
    with pytest.raises(SipParseError):
        parse_multipart(ctype, body)


def test_build_multipart_rejects_caller_mistakes() -> None:
    with pytest.raises(ValueError):
        build_multipart([BodyPart((), b"--b inside")], "b")
    with pytest.raises(ValueError):
        build_multipart([], "x" * 71)


def test_framer_byte_by_byte_and_keepalives() -> None:
    stream = b"\r\n\r\n" + INVITE + b"\r\n" + INVITE + b"\r\n\r\n"
    framer = StreamFramer()
    frames = [f for i in range(len(stream)) for f in framer.feed(stream[i : i + 1])]
    assert frames == [b"\r\n\r\n", INVITE, INVITE, b"\r\n\r\n"]
    assert framer.pending == 0


def test_framer_several_messages_in_one_read_and_partial_tail() -> None:
    framer = StreamFramer()
    assert framer.feed(INVITE * 3 + INVITE[:50]) == [INVITE] * 3
    assert framer.feed(INVITE[50:]) == [INVITE]


@pytest.mark.parametrize("stream,status", [
    (INVITE.replace(b"Content-Length: 4", b"X: y"), 400),
    (INVITE.replace(b"Content-Length: 4", b"Content-Length: -4"), 400),
    (INVITE.replace(b"Content-Length: 4", b"Content-Length: 4\r\nl: 4"), 400),
    (INVITE.replace(b"Content-Length: 4", b"Content-Length: 99999"), 513),
    (b"INVITE " + b"a" * 70000, 513),
])
def test_framer_errors(stream: bytes, status: int) -> None:
    with pytest.raises(SipParseError) as info:
        StreamFramer().feed(stream)
    assert info.value.status == status


def test_make_response_copies_and_tags() -> None:
    req = parse_message(INVITE)
    assert isinstance(req, Request)
    resp = make_response(req, 180, to_tag="tt")
    assert resp.to.tag == "tt"  # the tag inside the URI does not count (section 19.1.4)
    assert resp.headers.get_raw("Via") == req.headers.get_raw("Via")
    assert (resp.call_id, resp.cseq, resp.from_) == (req.call_id, req.cseq, req.from_)
    trying = make_response(req, 100, to_tag="tt")
    assert trying.to.tag is None and trying.headers.get("Timestamp") == "54"
    assert parse_message(resp.to_bytes()) == resp
    tagged = make_response(parse_message(resp.to_bytes().replace(b"SIP/2.0 180 Ringing", b"INVITE sip:b@c SIP/2.0")), 200, to_tag="other")  # type: ignore[arg-type]
    assert tagged.to.tag == "tt"
    extra = make_response(req, 486, headers=[("retry-after", "30")], body=b"")
    assert extra.reason == "Busy Here" and extra.headers.get("Retry-After") == "30"


def test_parser_rules() -> None:
    msg = parse_message(b"\r\n\r\n" + INVITE.replace(b"Timestamp: 54", b"Subject: a\r\n\t b\r\n  c") + b"extra")
    assert msg.headers.get("subject") == "a b c"
    assert msg.body == b"abcd"  # section 18.3: bytes past Content-Length are dropped
    lf = parse_message(INVITE.replace(b"\r\n", b"\n"))  # bare LF tolerated
    assert lf.body == b"abcd" and lf.call_id == "c1@example.com"
    with pytest.raises(SipParseError):
        parse_message(INVITE.replace(b"Timestamp: 54\r\n", b"Timestamp: 54\n"))  # mixed endings


def test_headers_api() -> None:
    h = Headers([("v", "SIP/2.0/UDP a"), ("X-Foo", "1, 2"), ("via", "SIP/2.0/UDP b, SIP/2.0/UDP c")])
    assert h.count("Via") == 2 and h.get_all("VIA") == ["SIP/2.0/UDP a", "SIP/2.0/UDP b", "SIP/2.0/UDP c"]
    assert h.get_all("x-foo") == ["1", "2"] and h.get_raw("X-FOO") == ["1, 2"]
    h2 = h.add("Route", "<sip:r;lr>", first=True).remove("x-foo").replace("Via", "SIP/2.0/TCP d")
    assert [n for n, _ in h2.items()] == ["Route", "Via"] and "via" in h2
    assert h2.extend([("m", "<sip:x@y>")]).get("Contact") == "<sip:x@y>"
