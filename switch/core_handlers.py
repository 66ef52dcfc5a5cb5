"""Requests the switch answers itself: OPTIONS (RFC 3261 section 11)."""

from __future__ import annotations

from switch.runtime import ServerRequest, SipRuntime
from switch.sip import make_response, new_tag

# Only what is implemented end to end: the registrar stores Path (RFC 3327).
SUPPORTED_EXTENSIONS = frozenset({"path"})
SUPPORTED = ", ".join(sorted(SUPPORTED_EXTENSIONS))
ACCEPT = "application/sdp, application/pidf+xml, multipart/mixed"


def handle_options(runtime: SipRuntime, sreq: ServerRequest) -> None:
    """Answer OPTIONS with what the switch can do (RFC 3261 11.2)."""
    response = make_response(
        sreq.request,
        200,
        to_tag=new_tag(),
        headers=(
            ("Allow", runtime.allow),
            ("Accept", ACCEPT),
            ("Accept-Encoding", "identity"),
            ("Accept-Language", "en, fr"),
            ("Supported", SUPPORTED),
        ),
    )
    runtime.respond(sreq.key, response)
