"""name-addr / addr-spec for From, To, Contact, Route, Record-Route (RFC 3261 20.10, 25.1)."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import SipParseError
from .grammar import Params, format_params, get_param, parse_params, quote, scan_quoted, unquote
from .uri import Uri, parse_uri


@dataclass(frozen=True, slots=True)
class NameAddr:
    uri: Uri
    display: str | None = None  # unquoted display name
    params: Params = ()

    @property
    def tag(self) -> str | None:
        return get_param(self.params, "tag")

    def param(self, name: str) -> str | None:
        return get_param(self.params, name)

    def with_tag(self, tag: str) -> NameAddr:
        params = tuple(p for p in self.params if p[0] != "tag") + (("tag", tag),)
        return NameAddr(self.uri, self.display, params)

    def with_params(self, params: Params) -> NameAddr:
        return NameAddr(self.uri, self.display, params)

    def __str__(self) -> str:
        # Always the name-addr form: safe for URIs that carry their own parameters.
        disp = "" if self.display is None else quote(self.display) + " "
        return f"{disp}<{self.uri}>{format_params(self.params)}"


def parse_name_addr(text: str) -> NameAddr:
    """Parse `["display"] <uri> *(;param)` or `addr-spec *(;param)`."""
    s = text.strip()
    if not s:
        raise SipParseError("empty address")
    display: str | None = None
    if s[0] == '"':
        end = scan_quoted(s, 0)
        display = unquote(s[:end])
        s = s[end:].lstrip()
        if not s.startswith("<"):
            raise SipParseError("display name without <URI>")
    lt = s.find("<")
    if lt != -1:
        if display is None:
            name = s[:lt].strip()
            if name:
                if '"' in name or ">" in name:
                    raise SipParseError("bad display name")
                display = name
        gt = s.find(">", lt)
        if gt == -1:
            raise SipParseError("unterminated <URI>")
        uri = parse_uri(s[lt + 1 : gt].strip())
        rest = s[gt + 1 :].strip()
    else:
        # addr-spec: parameters after ';' belong to the header, not to the URI (20.10).
        if any(c in s for c in ' \t"'):
            # a bare URI cannot hold whitespace before its parameters
            head = s.split(";", 1)[0]
            if any(c in head.strip() for c in ' \t"'):
                raise SipParseError("bad addr-spec")
        semi = s.find(";")
        uri_text, rest = (s, "") if semi == -1 else (s[:semi], s[semi:])
        if "?" in uri_text or "," in uri_text:
            raise SipParseError("addr-spec with URI headers or commas must use <>")
        uri = parse_uri(uri_text.strip())
    params = parse_params(rest) if rest else ()
    return NameAddr(uri, display, params)


@dataclass(frozen=True, slots=True)
class ContactStar:
    """`Contact: *` (RFC 3261 10.2.2), only valid with Expires: 0 in REGISTER."""

    def __str__(self) -> str:
        return "*"


def format_addresses(addresses: list[NameAddr]) -> str:
    return ", ".join(str(a) for a in addresses)
