"""The Via header (RFC 3261 section 20.42, 18.2.1, RFC 3581 rport)."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import SipParseError
from .grammar import Params, format_params, get_param, is_token, parse_params
from .uri import parse_host

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
        return any(k == "rport" for k, _ in self.params)

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
        hp = self.host if self.port is None else f"{self.host}:{self.port}"
        return f"{self.protocol}/{self.transport} {hp}{format_params(self.params)}"


def parse_via(text: str) -> Via:
    """via-parm = sent-protocol LWS sent-by *( SEMI via-params )."""
    s = text.strip()
    parts = s.split("/", 2)
    if len(parts) != 3:
        raise SipParseError("bad Via sent-protocol")
    name, version = parts[0].strip(), parts[1].strip()
    rest = parts[2].lstrip()
    i = 0
    while i < len(rest) and rest[i] not in " \t":
        i += 1
    transport = rest[:i]
    if name.upper() != "SIP" or version != "2.0" or not is_token(transport):
        raise SipParseError("bad Via sent-protocol")
    sent_by = rest[i:].strip()
    semi = sent_by.find(";")
    hostport, ptext = (sent_by, "") if semi == -1 else (sent_by[:semi], sent_by[semi:])
    hostport = hostport.strip()
    # LWS is allowed around the ':' of sent-by
    if ":" in hostport and not hostport.startswith("["):
        h, _, p = hostport.partition(":")
        hostport = h.strip() + ":" + p.strip()
    host, port = parse_host(hostport)
    params = parse_params(ptext) if ptext else ()
    return Via(transport.upper(), host, port, params)
