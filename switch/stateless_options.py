"""A stateless answer to out-of-dialog OPTIONS over UDP (issue 21).

RFC 3261 section 11 lets a UAS answer OPTIONS with what it supports, and section 8.2.7
lets it do so without a server transaction, provided that a retransmission of the request
gets the same answer: the To tag is therefore not random but a keyed hash of what a
retransmission repeats (Call-ID, top Via, CSeq), so the kernel-level duplicate of a request
gets byte for byte the response the first copy got, as the transaction layer's cached final
response would have given it (17.2.2), without keeping a transaction alive for Timer J
(32 s per OPTIONS over UDP).

Sans-IO: `StatelessOptions.answer(request, source)` returns the response bytes and where
they go, or None when this path is not sure the full path would answer the same; the
caller then hands the request to the transaction layer as before. What is sent is what
`make_response` after the transaction layer's `stamp_received` gives (RFC 3581 section 4:
received and rport in the top Via; 18.2.2: the response goes to the source when rport is
asked for), so the two paths agree byte for byte except for the tag's derivation, and the
full path uses the same tag (`options_tag`).
"""

from __future__ import annotations

import hashlib
import os

from switch.sip import Request, SipError, SipUri, Via
from switch.sip.grammar import split_commas
from switch.transaction import Peer, reply_peer

# The headers of a 200 to OPTIONS besides Allow (RFC 3261 11.2); core_handlers builds the
# full path's answer from the same values.
ACCEPT = "application/sdp, application/pidf+xml, multipart/mixed"
ACCEPT_ENCODING = "identity"
ACCEPT_LANGUAGE = "en, fr"
# Headers whose presence may change the answer or its routing on the full path (Require:
# 420 per 8.2.2.3; Proxy-Require and Route: not ours to judge here): such a request takes
# the full path.
_FULL_PATH_HEADERS = ("require", "proxy-require", "route")


def options_tag(secret: bytes, request: Request) -> str:
    """A To tag that a retransmission of the same request gets again (RFC 3261 8.2.7).

    From what a retransmission repeats and the transaction layer's received/rport stamp
    does not change (Call-ID, the top Via's branch and sent-by, CSeq), so the stateless and
    the full path give the same tag. Keyed (BLAKE2b with a per-process secret): a peer
    cannot predict the tag of someone else's request; 48 bits, the size of a random tag
    here (19.3 asks for at least 32)."""
    headers = request.headers
    return _tag(secret, headers.get_key("call-id") or "", request.top_via,
                headers.get_key("cseq") or "")


def _tag(secret: bytes, call_id: str, via: Via, cseq: str) -> str:
    text = f"{call_id}\x00{via.branch}\x00{via.host}:{via.port}\x00{cseq}"
    return hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=6,
                           key=secret).hexdigest()


def new_secret() -> bytes:
    return os.urandom(32)


def _stamped(via: Via, host: str, port: int) -> str:
    """`str(via.with_received(host, port))` in one pass, without the intermediate Via (a
    third of this path's own cost): rport filled, any received replaced by ours at the end
    (RFC 3581 section 4). The differential tests hold it to the Via's own formatting."""
    parts = [via.protocol, "/", via.transport, " ", via.host]
    if via.port is not None:
        parts += [":", str(via.port)]
    for k, v in via.params:
        if k == "received":
            continue
        if k == "rport":
            parts += [";rport=", str(port)]
        elif v is None:
            parts += [";", k]
        else:
            parts += [";", k, "=", v]
    parts += [";received=", host]
    return "".join(parts)


