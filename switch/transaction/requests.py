"""Requests the transaction layer builds: the ACK for a non-2xx final response (RFC 3261
17.1.1.3) and, as a helper for the TU, a CANCEL (section 9.1)."""

from __future__ import annotations

from switch.sip import Headers, Request, Response


def _first_via(request: Request) -> str:
    """The top Via only, as text (the ACK and the CANCEL carry just this one)."""
    return str(request.top_via)


def build_ack(request: Request, response: Response) -> Request:
    """ACK for a 300-699 response to `request` (RFC 3261 17.1.1.3).

    Request-URI, Call-ID, From and the CSeq number are the INVITE's, the To header is the
    response's (it carries the tag), the Via is the INVITE's top Via only, and the INVITE's
    Route headers are copied. The ACK belongs to the INVITE's transaction and shares its branch.
    """
    h = request.headers
    items: list[tuple[str, str]] = [("Via", _first_via(request))]
    items.extend(("Route", v) for v in h.get_raw("Route"))
    items.append(("Max-Forwards", "70"))
    items.append(("From", h.get("From") or ""))
    items.append(("To", response.headers.get("To") or ""))
    items.append(("Call-ID", request.call_id))
    items.append(("CSeq", f"{request.cseq.seq} ACK"))
    return Request("ACK", request.uri, Headers(items, canonical=True))


def build_cancel(request: Request) -> Request:
    """CANCEL for a pending INVITE (RFC 3261 9.1).

    Request-URI, Call-ID, From, To and the CSeq number are the INVITE's; the single Via is the
    INVITE's top Via, so the CANCEL's branch is the INVITE's and the peer can match it (9.2);
    Route headers are copied. Send it with `TransactionLayer.send_request` to the same
    destination as the INVITE, only after a provisional response has arrived (9.1).
    """
    h = request.headers
    items: list[tuple[str, str]] = [("Via", _first_via(request))]
    items.extend(("Route", v) for v in h.get_raw("Route"))
    items.append(("Max-Forwards", "70"))
    items.append(("From", h.get("From") or ""))
    items.append(("To", h.get("To") or ""))
    items.append(("Call-ID", request.call_id))
    items.append(("CSeq", f"{request.cseq.seq} CANCEL"))
    return Request("CANCEL", request.uri, Headers(items, canonical=True))
