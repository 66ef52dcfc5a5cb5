"""Hostile input: parse_message and StreamFramer raise nothing but SipParseError, in
linear time. Bounded hypothesis runs (a few hundred examples each)."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from switch.sip import SipParseError, StreamFramer, parse_message, parse_multipart
from switch.sip.message import Message

from .vectors import valid_paths

VALID = [p.read_bytes() for p in valid_paths()]
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
TEMPLATE = (b"OPTIONS sip:bob@example.org SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n"
            b"From: <sip:a@example.com>;tag=1\r\nTo: <sip:bob@example.org>\r\n"
            b"Call-ID: c1@example.com\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")


def _try(data: bytes) -> None:
    """Parsing either succeeds with usable views or raises SipParseError only."""
    try:
        msg: Message = parse_message(data)
    except SipParseError as exc:
        assert 400 <= exc.status < 600
        return
    try:
        msg.check_structure()
    except SipParseError:
        return
    # whatever parsed must serialise and parse back to an equal message
    again = parse_message(msg.to_bytes())
    assert again == msg


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.integers(0, 3))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == 0 and data:
            del data[pos : pos + draw(st.integers(1, 16))]
        elif op == 1:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == 2:
            data[pos:pos] = draw(st.sampled_from(
                [b"\r\n", b" ", b"\t", b";", b",", b'"', b"\\", b"<", b">", b":", b"@",
                 b"%", b"[", b"]", b"\x00", b"\r", b"\n", b"\r\n ", b"=", b"?", b"\xff"]))
        elif data:
            data[pos] = draw(st.integers(0, 255))
    return bytes(data)


@FUZZ
@given(mutated())
def test_mutated_vectors_raise_only_sip_parse_error(data: bytes) -> None:
    _try(data)


@FUZZ
@given(st.binary(max_size=600))
def test_random_bytes_raise_only_sip_parse_error(data: bytes) -> None:
    _try(data)
    _try(TEMPLATE + data)


_NAMES = st.sampled_from(["Via", "v", "From", "f", "To", "t", "Call-ID", "i", "CSeq", "Contact",
                          "m", "Max-Forwards", "Expires", "Content-Length", "l", "Route",
                          "X-Foo", "Content-Type"])
_VALUES = st.one_of(
    st.text(alphabet='abc<>"\\;,=:@[]%/ \t.0123456789sipSIP', max_size=40),
    st.sampled_from(["SIP/2.0/UDP h;branch=z9hG4bKx", "<sip:a@b>;tag=1", "1 OPTIONS", "*",
                     "sip:a@[::1]:5060;lr", '"x\\"y" <tel:+1-2>', "0", "70", "c@d"]),
)


@FUZZ
@given(st.lists(st.tuples(_NAMES, _VALUES), max_size=12),
       st.sampled_from([b"OPTIONS sip:a@b SIP/2.0", b"SIP/2.0 200 OK", b"REGISTER sips:b SIP/2.0"]))
def test_header_soup_raises_only_sip_parse_error(headers: list[tuple[str, str]], start: bytes) -> None:
    head = b"\r\n".join([start, *(f"{n}: {v}".encode() for n, v in headers)])
    _try(head + b"\r\n\r\n")


@FUZZ
@given(st.sampled_from(VALID), st.lists(st.integers(1, 64), min_size=1, max_size=40),
       st.binary(max_size=64))
def test_stream_framer_raises_only_sip_parse_error(data: bytes, cuts: list[int], noise: bytes) -> None:
    framer = StreamFramer()
    stream = data + noise + data
    pos = 0
    try:
        for size in cuts * 100:
            if pos >= len(stream):
                break
            for frame in framer.feed(stream[pos : pos + size]):
                if frame != b"\r\n\r\n":
                    _try(frame)
            pos += size
    except SipParseError:
        pass


@FUZZ
@given(st.binary(max_size=300), st.sampled_from(["b", "x y", "--"]))
def test_multipart_raises_only_sip_parse_error(body: bytes, boundary: str) -> None:
    try:
        parse_multipart(f'multipart/mixed;boundary="{boundary}"', b"--b\r\n" + body)
    except SipParseError:
        pass


def _head(field: bytes) -> bytes:
    return TEMPLATE.replace(b"Content-Length: 0", field + b"\r\nContent-Length: 0")


HOSTILE = {
    "semicolons-in-via": TEMPLATE.replace(b"branch=z9hG4bK1", b"branch=z9hG4bK1" + b";" * 60000),
    "semicolons-in-from": TEMPLATE.replace(b";tag=1", b";tag=1" + b";a" * 30000),
    "quotes": _head(b"X-Q: " + b'"' * 60000),
    "quote-in-to": TEMPLATE.replace(b"To: <", b'To: "' + b'\\"' * 30000 + b" <"),
    "angles-in-contact": _head(b"Contact: " + b"<" * 60000),
    "angles-in-to": TEMPLATE.replace(b"To: <", b"To: " + b"<" * 60000),
    "commas-in-via": TEMPLATE.replace(b"branch=z9hG4bK1", b"branch=z9hG4bK1" + b"," * 60000),
    "percent-uri": TEMPLATE.replace(b"To: <sip:bob@", b"To: <sip:" + b"%4" * 15000 + b"@"),
    "tel-digits": TEMPLATE.replace(b"To: <sip:bob@example.org>", b"To: <tel:+" + b"1" * 60000 + b"x>"),
    "folding": _head(b"X-F: a" + b"\r\n " * 20000),
    "many-lines": _head(b"X-L: a\r\n" * 6000),
    "backslashes": _head(b'Contact: "' + b"\\" * 60000 + b'" <sip:a@b>'),
    "colons-userinfo": TEMPLATE.replace(b"To: <sip:bob@", b"To: <sip:" + b":" * 60000 + b"@"),
    "ipv6": TEMPLATE.replace(b"192.0.2.1", b"[" + b":" * 60000 + b"]"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_input_is_linear(name: str) -> None:
    data = HOSTILE[name]
    assert len(data) > 20000
    start = time.process_time()
    try:
        msg = parse_message(data)
        msg.check_structure()
        _ = msg.headers.get_all("X-Q"), msg.headers.get_all("Contact")
    except SipParseError:
        pass
    assert time.process_time() - start < 0.5  # a complexity guard, not a benchmark


def test_stream_framer_byte_by_byte_is_linear() -> None:
    data = _head(b"X-Pad: " + b"a" * 50000)
    framer = StreamFramer()
    start = time.process_time()
    frames = [f for i in range(len(data)) for f in framer.feed(data[i : i + 1])]
    assert time.process_time() - start < 1.0
    assert frames == [data]
