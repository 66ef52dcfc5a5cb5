"""Server transactions (RFC 3261 17.2) with a fake clock: timers G, H, I, J (and L)."""

from __future__ import annotations

import pytest

from switch.sip import Request, Response, make_response, parse_message
from switch.transaction import (
    InviteServerState,
    NonInviteServerState,
    Peer,
    RequestReceived,
    ServerKey,
    TransactionLayer,
    TransactionTerminated,
    TransactionTimeout,
    TransitionError,
    Transmit,
    TransportFailed,
    UnknownTransaction,
)

from .helpers import T1, T2, T4, TCP, UDP, advance, drain, request, times_of


def new_server(method: str = "OPTIONS", peer: Peer = UDP, **kw: object
               ) -> tuple[TransactionLayer, ServerKey, Request, list[object]]:
    layer = TransactionLayer(t1=T1, t2=T2, t4=T4)
    req = request(method, **kw)
    layer.receive(req, peer, 0.0)
    events = drain(layer)
    received = [e for e in events if isinstance(e, RequestReceived)]
    assert len(received) == 1 and received[0].key is not None
    return layer, received[0].key, received[0].request, list(events)


def test_invite_gets_100_trying_once_the_tu_had_it() -> None:
    layer, key, req, events = new_server("INVITE")
    assert isinstance(events[0], RequestReceived)  # the TU's turn comes first (17.2.1)
    assert isinstance(events[1], Transmit) and events[1].dest == UDP and len(events) == 2
    trying = parse_message(events[1].data)
    assert isinstance(trying, Response) and trying.status == 100
    assert trying.call_id == req.call_id and trying.to.tag is None
    assert layer.state(key) is InviteServerState.PROCEEDING
    assert layer.get_timer() is None  # no timer in Proceeding


def test_invite_answered_in_the_tus_turn_gets_no_100_trying() -> None:
    # a challenge (or any response) while the TU handles the request: 17.2.1 needs no 100
    for status in (407, 180):
        layer = TransactionLayer(t1=T1, t2=T2, t4=T4)
        layer.receive(request("INVITE"), UDP, 0.0)
        ev = layer.next_event()
        assert isinstance(ev, RequestReceived) and ev.key is not None
        layer.respond(ev.key, make_response(ev.request, status, to_tag="tt"), 0.0)
        sent = [parse_message(e.data) for e in drain(layer) if isinstance(e, Transmit)]
        assert [r.status for r in sent if isinstance(r, Response)] == [status]


def test_invite_retransmission_resends_last_provisional() -> None:
    layer, key, req, events = new_server("INVITE")
    layer.receive(req, UDP, 0.4)
    again = drain(layer)
    assert len(again) == 1 and isinstance(again[0], Transmit) and isinstance(events[1], Transmit)
    assert again[0].data is events[1].data
    ringing = make_response(req, 180, to_tag="tt")
    layer.respond(key, ringing, 0.5)
    tx = drain(layer)
    layer.receive(req, UDP, 0.6)
    assert drain(layer) == tx  # now the 180 is the last provisional


def test_timer_g_doubles_to_t2_and_timer_h_times_out() -> None:
    layer, key, req, _ = new_server("INVITE")
    layer.respond(key, make_response(req, 486, to_tag="tt"), 0.0)
    first = drain(layer)
    assert layer.state(key) is InviteServerState.COMPLETED
    timed = advance(layer, 100.0)
    # G: T1, 2T1, 4T1, then T2 (17.2.1); H = 64*T1
    assert times_of(timed, Transmit) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert all(e.data is first[0].data for _, e in timed if isinstance(e, Transmit) and isinstance(first[0], Transmit))
    assert times_of(timed, TransactionTimeout) == [32.0]
    assert times_of(timed, TransactionTerminated) == [32.0]
    assert len(layer) == 0


def test_ack_moves_to_confirmed_and_timer_i_is_t4() -> None:
    layer, key, req, _ = new_server("INVITE")
    final = make_response(req, 404, to_tag="tt")
    layer.respond(key, final, 0.0)
    drain(layer)
    ack = request("ACK", cseq_method="ACK", to_tag="tt")
    layer.receive(ack, UDP, 0.7)
    assert drain(layer) == []  # absorbed, 17.2.1
    assert layer.state(key) is InviteServerState.CONFIRMED
    layer.receive(ack, UDP, 0.8)
    layer.receive(req, UDP, 0.9)
    assert drain(layer) == []  # both absorbed in Confirmed
    timed = advance(layer, 100.0)
    assert [type(e) for _, e in timed] == [TransactionTerminated]  # G and H stopped
    assert times_of(timed, TransactionTerminated) == [round(0.7 + T4, 6)]


def test_timer_i_is_zero_and_no_g_on_tcp() -> None:
    layer, key, req, _ = new_server("INVITE", TCP, transport="TCP", via_port=40000)
    layer.respond(key, make_response(req, 404, to_tag="tt"), 0.0)
    tx = drain(layer)
    assert isinstance(tx[0], Transmit) and tx[0].dest == TCP  # conn_id reused (18.2.2)
    assert layer.get_timer() == 32.0  # H only
    layer.receive(request("ACK", cseq_method="ACK", to_tag="tt", transport="TCP", via_port=40000), TCP, 1.0)
    assert [type(e) for e in drain(layer)] == [TransactionTerminated]


