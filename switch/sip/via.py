"""The Via header (RFC 3261 section 20.42, 18.2.1, RFC 3581 rport)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import SipParseError
from .grammar import (
    TOKEN_CLASS,
    Params,
    format_params,
    get_param,
    parse_params,
    split_simple_params,
)
from .uri import _host_port

MAGIC_COOKIE = "z9hG4bK"  # RFC 3261 8.1.1.7: branch values of RFC 3261 elements start with it


@dataclass(frozen=True, slots=True)
class Via:
    transport: str  # upper case: UDP, TCP, TLS, WS, WSS, SCTP...
    host: str
    port: int | None = None
    params: Params = ()
    protocol: str = "SIP/2.0"

    @property
    def branch(self) -> str | None:
        return get_param(self.params, "branch")

    @property
    def received(self) -> str | None:
        return get_param(self.params, "received")

    @property
    def rport(self) -> int | None:
        v = get_param(self.params, "rport")
        return int(v) if v and v.isdigit() else None

    @property
    def wants_rport(self) -> bool:
        for k, _ in self.params:  # noqa: SIM110 - any(genexpr) costs a generator per request
            if k == "rport":
                return True
        return False

    @property
    def has_rfc3261_branch(self) -> bool:
        b = self.branch
        return b is not None and b.startswith(MAGIC_COOKIE)

    def with_params(self, params: Params) -> Via:
        return Via(self.transport, self.host, self.port, params, self.protocol)

    def with_received(self, address: str, port: int) -> Via:
        """Stamp `received` and fill `rport` (RFC 3581 section 4)."""
        out: list[tuple[str, str | None]] = []
        for k, v in self.params:
            if k in ("received",):
                continue
            if k == "rport":
                out.append(("rport", str(port)))
                continue
            out.append((k, v))
        out.append(("received", address))
        return self.with_params(tuple(out))

    def __str__(self) -> str:
        if self.port is None:
            return f"{self.protocol}/{self.transport} {self.host}{format_params(self.params)}"
        return (f"{self.protocol}/{self.transport} {self.host}:{self.port}"
                f"{format_params(self.params)}")


# via-parm = sent-protocol LWS sent-by *( SEMI via-params ) (RFC 3261 section 20.42,
# 25.1): SLASH and COLON allow LWS around them. The pieces are separated by characters
# outside the preceding class, so the match is linear.
_VIA_RE = re.compile(
    rf"([{TOKEN_CLASS}]+)[ \t]*/[ \t]*([{TOKEN_CLASS}]+)[ \t]*/[ \t]*([{TOKEN_CLASS}]+)[ \t]+"
    r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-.]+)(?:[ \t]*:[ \t]*([0-9]{1,5}))?(.*)",
    re.S,
)


# The usual via-parm: "SIP/2.0/UDP host[:port]" with an upper-case transport, a lower-case
# name or IPv4 host, one SP, then simple parameters (no LWS, no quoted value; checked by
# split_simple_params). Whatever it matches, _VIA_RE matches with the same pieces, and
# every piece is already normalised (upper-case transport, lower-case host), so the general
# code would return the same Via. ';' is outside every class before it: linear.
_VIA_FAST_RE = re.compile(r"SIP/2\.0/([A-Z]+) ([a-z0-9\-.]+)(?::([0-9]{1,5}))?(;.*)?", re.S)


def parse_via(text: str) -> Via:
    """Parse one via-parm (the header value is split at commas first)."""
    text = text.strip(" \t")
    m = _VIA_FAST_RE.fullmatch(text)
    if m is not None:
        transport, host, port_text, ptext = m.groups()
        port: int | None = None
        if port_text is not None:
            port = int(port_text)
            if port > 65535:
                raise SipParseError("port out of range")
        if ptext is None:
            return Via(transport, host, port, ())
        params = split_simple_params(ptext)
        if params is not None:
            return Via(transport, host, port, params)
    return _parse_via(text)


def _parse_via(text: str) -> Via:
    """Every via-parm shape of section 20.42 (LWS, IPv6 references, quoted parameters)."""
    m = _VIA_RE.fullmatch(text)
    if m is None:
        raise SipParseError(f"bad Via {text[:40]!r}")
    name, version, transport, host_text, port_text, ptext = m.groups()
    if version != "2.0" or name.upper() != "SIP":
        raise SipParseError("bad Via sent-protocol")
    host, port = _host_port(host_text, port_text)
    return Via(transport.upper(), host, port, parse_params(ptext) if ptext else ())
