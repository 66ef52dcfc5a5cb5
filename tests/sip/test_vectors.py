"""Wire-byte vectors: valid ones round-trip, invalid ones fail with their status."""

from __future__ import annotations

from pathlib import Path

import pytest

from switch.sip import Request, Response, SipParseError, parse_message, parse_multipart
from switch.sip.message import Message

from .vectors import expected_status, invalid_paths, parse_fully, valid_paths


def _id(path: Path) -> str:
    return path.name


def _views(msg: Message) -> tuple[object, ...]:
    return (msg.vias, msg.call_id, msg.cseq, msg.from_, msg.to, msg.contacts,
            msg.expires, msg.max_forwards, msg.content_type)


def test_vector_files_use_crlf() -> None:
    for path in valid_paths() + invalid_paths():
        data = path.read_bytes()
        head = data.split(b"\r\n\r\n", 1)[0]
        if path.stem not in ("nul.400", "straycr.400", "garbage.400"):
            assert b"\n" not in head.replace(b"\r\n", b""), path.name
    assert len(valid_paths()) >= 25 and len(invalid_paths()) >= 40


@pytest.mark.parametrize("path", valid_paths(), ids=_id)
def test_valid_vector_round_trips(path: Path) -> None:
    msg = parse_fully(path.read_bytes())
    again = parse_fully(msg.to_bytes())
    assert again == msg
    assert _views(again) == _views(msg)
    # serialising twice gives the same bytes: the first pass normalised everything
    assert again.to_bytes() == msg.to_bytes()


@pytest.mark.parametrize("path", invalid_paths(), ids=_id)
def test_invalid_vector_fails_with_status(path: Path) -> None:
    with pytest.raises(SipParseError) as info:
        parse_fully(path.read_bytes())
    assert info.value.status == expected_status(path), str(info.value)


def _load(name: str) -> Request | Response:
    return parse_message((valid_paths()[0].parent / f"{name}.sip").read_bytes())


def test_wsinv_details() -> None:
    msg = _load("wsinv")
    assert isinstance(msg, Request) and msg.method == "INVITE"
    assert msg.max_forwards == 68 and msg.cseq.seq == 9 and msg.cseq.method == "INVITE"
    assert msg.to.tag == "1918181833n"
    assert msg.from_.display == 'J Rosenberg \\"' and msg.from_.tag == "98asjd8"
    assert [v.transport for v in msg.vias] == ["UDP", "TCP", "UDP"]
    assert msg.vias[2].branch == "z9hG4bK30239" and msg.vias[1].host == "spindle.example.com"
    assert msg.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert msg.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    assert msg.headers.get("Subject") == ""
    contacts = msg.contacts
    assert isinstance(contacts, list)
    assert contacts[0].display == 'Quoted string ""'
    assert contacts[0].params == (("newparam", "newvalue"), ("secondparam", None), ("q", "0.33"))
    assert msg.body.startswith(b"v=0\r\n") and len(msg.body) == int(msg.headers.get("Content-Length") or 0)


def test_intmeth_details() -> None:
    msg = _load("intmeth")
    assert isinstance(msg, Request)
    assert msg.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert msg.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"  # type: ignore[union-attr]
    assert msg.uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"  # type: ignore[union-attr]
    assert msg.to.display == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert msg.from_.display == "token1~` token2'+_ token3*%!.-"
    assert msg.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert msg.headers.get("extensionheader-!.%*+_`'~") == "\ufeff\u5927\u505c\u96fb"


def test_escapes_and_semicolon_user() -> None:
    esc = _load("esc01")
    assert esc.uri.user_unescaped == "sips:user@example.com"  # type: ignore[union-attr]
    assert esc.to.uri.user_unescaped == "user"  # type: ignore[union-attr]
    assert esc.from_.uri.user_unescaped == "I have spaces"  # type: ignore[union-attr]
    null = _load("escnull")
    assert null.to.uri.user_unescaped == "null-\x00-null"  # type: ignore[union-attr]
    semi = _load("semiuri")
    assert semi.uri.user == "user;par=u%40example.net" and semi.uri.host == "example.com"  # type: ignore[union-attr]
    assert semi.headers.get_all("Accept")[-1] == "message/sipfrag"
    esc2 = _load("esc02")
    assert isinstance(esc2, Request) and esc2.method == "RE%47IST%45R"
    assert len(esc2.contacts) == 2  # type: ignore[arg-type]  # "C%6Fntact" is another header


def test_dblreq_keeps_only_the_first_message() -> None:
    msg = _load("dblreq")
    assert isinstance(msg, Request) and msg.method == "REGISTER" and msg.body == b""


def test_responses_reason_phrases() -> None:
    unreason = _load("unreason")
    assert isinstance(unreason, Response) and unreason.status == 200
    assert unreason.reason.endswith("\u043f\u0440\u043e\u0441\u0442\u043e\u0435")
    noreason = _load("noreason")
    assert isinstance(noreason, Response) and noreason.reason == ""
    assert noreason.to_bytes().startswith(b"SIP/2.0 100 \r\n")


def test_multipart_emergency_invite() -> None:
    msg = _load("mpart01")
    assert isinstance(msg, Request) and str(msg.uri) == "urn:service:sos"
    assert msg.content_type == "multipart/mixed"
    parts = parse_multipart(msg.headers.get("Content-Type") or "", msg.body)
    assert [p.content_type for p in parts] == [
        "application/sdp", "application/pidf+xml", "application/octet-stream"]
    assert parts[1].header("content-id") == "<loc1@example.com>"
    assert parts[2].body == bytes(range(256))


def test_unknown_schemes_in_headers_are_kept() -> None:
    msg = _load("unksm2")
    assert str(msg.to.uri) == "isbn:2983792873"
    assert str(msg.contacts[0].uri) == "name:John_Smith"  # type: ignore[index]
    reg = _load("regescrt")
    assert reg.contacts[0].uri.headers == "Route=%3Csip:sip.example.com%3E"  # type: ignore[index,union-attr]


def test_compact_forms_are_canonical() -> None:
    msg = _load("compact")
    names = [n for n, _ in msg.headers.items()]
    assert names[:6] == ["Via", "From", "To", "Call-ID", "CSeq", "Contact"]
    for name in ("Event", "Allow-Events", "Supported", "Subject", "Session-Expires", "Refer-To",
                 "Referred-By", "Accept-Contact", "Reject-Contact", "Request-Disposition",
                 "Identity", "Content-Encoding", "Content-Type", "Content-Length"):
        assert name in names, name
    assert msg.body == b"hello\r\n"


def test_udp_without_content_length_takes_the_rest() -> None:
    msg = _load("udp_no_cl")
    assert msg.body == "bonjour \u00e0 tous".encode()


def test_contact_star() -> None:
    msg = _load("unregall")
    assert str(msg.contacts) == "*" and msg.expires == 0
