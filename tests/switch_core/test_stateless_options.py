"""The stateless OPTIONS answer (issue 21; RFC 3261 8.2.7 and 11, RFC 3581): the same bytes
as the full path through a server transaction, the same answer for a retransmission, and
every request it is not sure of left to the full path."""

from __future__ import annotations

import pytest

from switch.core_handlers import SUPPORTED, SUPPORTED_EXTENSIONS, OptionsHandler
from switch.runtime import SipRuntime
from switch.sip import Request, Response, make_response, parse_message
from switch.stateless_options import (
    ACCEPT,
    ACCEPT_ENCODING,
    ACCEPT_LANGUAGE,
    StatelessOptions,
    options_tag,
)
from switch.transaction import Peer, reply_peer, stamp_received

SECRET = b"k" * 32
ALLOW = "CANCEL, INVITE, OPTIONS"
SOURCE = Peer("UDP", "192.0.2.7", 40123)


def request(*, via: str = "Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bKabc;rport\r\n",
            uri: str = "sip:wte.example.com", to: str = "<sip:wte.example.com>",
            extra: str = "", body: str = "", call_id: str = "cid-1@10.0.0.1",
            max_forwards: str = "70", frm: str = "\"Ann\" <sip:ann@example.com>;tag=f1") -> bytes:
    return (f"OPTIONS {uri} SIP/2.0\r\n{via}Max-Forwards: {max_forwards}\r\n"
            f"From: {frm}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: 7 OPTIONS\r\n"
            f"{extra}Content-Length: {len(body)}\r\n\r\n{body}").encode()


def status(data: bytes) -> int:
    msg = parse_message(data)
    assert isinstance(msg, Response)
    return msg.status


def parsed(data: bytes) -> Request:
    msg = parse_message(data)
    assert isinstance(msg, Request)
    return msg


def full_path(data: bytes, source: Peer) -> tuple[bytes, Peer]:
    """What the transaction layer and handle_options send: stamp_received, then the 200."""
    req = parsed(data)
    stamped = stamp_received(req, req.top_via, source)
    response = make_response(stamped, 200, to_tag=options_tag(SECRET, req), headers=(
        ("Allow", ALLOW), ("Accept", ACCEPT), ("Accept-Encoding", ACCEPT_ENCODING),
        ("Accept-Language", ACCEPT_LANGUAGE), ("Supported", SUPPORTED)))
    return response.to_bytes(), reply_peer(stamped.top_via, source)


def fast(data: bytes, source: Peer = SOURCE) -> tuple[bytes, Peer] | None:
    return StatelessOptions(SECRET).answer(parsed(data), source, ALLOW, SUPPORTED_EXTENSIONS)


@pytest.mark.parametrize("data", [
    request(),
    # no rport, sent-by differs from the source: received only, answered to sent-by's port
    request(via="Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bKabc\r\n"),
    # already stamped as we would: nothing rewritten
    request(via="Via: SIP/2.0/UDP 192.0.2.7:40123;branch=z9hG4bKabc\r\n"),
    # two Vias on one line and a third on its own line (a proxy on the way)
    request(via="Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bKp1;rport, "
                "SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bKabc\r\n"
                "Via: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKzz\r\n"),
    # compact forms (RFC 3261 7.3.3) and an RFC 2543 branch-less Via
    b"OPTIONS sip:wte.example.com SIP/2.0\r\nv: SIP/2.0/UDP 10.0.0.1\r\n"
    b"f: <sip:ann@example.com>;tag=f1\r\nt: <sip:wte.example.com>\r\ni: abc\r\n"
    b"CSeq: 1 OPTIONS\r\nl: 0\r\n\r\n",
    # a user part, maddr on the Via, an Accept header of the client's own
    request(uri="sip:501410@wte.example.com;transport=udp",
            via="Via: SIP/2.0/UDP 10.0.0.1:5070;maddr=10.0.0.2;branch=z9hG4bKm\r\n",
            extra="Accept: application/sdp\r\n"),
    # rport already filled as we would; a leading zero; an empty received; two rports
    request(via="Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bKabc;rport=40123;"
                "received=192.0.2.7\r\n"),
    request(via="Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bKabc;rport=040123;"
                "received=192.0.2.7\r\n"),
    request(via="Via: SIP/2.0/UDP 10.0.0.1:5062;received;branch=z9hG4bKabc\r\n"),
    request(via="Via: SIP/2.0/UDP 10.0.0.1:5062;rport=1;rport;branch=z9hG4bKabc\r\n"),
], ids=["rport", "received", "stamped", "proxied", "compact-rfc2543", "maddr",
        "rport-filled", "rport-leading-zero", "received-empty", "rport-twice"])
