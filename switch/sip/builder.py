"""Building responses and requests (RFC 3261 sections 8.1.1 and 8.2.6)."""

from __future__ import annotations

import secrets

from .headers import Headers
from .message import Request, Response
from .status import reason_for
from .via import MAGIC_COOKIE

_COPIED = ("Via", "From", "To", "Call-ID", "CSeq")


def new_tag() -> str:
    return secrets.token_hex(6)


def new_branch() -> str:
    return MAGIC_COOKIE + secrets.token_hex(8)


def new_call_id(host: str = "") -> str:
    cid = secrets.token_hex(12)
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
    added to responses other than 100.
    """
    items: list[tuple[str, str]] = []
    src = request.headers
    for name in _COPIED:
        for value in src.get_raw(name):
            if name == "To" and to_tag is not None and status != 100 and ";tag=" not in value.replace(" ", "").lower():
                value = f"{value};tag={to_tag}"
            items.append((name, value))
    if status == 100:
        # section 8.2.6.1: Timestamp is copied into 100 Trying
        ts = src.get("Timestamp")
        if ts is not None:
            items.append(("Timestamp", ts))
    items.extend(headers)
    return Response(status, reason or reason_for(status), Headers(items), body)
