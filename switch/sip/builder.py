"""Building responses and requests (RFC 3261 sections 8.1.1 and 8.2.6)."""

from __future__ import annotations

from .headers import Headers, canonical_name
from .message import Request, Response
from .randomness import random_hex
from .status import reason_for
from .via import MAGIC_COOKIE

# Tags, branches and Call-IDs come from the OS CSPRNG (RFC 3261 19.3 wants at least 32
# random bits), drawn a block at a time (see randomness.py): 48, 64 and 96 bits.


def new_tag() -> str:
    return random_hex(12)


def new_branch() -> str:
    return MAGIC_COOKIE + random_hex(16)


def new_call_id(host: str = "") -> str:
    cid = random_hex(24)
    return f"{cid}@{host}" if host else cid


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: tuple[tuple[str, str], ...] | list[tuple[str, str]] = (),
    body: bytes = b"",
) -> Response:
    """A response to `request` per RFC 3261 8.2.6.2: Via, From, To, Call-ID, CSeq copied.

    `to_tag` is added to To unless it already has one; section 8.2.6.2 says a tag MUST be
    added to responses other than 100. The tag test uses the parsed To header, so a
    "tag=" inside a display name or a URI parameter does not fool it.
    """
    src = request.headers
    items: list[tuple[str, str]] = [("Via", v) for v in src.get_raw_key("via")]
    items.append(("From", src.get_key("from") or ""))
    to = src.get_key("to") or ""
    if to_tag is not None and status != 100 and request.to.tag is None:
        to = f"{to};tag={to_tag}"
    items.append(("To", to))
    items.append(("Call-ID", src.get_key("call-id") or ""))
    items.append(("CSeq", src.get_key("cseq") or ""))
    if status == 100:
        # section 8.2.6.1: Timestamp is copied into 100 Trying
        ts = src.get_key("timestamp")
        if ts is not None:
            items.append(("Timestamp", ts))
    if headers:
        items.extend((canonical_name(n), v) for n, v in headers)
    return Response(status, reason or reason_for(status), Headers(items, canonical=True), body)
