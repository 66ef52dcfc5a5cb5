"""Building responses and requests (RFC 3261 sections 8.1.1 and 8.2.6)."""

from __future__ import annotations

from .headers import Headers, Positions, at, name_and_key
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
    index = src._index
    values = src._items
    # The index is built as the items are: the names are canonical and their keys known,
    # which spares Headers.__init__ a cache lookup per header (hot: every request answered).
    vias = [values[i][1] for i in index.get("via", ())]
    items: list[tuple[str, str]] = [("Via", v) for v in vias]
    out_index: dict[str, Positions] = {"via": tuple(range(len(items)))} if items else {}

    def first(key: str) -> str:
        positions = index.get(key)
        return values[positions[0]][1] if positions else ""

    to = first("to")
    if to_tag is not None and status != 100 and request.to.tag is None:
        to = f"{to};tag={to_tag}"
    n = len(items)
    items += (("From", first("from")), ("To", to), ("Call-ID", first("call-id")),
              ("CSeq", first("cseq")))
    out_index["from"] = at(n)
    out_index["to"] = at(n + 1)
    out_index["call-id"] = at(n + 2)
    out_index["cseq"] = at(n + 3)
    if status == 100:
        # section 8.2.6.1: Timestamp is copied into 100 Trying
        positions = index.get("timestamp")
        if positions:
            out_index["timestamp"] = at(len(items))
            items.append(("Timestamp", values[positions[0]][1]))
    for name, value in headers:
        canon, key = name_and_key(name)
        positions = out_index.get(key)
        out_index[key] = at(len(items)) if positions is None else (*positions, len(items))
        items.append((canon, value))
    return Response(status, reason or reason_for(status),
                    Headers._from_parsed(tuple(items), out_index), body)
