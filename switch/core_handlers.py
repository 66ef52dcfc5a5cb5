"""Requests the switch answers itself: OPTIONS (RFC 3261 section 11)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from switch.sip import Request, make_response
from switch.stateless_options import (
    ACCEPT,
    ACCEPT_ENCODING,
    ACCEPT_LANGUAGE,
    StatelessOptions,
    new_secret,
    options_tag,
)
from switch.transaction import Peer

if TYPE_CHECKING:
    from switch.runtime import ServerRequest, SipRuntime

# Only what is implemented end to end: the registrar stores Path (RFC 3327).
SUPPORTED_EXTENSIONS = frozenset({"path"})
SUPPORTED = ", ".join(sorted(SUPPORTED_EXTENSIONS))

__all__ = ["ACCEPT", "SUPPORTED", "SUPPORTED_EXTENSIONS", "OptionsHandler", "handle_options"]


class OptionsHandler:
    """Answers OPTIONS with what the switch can do (RFC 3261 11.2).

    Two paths give the same answer: `stateless`, which the runtime calls straight from the
    receive path for an out-of-dialog OPTIONS over UDP (no server transaction, RFC 3261
    8.2.7; see switch/stateless_options.py), and the call itself, the full path through a
    server transaction, for everything the stateless path is not sure of (a To tag, TCP,
    TLS, WebSocket, Require, a malformed header...). Both derive the To tag from the request
    (`options_tag`), so a retransmission gets the same answer whichever path it took.
    """

    def __init__(self, secret: bytes | None = None) -> None:
        self.responder = StatelessOptions(new_secret() if secret is None else secret)

    def __call__(self, runtime: SipRuntime, sreq: ServerRequest) -> None:
        request = sreq.request
        response = make_response(
            request,
            200,
            to_tag=options_tag(self.responder.secret, request),
            headers=(
                ("Allow", runtime.allow),
                ("Accept", ACCEPT),
                ("Accept-Encoding", ACCEPT_ENCODING),
                ("Accept-Language", ACCEPT_LANGUAGE),
                ("Supported", SUPPORTED),
            ),
        )
        runtime.respond(sreq.key, response)

    def stateless(self, runtime: SipRuntime, request: Request, peer: Peer) -> bool:
        """The runtime's early hook: True when the request was answered here."""
        out = self.responder.answer(request, peer, runtime.allow, SUPPORTED_EXTENSIONS)
        if out is None:
            return False
        runtime.send_response_bytes(out[0], out[1], 200)
        return True


handle_options = OptionsHandler()
