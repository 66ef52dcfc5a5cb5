"""Matching (RFC 3261 17.1.3, 17.2.3, the RFC 2543 fallback) and CANCEL (section 9)."""

from __future__ import annotations

import logging

import pytest

from switch.sip import Request, make_response, parse_message
from switch.transaction import (
    CancelReceived,
    ClientKey,
    InviteServerState,
    RequestReceived,
    ResponseReceived,
    ServerKey,
    StrayResponse,
    TransactionLayer,
    Transmit,
    build_cancel,
)
from switch.transaction.base import TIMER_INPUT, Input
from switch.transaction.client import InviteClientTransaction, NonInviteClientTransaction
from switch.transaction.server import InviteServerTransaction, NonInviteServerTransaction

from .helpers import SERVER, UDP, drain, request, response


def received(layer: TransactionLayer) -> list[RequestReceived]:
    return [e for e in drain(layer) if isinstance(e, RequestReceived)]


def test_response_matches_by_branch_and_cseq_method() -> None:
    layer = TransactionLayer()
    invite = request("INVITE")
    ikey = layer.send_request(invite, SERVER, 0.0)
    layer.receive(response(invite, 180), SERVER, 0.1)
    cancel = build_cancel(invite)
    ckey = layer.send_request(cancel, SERVER, 0.2)
    assert ckey == ClientKey(ikey.branch, "CANCEL") != ikey
    drain(layer)
    ok = response(cancel, 200)
    layer.receive(ok, SERVER, 0.3)
    assert drain(layer) == [ResponseReceived(ckey, ok)]
    terminated = response(invite, 487)
    layer.receive(terminated, SERVER, 0.4)
    events = drain(layer)
    assert events[0] == ResponseReceived(ikey, terminated)
    assert isinstance(events[1], Transmit)  # the ACK (17.1.1.3)


def test_build_cancel_follows_9_1() -> None:
    invite = request("INVITE", cseq=7)
    cancel = build_cancel(invite)
    assert cancel.method == "CANCEL" and cancel.uri == invite.uri
    assert cancel.cseq.seq == 7 and cancel.cseq.method == "CANCEL"
    assert cancel.vias == [invite.top_via] and cancel.to == invite.to
    assert cancel.headers.get_raw("Route") == invite.headers.get_raw("Route")
    assert parse_message(cancel.to_bytes()) == cancel


def test_unmatched_responses_are_stray() -> None:
    layer = TransactionLayer()
    req = request(branch="z9hG4bK-nobody")
    layer.receive(response(req, 200), SERVER, 0.0)
    layer.receive(response(request(branch=None), 200), SERVER, 0.0)
    events = drain(layer)
    assert [type(e) for e in events] == [StrayResponse, StrayResponse]
    assert layer.stats["stray"] == 2


def test_same_branch_other_sent_by_is_another_transaction() -> None:
    layer = TransactionLayer()
    layer.receive(request(via_host="192.0.2.10"), UDP, 0.0)
    layer.receive(request(via_host="192.0.2.11"), UDP, 0.0)
    layer.receive(request("REGISTER"), UDP, 0.0)  # same branch, other method
    assert len(received(layer)) == 3 and len(layer) == 3


def test_sent_by_default_port_matches_explicit_5060() -> None:
    layer = TransactionLayer()
    layer.receive(request(via_port=None), UDP, 0.0)
    layer.receive(request(via_port=5060), UDP, 0.1)
    assert len(received(layer)) == 1


def test_ack_for_non_2xx_matches_the_invite_transaction() -> None:
    layer = TransactionLayer()
    layer.receive(request("INVITE"), UDP, 0.0)
    (ev,) = received(layer)
    assert ev.key is not None
    layer.respond(ev.key, make_response(ev.request, 603, to_tag="tt"), 0.1)
    drain(layer)
    layer.receive(request("ACK", cseq_method="ACK", to_tag="tt"), UDP, 0.2)
    assert drain(layer) == []
    assert layer.state(ev.key) is InviteServerState.CONFIRMED


def test_ack_matching_nothing_goes_to_the_tu_without_key() -> None:
    layer = TransactionLayer()
    ack = request("ACK", cseq_method="ACK", to_tag="tt", branch="z9hG4bK-2xx-ack")
    layer.receive(ack, UDP, 0.0)
    assert drain(layer) == [RequestReceived(None, ack, UDP)]
    assert len(layer) == 0