class StatelessOptions:
    """Builds the 200 to an OPTIONS addressed to the switch, or says "take the full path".

    `allow` and `supported` are passed with each request, so that a handler registered
    after start-up (the call service adds INVITE, BYE...) shows in Allow at once, as on the
    full path."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        self._tail_for: tuple[str, frozenset[str]] | None = None
        self._tail = ""
        self.answered = 0  # for tests and metrics: answers given without a transaction
        self.declined = 0  # OPTIONS handed to the full path

    def _headers_tail(self, allow: str, supported: frozenset[str]) -> str:
        if self._tail_for != (allow, supported):
            # the order of core_handlers.handle_options; Content-Length last, as to_bytes
            self._tail = (f"Allow: {allow}\r\nAccept: {ACCEPT}\r\n"
                          f"Accept-Encoding: {ACCEPT_ENCODING}\r\n"
                          f"Accept-Language: {ACCEPT_LANGUAGE}\r\n"
                          f"Supported: {', '.join(sorted(supported))}\r\n"
                          "Content-Length: 0\r\n\r\n")
            self._tail_for = (allow, supported)
        return self._tail

    def answer(self, request: Request, source: Peer, allow: str,
               supported: frozenset[str]) -> tuple[bytes, Peer] | None:
        """The response bytes and their destination, or None: the full path decides."""
        try:
            out = self._answer(request, source, allow, supported)
        except SipError:
            # a lazily parsed header is malformed: the full path answers or drops it as it
            # always did (400, or dropped and counted by the transaction layer)
            out = None
        if out is None:
            self.declined += 1
        else:
            self.answered += 1
        return out

    def _answer(self, request: Request, source: Peer, allow: str,
                supported: frozenset[str]) -> tuple[bytes, Peer] | None:
        if request.method != "OPTIONS" or source.transport != "UDP" or request.body:
            return None
        if not isinstance(request.uri, SipUri):
            return None  # tel:, urn:, an absolute URI: rare, the full path judges them
        headers = request.headers
        for key in _FULL_PATH_HEADERS:
            if headers.get_key(key) is not None:
                return None
        if request.to.tag is not None:
            return None  # in a dialog (or claims to be): the full path
        max_forwards = request.max_forwards
        if max_forwards is not None and max_forwards <= 0:
            # RFC 3261 16.3 item 3 lets the final recipient answer an OPTIONS with
            # Max-Forwards 0 itself; the full path decides, as it always did
            return None
        request.from_  # noqa: B018 - parsed for its check: a malformed From takes the full path
        vias = headers.get_raw_key("via")
        call_id = headers.get_key("call-id") or ""
        cseq = headers.get_key("cseq") or ""
        if not vias or not call_id or not cseq:
            return None
        via = request.top_via
        host, port = source.host, source.port
        # RFC 3261 18.2.1 and RFC 3581 section 4, as the transaction layer's stamp_received
        # and reply_peer (one pass over the Via's parameters instead of four)
        wants_rport, received, rport = False, None, None
        for k, v in via.params:  # the first of each, as Via.rport and Via.received
            if k == "rport" and not wants_rport:
                wants_rport, rport = True, v
            elif k == "received" and received is None:
                received = v or ""
        if wants_rport:
            stamp = not (received == host and rport is not None and rport.isdigit()
                         and int(rport) == port)
        else:
            stamp = not (via.host == host or received == host)
        tag = _tag(self.secret, call_id, via, cseq)
        if stamp:
            first = vias[0]
            rest = split_commas(first)[1:] if "," in first else []
            vias = [", ".join([_stamped(via, host, port), *rest]), *vias[1:]]
        if wants_rport:
            dest = source  # 18.2.2 with RFC 3581: to the source when rport was asked for
        else:
            dest = reply_peer(via.with_received(host, port) if stamp else via, source)
        head = "".join([f"Via: {v}\r\n" for v in vias])
        text = (f"SIP/2.0 200 OK\r\n{head}From: {headers.get_key('from')}\r\n"
                f"To: {headers.get_key('to')};tag={tag}\r\nCall-ID: {call_id}\r\n"
                f"CSeq: {cseq}\r\n{self._headers_tail(allow, supported)}")
        return text.encode("utf-8", "surrogateescape"), dest
