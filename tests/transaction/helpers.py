"""Builders and a fake clock for the transaction tests."""

from __future__ import annotations

from switch.sip import Request, Response, make_response, parse_message
from switch.transaction import Peer, TransactionLayer, Transmit, TxnEvent

T1, T2, T4 = 0.5, 4.0, 5.0
UDP = Peer("UDP", "192.0.2.10", 5060)
TCP = Peer("TCP", "192.0.2.10", 40000, conn_id=7)
SERVER = Peer("UDP", "198.51.100.1", 5060)
SERVER_TCP = Peer("TCP", "198.51.100.1", 5060)


def request_bytes(
    method: str = "OPTIONS",
    *,
    branch: str | None = "z9hG4bK-1",
    transport: str = "UDP",
    via_host: str = "192.0.2.10",
    via_port: int | None = 5060,
    rport: bool = False,
    call_id: str = "call-1@192.0.2.10",
    cseq: int = 1,
    cseq_method: str | None = None,
    from_tag: str = "ft1",
    to_tag: str | None = None,
    uri: str = "sip:bob@198.51.100.1",
    extra_via: str | None = None,
) -> bytes:
    params = ""
    if branch is not None:
        params += f";branch={branch}"
    if rport:
        params += ";rport"
    hostport = via_host if via_port is None else f"{via_host}:{via_port}"
    to = "<sip:bob@198.51.100.1>" + (f";tag={to_tag}" if to_tag else "")
    lines = [
        f"{method} {uri} SIP/2.0",
        f"Via: SIP/2.0/{transport} {hostport}{params}",
    ]
    if extra_via:
        lines.append(f"Via: {extra_via}")
    lines += [
        "Max-Forwards: 70",
        "Route: <sip:proxy.example.net;lr>",
        f"From: <sip:alice@192.0.2.10>;tag={from_tag}",
        f"To: {to}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {cseq_method or method}",
        "Content-Length: 0",
        "",
        "",
    ]
    return "\r\n".join(lines).encode()


def request(method: str = "OPTIONS", **kw: object) -> Request:
    msg = parse_message(request_bytes(method, **kw))  # type: ignore[arg-type]
    assert isinstance(msg, Request)
    return msg


def response(req: Request, status: int, to_tag: str | None = "tt1") -> Response:
    """A response as the peer would send it, round-tripped through the parser."""
    msg = parse_message(make_response(req, status, to_tag=to_tag).to_bytes())
    assert isinstance(msg, Response)
    return msg


def drain(layer: TransactionLayer) -> list[TxnEvent]:
    out: list[TxnEvent] = []
    while (ev := layer.next_event()) is not None:
        out.append(ev)
    return out


def transmits(events: list[TxnEvent]) -> list[Transmit]:
    return [e for e in events if isinstance(e, Transmit)]


def advance(layer: TransactionLayer, until: float) -> list[tuple[float, TxnEvent]]:
    """Fake clock: fire every deadline up to `until`, each at its exact time."""
    out: list[tuple[float, TxnEvent]] = []
    while (deadline := layer.get_timer()) is not None and deadline <= until:
        layer.handle_timer(deadline)
        out.extend((deadline, e) for e in drain(layer))
    return out


def times_of(timed: list[tuple[float, TxnEvent]], kind: type) -> list[float]:
    return [round(t, 6) for t, e in timed if isinstance(e, kind)]