@pytest.mark.parametrize("branch", [None, "1234abc"])
def test_rfc2543_fallback_invite_retransmission_and_ack(branch: str | None) -> None:
    layer = TransactionLayer()
    invite = request("INVITE", branch=branch)
    layer.receive(invite, UDP, 0.0)
    events = drain(layer)
    (ev,) = [e for e in events if isinstance(e, RequestReceived)]
    assert ev.key is not None and ev.key.branch == ""
    layer.receive(invite, UDP, 0.3)  # retransmission: the 100 Trying again, no new request
    assert [type(e) for e in drain(layer)] == [Transmit]
    layer.receive(request("INVITE", branch=branch, cseq=2), UDP, 0.4)  # other CSeq: new
    assert len(received(layer)) == 1
    layer.respond(ev.key, make_response(ev.request, 486, to_tag="t2543"), 0.5)
    drain(layer)
    # the ACK carries the response's To tag (17.2.3, RFC 2543 rules)
    layer.receive(request("ACK", branch=branch, cseq_method="ACK", to_tag="t2543"), UDP, 0.6)
    assert drain(layer) == []
    assert layer.state(ev.key) is InviteServerState.CONFIRMED
    # an ACK with another To tag does not match
    other = request("ACK", branch=branch, cseq_method="ACK", to_tag="zzz")
    layer.receive(other, UDP, 0.7)
    assert drain(layer) == [RequestReceived(None, other, UDP)]


def test_rfc2543_aliases_go_with_the_transaction() -> None:
    layer = TransactionLayer(t1=0.5)
    layer.receive(request("INVITE", branch=None), UDP, 0.0)
    (ev,) = received(layer)
    assert ev.key is not None
    layer.respond(ev.key, make_response(ev.request, 486, to_tag="a"), 0.0)
    layer.transport_error(ev.key, 0.1)
    drain(layer)
    assert len(layer) == 0 and not layer._aliases


def invite_then_cancel(branch: str | None) -> tuple[TransactionLayer, ServerKey, Request]:
    layer = TransactionLayer()
    layer.receive(request("INVITE", branch=branch), UDP, 0.0)
    (ev,) = received(layer)
    assert ev.key is not None
    return layer, ev.key, ev.request


@pytest.mark.parametrize("branch", ["z9hG4bK-inv", None])
def test_cancel_matches_the_invite(branch: str | None) -> None:
    layer, ikey, invite = invite_then_cancel(branch)
    cancel = request("CANCEL", branch=branch)
    layer.receive(cancel, UDP, 1.0)
    events = drain(layer)
    assert [type(e) for e in events] == [CancelReceived, RequestReceived]
    cr, rr = events
    assert isinstance(cr, CancelReceived) and isinstance(rr, RequestReceived)
    assert cr.invite_key == ikey and cr.cancel_key == rr.key and rr.key is not None
    assert rr.key.method == "CANCEL" and layer.cancel_target(rr.key) == ikey
    # the TU answers: 200 to the CANCEL, 487 to the INVITE (9.2)
    layer.respond(rr.key, make_response(rr.request, 200, to_tag="tt"), 1.0)
    layer.respond(ikey, make_response(invite, 487, to_tag="tt"), 1.0)
    assert [type(e) for e in drain(layer)] == [Transmit, Transmit]
    assert layer.state(ikey) is InviteServerState.COMPLETED


def test_cancel_matching_nothing() -> None:
    layer, _ikey, _ = invite_then_cancel("z9hG4bK-inv")
    cancel = request("CANCEL", branch="z9hG4bK-other")
    layer.receive(cancel, UDP, 1.0)
    (rr,) = drain(layer)
    assert isinstance(rr, RequestReceived) and rr.key is not None
    assert layer.cancel_target(rr.key) is None  # the TU answers 481 (9.2)