def test_same_bytes_and_destination_as_the_full_path(data: bytes) -> None:
    out = fast(data)
    assert out is not None
    assert out == full_path(data, SOURCE)
    response = parse_message(out[0])
    assert response.to.tag  # 8.2.6.2: a tag on every final response


def test_rport_is_filled_and_the_answer_goes_to_the_source() -> None:
    out = fast(request())
    assert out is not None
    via = parse_message(out[0]).top_via
    assert (via.received, via.rport) == ("192.0.2.7", 40123)  # RFC 3581 section 4
    assert out[1] == SOURCE


def test_a_retransmission_gets_the_same_answer_a_new_request_another_tag() -> None:
    responder = StatelessOptions(SECRET)
    first = responder.answer(parsed(request()), SOURCE, ALLOW, SUPPORTED_EXTENSIONS)
    again = responder.answer(parsed(request()), SOURCE, ALLOW, SUPPORTED_EXTENSIONS)
    assert first is not None and first == again  # 8.2.7
    other = responder.answer(parsed(request(
        via="Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bKother;rport\r\n")),
        SOURCE, ALLOW, SUPPORTED_EXTENSIONS)
    assert other is not None
    assert parse_message(other[0]).to.tag != parse_message(first[0]).to.tag
    # another process (another secret) does not give the same tag
    stranger = StatelessOptions(b"x" * 32).answer(parsed(request()), SOURCE, ALLOW,
                                                  SUPPORTED_EXTENSIONS)
    assert stranger is not None
    assert parse_message(stranger[0]).to.tag != parse_message(first[0]).to.tag


def test_allow_follows_the_handlers() -> None:
    responder = StatelessOptions(SECRET)
    out = responder.answer(parsed(request()), SOURCE, "OPTIONS", SUPPORTED_EXTENSIONS)
    later = responder.answer(parsed(request()), SOURCE, "BYE, OPTIONS", SUPPORTED_EXTENSIONS)
    assert out is not None and later is not None
    assert parse_message(out[0]).headers.get("Allow") == "OPTIONS"
    assert parse_message(later[0]).headers.get("Allow") == "BYE, OPTIONS"


@pytest.mark.parametrize(("data", "source"), [
    (request(to="<sip:wte.example.com>;tag=dlg1"), SOURCE),  # in a dialog
    (request(extra="Require: 100rel\r\n"), SOURCE),  # 420 on the full path (8.2.2.3)
    (request(extra="Require: path\r\n"), SOURCE),
    (request(extra="Proxy-Require: foo\r\n"), SOURCE),
    (request(extra="Route: <sip:p1.example.com;lr>\r\n"), SOURCE),
    (request(max_forwards="0"), SOURCE),  # 16.3: the full path decides, as before
    (request(uri="tel:+33562070410"), SOURCE),
    (request(body="v=0\r\n", extra="Content-Type: application/sdp\r\n"), SOURCE),
    (request(), Peer("TCP", "192.0.2.7", 40123, conn_id=3)),
], ids=["to-tag", "require", "require-supported", "proxy-require", "route",
        "max-forwards-0", "tel-uri", "body", "tcp"])
def test_what_it_is_not_sure_of_takes_the_full_path(data: bytes, source: Peer) -> None:
    responder = StatelessOptions(SECRET)
    assert responder.answer(parsed(data), source, ALLOW, SUPPORTED_EXTENSIONS) is None
    assert (responder.answered, responder.declined) == (0, 1)