def test_2xx_enters_accepted_absorbs_invites_and_timer_l() -> None:
    # RFC 6026 7.1: INVITE retransmissions after a 2xx are absorbed, the TU retransmits 2xx
    layer, key, req, _ = new_server("INVITE")
    ok = make_response(req, 200, to_tag="tt")
    layer.respond(key, ok, 0.0)
    assert len(drain(layer)) == 1
    assert layer.state(key) is InviteServerState.ACCEPTED
    assert layer._servers[key].last is None  # never resent from here: not kept for 32 s
    layer.receive(req, UDP, 0.5)
    assert drain(layer) == []
    layer.respond(key, ok, 1.0)  # the TU's own 2xx retransmission (13.3.1.4)
    assert [type(e) for e in drain(layer)] == [Transmit]
    assert layer._servers[key].last is None
    ack2xx = request("ACK", cseq_method="ACK", to_tag="tt", branch="z9hG4bK-ack")
    layer.receive(ack2xx, UDP, 1.1)
    assert drain(layer) == [RequestReceived(None, ack2xx, UDP)]  # new branch: no match
    timed = advance(layer, 100.0)
    assert times_of(timed, TransactionTerminated) == [32.0]


def test_non_invite_timer_j_is_64t1_on_udp_and_absorbs() -> None:
    layer, key, req, _ = new_server()
    layer.receive(req, UDP, 0.1)
    assert drain(layer) == []  # Trying: absorbed without an answer
    layer.respond(key, make_response(req, 100), 0.2)
    trying = drain(layer)
    layer.receive(req, UDP, 0.3)
    assert drain(layer) == trying  # Proceeding: last provisional again
    layer.respond(key, make_response(req, 200, to_tag="x"), 1.0)
    final = drain(layer)
    assert layer.state(key) is NonInviteServerState.COMPLETED
    layer.receive(req, UDP, 2.0)
    again = drain(layer)
    assert again == final and isinstance(again[0], Transmit) and isinstance(final[0], Transmit)
    assert again[0].data is final[0].data
    timed = advance(layer, 100.0)
    assert [(t, type(e)) for t, e in timed] == [(1.0 + 64 * T1, TransactionTerminated)]


def test_non_invite_timer_j_is_zero_on_tcp() -> None:
    layer, key, req, _ = new_server(peer=TCP, transport="TCP")
    layer.respond(key, make_response(req, 200, to_tag="x"), 0.0)
    assert [type(e) for e in drain(layer)] == [Transmit, TransactionTerminated]
    assert len(layer) == 0


def test_second_final_response_is_a_transition_error() -> None:
    layer, key, req, _ = new_server()
    layer.respond(key, make_response(req, 200, to_tag="x"), 0.0)
    with pytest.raises(TransitionError) as info:
        layer.respond(key, make_response(req, 500, to_tag="x"), 0.1)
    assert info.value.state is NonInviteServerState.COMPLETED
    layer2, key2, req2, _ = new_server("INVITE")
    layer2.respond(key2, make_response(req2, 486, to_tag="x"), 0.0)
    with pytest.raises(TransitionError):
        layer2.respond(key2, make_response(req2, 180, to_tag="x"), 0.1)


def test_respond_to_unknown_transaction() -> None:
    layer = TransactionLayer()
    with pytest.raises(UnknownTransaction):
        layer.respond(ServerKey("z9hG4bKx", "h:5060", "OPTIONS"), make_response(request(), 200), 0.0)


@pytest.mark.parametrize("method", ["INVITE", "OPTIONS"])
def test_transport_error_terminates_server(method: str) -> None:
    layer, key, _req, _ = new_server(method)
    layer.transport_error(key, 0.1)
    assert drain(layer) == [TransportFailed(key), TransactionTerminated(key)]
    assert len(layer) == 0


def test_received_and_rport_are_stamped_and_used_for_the_response() -> None:
    # RFC 3581: behind a NAT the request comes from another address and port
    nat = Peer("UDP", "203.0.113.7", 61000)
    layer, key, req, _ = new_server(peer=nat, rport=True, via_host="10.1.1.2")
    via = req.top_via
    assert via.received == "203.0.113.7" and via.rport == 61000
    layer.respond(key, make_response(req, 200, to_tag="x"), 0.0)
    tx = drain(layer)[0]
    assert isinstance(tx, Transmit) and tx.dest == nat
    sent = parse_message(tx.data)
    assert sent.top_via.received == "203.0.113.7" and sent.top_via.rport == 61000


def test_without_rport_the_response_goes_to_received_and_via_port() -> None:
    # RFC 3261 18.2.1 / 18.2.2
    src = Peer("UDP", "203.0.113.7", 61000)
    layer, key, req, _ = new_server(peer=src, via_host="pc.example.com", via_port=5070,
                                    extra_via="SIP/2.0/UDP 10.9.9.9;branch=z9hG4bKold")
    assert req.top_via.received == "203.0.113.7" and req.top_via.rport is None
    assert len(req.vias) == 2 and req.vias[1].host == "10.9.9.9"
    layer.respond(key, make_response(req, 200, to_tag="x"), 0.0)
    tx = drain(layer)[0]
    assert isinstance(tx, Transmit) and tx.dest == Peer("UDP", "203.0.113.7", 5070)


def test_no_stamp_when_sent_by_is_the_source() -> None:
    _layer, _key, req, _ = new_server()
    assert req.top_via.received is None