def test_tables_are_complete_for_network_and_timer_inputs() -> None:
    machines = [
        (InviteClientTransaction, [Input.RESPONSE_1XX, Input.RESPONSE_2XX, Input.RESPONSE_ERROR]),
        (NonInviteClientTransaction, [Input.RESPONSE_1XX, Input.RESPONSE_2XX, Input.RESPONSE_ERROR]),
        (InviteServerTransaction, [Input.REQUEST, Input.ACK]),
        (NonInviteServerTransaction, [Input.REQUEST]),
    ]
    for cls, inputs in machines:
        states = {s for s, _ in cls.TABLE}
        assert cls.TERMINATED not in states
        for state in states:
            timers = set(cls.ENTRY.get(state, ())) | set(cls.KEEP.get(state, ()))
            needed = [*inputs, Input.TRANSPORT_ERROR, *(TIMER_INPUT[t] for t in timers)]
            for inp in needed:
                assert (state, inp) in cls.TABLE, (cls.MACHINE, state, inp)


def test_transitions_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="switch.transaction")
    layer = TransactionLayer()
    layer.receive(request(), UDP, 0.0)
    (ev,) = received(layer)
    assert ev.key is not None
    layer.respond(ev.key, make_response(ev.request, 200, to_tag="x"), 0.0)
    assert any("TRYING --TU 2xx / send response--> COMPLETED" in r.getMessage()
               for r in caplog.records)


def test_malformed_header_is_dropped_and_counted() -> None:
    layer = TransactionLayer()
    bad = request().replace(headers=request().headers.replace("Via", "SIP/2.0/UDP"))
    layer.receive(bad, UDP, 0.0)
    assert drain(layer) == [] and layer.stats["dropped"] == 1


def test_heap_stays_bounded_under_many_transactions() -> None:
    layer = TransactionLayer()
    now = 0.0
    for i in range(6000):
        req = request(branch=f"z9hG4bK-{i}", call_id=f"c{i}")
        key = layer.send_request(req, SERVER, now)
        layer.receive(response(req, 200), SERVER, now + 0.01)
        now += 0.0001
        drain(layer)
        assert key not in layer._servers
    # each completed transaction holds only Timer K; cancelled E/F entries were compacted
    assert len(layer) == 6000
    assert len(layer._heap) <= 2 * 6000 + 1024
    layer.handle_timer(now + 10)
    assert len(layer) == 0 and layer.get_timer() is None


def test_cancel_retransmission_is_absorbed_by_the_cancel_transaction() -> None:
    layer, _ikey, _ = invite_then_cancel("z9hG4bK-inv")
    cancel = request("CANCEL", branch="z9hG4bK-inv")
    layer.receive(cancel, UDP, 1.0)
    assert len(drain(layer)) == 2
    layer.receive(cancel, UDP, 1.2)
    assert drain(layer) == []  # Trying: absorbed, no second CancelReceived


def test_maddr_routes_the_response() -> None:
    # RFC 3261 18.2.2: maddr in the top Via (unreliable transport, no rport)
    layer = TransactionLayer()
    raw = request().to_bytes().replace(b";branch=z9hG4bK-1", b";maddr=239.1.1.1;branch=z9hG4bK-1")
    req = parse_message(raw)
    layer.receive(req, UDP, 0.0)
    (ev,) = received(layer)
    assert ev.key is not None
    layer.respond(ev.key, make_response(ev.request, 200, to_tag="x"), 0.0)
    (tx,) = drain(layer)
    assert isinstance(tx, Transmit) and (tx.dest.host, tx.dest.port) == ("239.1.1.1", 5060)


def test_request_is_released_after_the_final_response() -> None:
    layer = TransactionLayer()
    layer.receive(request(), UDP, 0.0)
    (ev,) = received(layer)
    assert ev.key is not None and layer.server_request(ev.key) is ev.request
    layer.respond(ev.key, make_response(ev.request, 200, to_tag="x"), 0.0)
    assert layer.server_request(ev.key) is None and len(layer) == 1


def test_a_completed_transaction_keeps_its_timers_out_of_the_gc() -> None:
    # issue 21: transactions held 32 s for Timer J are walked by every full collection; the
    # timers dict (letter -> deadline) holds no tracked object, so the GC skips it
    import gc

    layer = TransactionLayer()
    layer.receive(request("OPTIONS"), UDP, 0.0)
    (event,) = received(layer)
    assert event.key is not None
    layer.respond(event.key, make_response(event.request, 200), 0.0)
    txn = layer._servers[event.key]
    assert list(txn.timers) == ["J"] and not gc.is_tracked(txn.timers)
    layer.handle_timer(0.5 * 64)  # Timer J = 64*T1 on UDP (17.2.2)
    assert event.key not in layer._servers and layer.get_timer() is None
