"""Client transactions (RFC 3261 17.1) with a fake clock: timers A, B, D, E, F, K (and M)."""

from __future__ import annotations

import pytest

from switch.sip import Request, parse_message
from switch.transaction import (
    ClientKey,
    InviteClientState,
    NonInviteClientState,
    ResponseReceived,
    StrayResponse,
    TransactionError,
    TransactionLayer,
    TransactionTerminated,
    TransactionTimeout,
    Transmit,
    TransportFailed,
)

from .helpers import SERVER, SERVER_TCP, T1, T2, T4, advance, drain, request, response, times_of


def start(method: str = "OPTIONS", dest=SERVER, **kw: object) -> tuple[TransactionLayer, ClientKey, Request]:
    layer = TransactionLayer(t1=T1, t2=T2, t4=T4)
    req = request(method, **kw)
    key = layer.send_request(req, dest, 0.0)
    events = drain(layer)
    assert len(events) == 1 and isinstance(events[0], Transmit)
    assert events[0].data == req.to_bytes() and events[0].dest == dest and events[0].key == key
    return layer, key, req


def test_timer_e_doubles_up_to_t2_and_timer_f_times_out() -> None:
    # 17.1.2.2: E at T1, then 2T1, 4T1... capped at T2; F = 64*T1
    layer, _key, req = start()
    timed = advance(layer, 100.0)
    sends = times_of(timed, Transmit)
    expected = [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert sends == expected
    assert times_of(timed, TransactionTimeout) == [64 * T1]
    assert times_of(timed, TransactionTerminated) == [64 * T1]
    first = next(e for _, e in timed if isinstance(e, Transmit))
    assert first.data == req.to_bytes()
    assert all(e.data is first.data for _, e in timed if isinstance(e, Transmit))  # same bytes
    assert len(layer) == 0 and layer.get_timer() is None


def test_timer_e_is_t2_in_proceeding() -> None:
    layer, key, req = start()
    advance(layer, 1.0)  # one retransmission at 0.5, next due at 1.5
    layer.receive(response(req, 100), SERVER, 1.0)
    assert [type(e) for e in drain(layer)] == [ResponseReceived]
    assert layer.state(key) is NonInviteClientState.PROCEEDING
    timed = advance(layer, 40.0)
    # the pending E still fires at 1.5, then every T2 until F at 32
    assert times_of(timed, Transmit) == [1.5, 5.5, 9.5, 13.5, 17.5, 21.5, 25.5, 29.5]
    assert times_of(timed, TransactionTimeout) == [32.0]


def test_timer_k_is_t4_on_udp_and_absorbs_retransmissions() -> None:
    layer, key, req = start()
    final = response(req, 200)
    layer.receive(final, SERVER, 0.2)
    assert drain(layer) == [ResponseReceived(key, final)]
    assert layer.state(key) is NonInviteClientState.COMPLETED
    layer.receive(final, SERVER, 0.3)  # retransmission absorbed
    layer.receive(response(req, 100), SERVER, 0.3)
    assert drain(layer) == []
    timed = advance(layer, 60.0)
    assert [type(e) for _, e in timed] == [TransactionTerminated]
    assert times_of(timed, TransactionTerminated) == [round(0.2 + T4, 6)]


def test_reliable_non_invite_has_no_e_and_k_is_zero() -> None:
    layer, _key, req = start(dest=SERVER_TCP, transport="TCP")
    assert layer.get_timer() == 64 * T1  # only F
    layer.receive(response(req, 404), SERVER_TCP, 1.0)
    assert [type(e) for e in drain(layer)] == [ResponseReceived, TransactionTerminated]
    assert len(layer) == 0


def test_reliable_non_invite_timer_f() -> None:
    layer, _key, _ = start(dest=SERVER_TCP, transport="TCP")
    timed = advance(layer, 100.0)
    assert [(t, type(e)) for t, e in timed] == [
        (32.0, TransactionTimeout), (32.0, TransactionTerminated)]


def test_timer_a_doubles_without_cap_and_timer_b_times_out() -> None:
    # 17.1.1.2: A = T1, 2T1, 4T1, ... (no T2 cap); B = 64*T1
    layer, _key, _req = start("INVITE")
    timed = advance(layer, 100.0)
    assert times_of(timed, Transmit) == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert times_of(timed, TransactionTimeout) == [32.0]
    assert len(layer) == 0


def test_provisional_stops_timer_a_and_b() -> None:
    layer, key, req = start("INVITE")
    layer.receive(response(req, 180), SERVER, 0.1)
    assert layer.state(key) is InviteClientState.PROCEEDING
    assert layer.get_timer() is None
    assert [type(e) for e in drain(layer)] == [ResponseReceived]


def test_ack_for_non_2xx_is_built_and_resent_and_timer_d_is_32s() -> None:
    layer, key, req = start("INVITE")
    busy = response(req, 486, to_tag="callee")
    layer.receive(busy, SERVER, 0.1)
    events = drain(layer)
    assert [type(e) for e in events] == [ResponseReceived, Transmit]
    ack_tx = events[1]
    assert isinstance(ack_tx, Transmit) and ack_tx.dest == SERVER
    ack = parse_message(ack_tx.data)
    assert isinstance(ack, Request) and ack.method == "ACK"
    # 17.1.1.3: same Request-URI, Call-ID, From, CSeq number, top Via; To from the response
    assert ack.uri == req.uri and ack.call_id == req.call_id
    assert ack.cseq.seq == req.cseq.seq and ack.cseq.method == "ACK"
    assert ack.vias == [req.top_via]
    assert ack.to.tag == "callee" and ack.from_ == req.from_
    assert ack.headers.get_raw("Route") == req.headers.get_raw("Route")
    # a retransmitted final response gets the same ACK bytes again, the TU sees nothing
    layer.receive(busy, SERVER, 1.0)
    again = drain(layer)
    assert again == [Transmit(ack_tx.data, SERVER, key)]
    assert again[0].data is ack_tx.data
    timed = advance(layer, 100.0)
    assert times_of(timed, TransactionTerminated) == [32.1]


def test_timer_d_is_zero_on_tcp() -> None:
    layer, _key, req = start("INVITE", dest=SERVER_TCP, transport="TCP")
    assert layer.get_timer() == 32.0  # B only, no A on a reliable transport
    layer.receive(response(req, 503), SERVER_TCP, 0.1)
    assert [type(e) for e in drain(layer)] == [ResponseReceived, Transmit, TransactionTerminated]


def test_2xx_enters_accepted_and_timer_m() -> None:
    # RFC 6026 7.2: 2xx retransmissions reach the TU for 64*T1
    layer, key, req = start("INVITE")
    ok = response(req, 200)
    layer.receive(ok, SERVER, 0.1)
    assert drain(layer) == [ResponseReceived(key, ok)]  # no ACK: that is the TU's (13.2.2.4)
    assert layer.state(key) is InviteClientState.ACCEPTED
    layer.receive(ok, SERVER, 0.6)
    assert drain(layer) == [ResponseReceived(key, ok)]
    timed = advance(layer, 100.0)
    assert times_of(timed, TransactionTerminated) == [32.1]
    layer.receive(ok, SERVER, 40.0)
    assert [type(e) for e in drain(layer)] == [StrayResponse]


def test_2xx_after_non_2xx_is_stray() -> None:
    layer, _key, req = start("INVITE")
    layer.receive(response(req, 486), SERVER, 0.1)
    drain(layer)
    layer.receive(response(req, 200, to_tag="other"), SERVER, 0.2)
    assert [type(e) for e in drain(layer)] == [StrayResponse]


@pytest.mark.parametrize("method", ["INVITE", "OPTIONS"])
def test_transport_error_terminates_client(method: str) -> None:
    layer, key, _ = start(method)
    layer.transport_error(key, 0.1)
    assert drain(layer) == [TransportFailed(key), TransactionTerminated(key)]
    assert len(layer) == 0 and layer.get_timer() is None
    layer.transport_error(key, 0.2)  # a late report for a gone transaction is ignored
    assert drain(layer) == []


def test_send_request_rejects_ack_bad_branch_and_duplicates() -> None:
    layer = TransactionLayer()
    with pytest.raises(TransactionError):
        layer.send_request(request("ACK"), SERVER, 0.0)
    with pytest.raises(TransactionError):
        layer.send_request(request(branch="1234"), SERVER, 0.0)
    layer.send_request(request(), SERVER, 0.0)
    with pytest.raises(TransactionError):
        layer.send_request(request(), SERVER, 0.0)