class Sent:
    """Stands for the UDP listener: keeps what the runtime sends."""

    def __init__(self) -> None:
        self.out: list[tuple[bytes, str, int]] = []

    def send(self, data: bytes, host: str, port: int) -> None:
        self.out.append((data, host, port))


def via(branch: str) -> str:
    return f"Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK{branch};rport\r\n"


def runtime_with_options() -> tuple[SipRuntime, OptionsHandler, Sent]:
    runtime = SipRuntime()
    handler = OptionsHandler(SECRET)
    runtime.register_handler("OPTIONS", handler)
    sent = Sent()
    runtime.udp = sent  # type: ignore[assignment]
    return runtime, handler, sent


async def test_the_runtime_answers_without_a_transaction() -> None:
    runtime, handler, sent = runtime_with_options()
    data = request()
    runtime.deliver(data, SOURCE)
    runtime.deliver(data, SOURCE)  # a retransmission
    assert handler.responder.answered == 2
    assert not runtime.txn.matches(parsed(data))  # no server transaction (8.2.7)
    assert runtime.txn.get_timer() is None  # no Timer J kept for it
    assert len(sent.out) == 2 and sent.out[0] == sent.out[1]
    assert sent.out[0][0] == full_path(data, SOURCE)[0].replace(
        f"Allow: {ALLOW}".encode(), f"Allow: {runtime.allow}".encode())
    assert sent.out[0][1:] == (SOURCE.host, SOURCE.port)
    c = runtime.counters
    assert (c.messages_in, c.messages_out, c.requests["OPTIONS"], c.responses_sent[200]) == \
        (2, 2, 2, 2)


async def test_the_runtime_full_path_answers_what_the_fast_path_declines() -> None:
    runtime, handler, sent = runtime_with_options()
    runtime.deliver(request(extra="Require: foo, path\r\n", via=via("r1")), SOURCE)
    answer = parse_message(sent.out[-1][0])
    assert isinstance(answer, Response)
    assert answer.status == 420 and answer.headers.get("Unsupported") == "foo"
    runtime.deliver(request(max_forwards="0", via=via("mf0")), SOURCE)
    assert status(sent.out[-1][0]) == 200  # through a transaction
    assert runtime.txn.matches(parsed(request(max_forwards="0", via=via("mf0"))))
    # a malformed message still gets its 400 (RFC 3261 8.2)
    for bad in (request(via="Via: SIP/2.0/UDP\r\n"), request(frm="<sip:ann@example.com"),
                request(max_forwards="abc")):
        before = len(sent.out)
        runtime.deliver(bad, SOURCE)
        assert len(sent.out) == before + 1
        assert sent.out[-1][0].startswith(b"SIP/2.0 400 ")
    # an in-dialog OPTIONS keeps its To tag
    runtime.deliver(request(to="<sip:wte.example.com>;tag=dlg1", via=via("dlg")), SOURCE)
    assert status(sent.out[-1][0]) == 200
    assert parse_message(sent.out[-1][0]).to.tag == "dlg1"
    assert handler.responder.answered == 0


async def test_a_draining_switch_answers_503_through_the_full_path() -> None:
    runtime, handler, sent = runtime_with_options()
    runtime.draining = True
    runtime.deliver(request(), SOURCE)
    answer = parse_message(sent.out[-1][0])
    assert status(sent.out[-1][0]) == 503 and answer.headers.get("Retry-After")
    assert handler.responder.answered == 0


async def test_only_a_handler_whose_class_answers_statelessly_gets_the_early_hook() -> None:
    from unittest.mock import MagicMock

    runtime = SipRuntime()
    runtime.register_handler("MESSAGE", MagicMock())  # answers every attribute
    assert "MESSAGE" not in runtime.stateless_handlers
    runtime.register_handler("OPTIONS", OptionsHandler(SECRET))
    assert "OPTIONS" in runtime.stateless_handlers
