"""RFC 3262 reliable provisional responses: RSeq, retransmission schedule, PRACK matching."""

from __future__ import annotations

import pytest

from switch.dialog.dialog import Dialog
from switch.dialog.prack import (
    PrackError,
    RAck,
    ReliableReceiver,
    ReliableSender,
    ReliableState,
    ReliableTimeout,
    Retransmit,
    build_prack,
    is_reliable,
    parse_rack,
    supports_100rel,
)
from switch.sip import Request, Response, SipError, Via, make_response, parse_message

INVITE = (
    "INVITE sip:bob@192.0.2.4 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bKinv1\r\n"
    "Max-Forwards: 70\r\n"
    "To: <sip:bob@192.0.2.4>\r\n"
    "From: <sip:switch@198.51.100.7>;tag=ourtag\r\n"
    "Call-ID: prack1\r\n"
    "CSeq: 7 INVITE\r\n"
    "Supported: 100rel, timer\r\n"
    "Contact: <sip:switch@198.51.100.7>\r\n\r\n"
)
VIA = Via("UDP", "198.51.100.7", 5060)


def invite() -> Request:
    msg = parse_message(INVITE.encode())
    assert isinstance(msg, Request)
    return msg


def ringing(inv: Request, status: int = 180) -> Response:
    return make_response(inv, status, to_tag="theirs", headers=[("Contact", "<sip:bob@192.0.2.4>")])


def test_parse_rack() -> None:
    assert parse_rack("776656 1 INVITE") == RAck(776656, 1, "INVITE")
    assert str(RAck(1, 7, "INVITE")) == "1 7 INVITE"
    for bad in ("1 INVITE", "x 1 INVITE", "1 2 3 4"):
        with pytest.raises(SipError):
            parse_rack(bad)


def test_sender_stamps_and_retransmits_on_doubling_schedule() -> None:
    inv = invite()
    assert supports_100rel(inv)
    s = ReliableSender(inv, initial_rseq=500, t1=0.5)
    r = s.send(ringing(inv), now=0.0)
    assert r.headers.get("RSeq") == "500" and "100rel" in r.headers.get_all("Require")
    assert is_reliable(r) and s.state is ReliableState.PENDING and not s.can_send
    times = []
    now = 0.0
    while True:
        due = s.get_timer()
        assert due is not None
        now = due
        ev = s.handle_timer(now)
        if isinstance(ev, ReliableTimeout):
            break
        assert isinstance(ev, Retransmit) and ev.response is r
        times.append(now)
    assert times == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert now == 32.0 and s.state is ReliableState.TIMED_OUT  # 64*T1


def test_prack_matching() -> None:
    inv = invite()
    s = ReliableSender(inv, initial_rseq=1)
    r = s.send(ringing(inv, 183), now=0.0)
    uac = Dialog.uac(inv, r)
    wrong = build_prack(uac, r, VIA)  # CSeq 8
    wrong = wrong.replace(headers=wrong.headers.replace("RAck", "2 7 INVITE"))
    with pytest.raises(PrackError) as err:
        s.receive_prack(wrong)
    assert err.value.status == 481
    prack = build_prack(uac, r, VIA)
    assert prack.headers.get("RAck") == "1 7 INVITE" and prack.cseq.seq == 9 and prack.cseq.method == "PRACK"
    assert prack.to.tag == "theirs"
    ok = s.receive_prack(prack)
    assert ok.status == 200 and ok.cseq.method == "PRACK"
    assert s.state is ReliableState.IDLE and s.get_timer() is None and s.handle_timer(100.0) is None
    with pytest.raises(PrackError) as err:
        s.receive_prack(prack)  # already acknowledged
    assert err.value.status == 481
    # the next reliable 1xx takes the next RSeq
    assert s.send(ringing(inv, 180), now=1.0).headers.get("RSeq") == "2"


def test_one_outstanding_at_a_time_and_prack_without_rack() -> None:
    inv = invite()
    s = ReliableSender(inv)
    s.send(ringing(inv), now=0.0)
    with pytest.raises(PrackError) as err:
        s.send(ringing(inv, 183), now=0.1)
    assert err.value.status == 500
    with pytest.raises(SipError) as err2:
        s.receive_prack(inv)
    assert err2.value.status == 400
    with pytest.raises(PrackError):
        ReliableSender(inv).send(make_response(inv, 200, to_tag="x"), now=0.0)


def test_receiver_ignores_duplicates_and_gaps() -> None:
    inv = invite()
    s = ReliableSender(inv, initial_rseq=41)
    first = s.send(ringing(inv, 183), now=0.0)
    rcv = ReliableReceiver()
    assert rcv.receive(first)
    assert not rcv.receive(first)  # retransmission: neither PRACKed nor processed
    gap = first.replace(headers=first.headers.replace("RSeq", "43"))
    assert not rcv.receive(gap)
    nxt = first.replace(headers=first.headers.replace("RSeq", "42"))
    assert rcv.receive(nxt) and rcv.last_rseq == 42
