"""SIP, SIPS and tel URIs (RFC 3261 section 19.1, RFC 3966), and other absolute URIs.

The user part is kept as received (escaped) so that serialisation round-trips exactly;
`user_unescaped` gives the value used for comparisons and lookups (section 19.1.4).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import unquote as _pct_unquote

from .errors import SipParseError
from .grammar import Params, format_params, get_param, parse_params
from .lazy import BoundedCache

SCHEMES_SIP = ("sip", "sips")
# A longer Request-URI is answered 414 (RFC 3261 section 21.4.12).
MAX_URI_LENGTH = 4096


@dataclass(frozen=True, slots=True)
class SipUri:
    scheme: str
    host: str
    user: str | None = None
    password: str | None = None
    port: int | None = None
    params: Params = ()
    headers: str = ""  # raw `?h=v&...` part without the '?'

    def param(self, name: str) -> str | None:
        return get_param(self.params, name)

    @property
    def user_unescaped(self) -> str | None:
        return None if self.user is None else _pct_unquote(self.user)

    @property
    def transport(self) -> str | None:
        t = self.param("transport")
        return t.lower() if t else None

    @property
    def hostport(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    def with_params(self, params: Params) -> SipUri:
        return SipUri(self.scheme, self.host, self.user, self.password, self.port, params, self.headers)

    def __str__(self) -> str:
        # one f-string for the usual shapes (hot: every Request-URI and address serialised)
        user = self.user
        if user is None:
            userinfo = ""
        elif self.password is None:
            userinfo = user + "@"
        else:
            userinfo = f"{user}:{self.password}@"
        port = self.port
        hostport = self.host if port is None else f"{self.host}:{port}"
        params = format_params(self.params) if self.params else ""
        if self.headers:
            return f"{self.scheme}:{userinfo}{hostport}{params}?{self.headers}"
        return f"{self.scheme}:{userinfo}{hostport}{params}"


@dataclass(frozen=True, slots=True)
class TelUri:
    number: str  # as received: "+33562070410" or a local number
    params: Params = ()

    @property
    def is_global(self) -> bool:
        return self.number.startswith("+")

    @property
    def digits(self) -> str:
        """The number without visual separators (RFC 3966 section 5.1.1)."""
        return "".join(c for c in self.number if c not in "-.()")

    def param(self, name: str) -> str | None:
        return get_param(self.params, name)

    def __str__(self) -> str:
        return f"tel:{self.number}{format_params(self.params)}"


@dataclass(frozen=True, slots=True)
class AbsoluteUri:
    """Any other scheme (urn:service:sos, mailto:, http:...), kept verbatim."""

    scheme: str
    rest: str = field(default="")

    def __str__(self) -> str:
        return f"{self.scheme}:{self.rest}"


Uri = SipUri | TelUri | AbsoluteUri

# RFC 3261 section 25.1: user = 1*( unreserved / escaped / user-unreserved ),
# password = *( unreserved / escaped / "&" / "=" / "+" / "$" / "," ).
_USERINFO_RE = re.compile(
    r"([A-Za-z0-9\-_.!~*'()%&=+$,;?/]+)(?::([A-Za-z0-9\-_.!~*'()%&=+$,]*))?"
)
# hostport [ uri-parameters ] [ headers ]; host = hostname / IPv4address / IPv6reference.
_HOSTPORT_RE = re.compile(
    r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-.]+)(?::([0-9]{1,5}))?(;[^?]*)?(?:\?(.*))?", re.S
)
_HOST_RE = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-.]+)(?::([0-9]{1,5}))?")
_BAD_ESCAPE_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# hname "=" hvalue *( "&" hname "=" hvalue ), each 1*( hnv-unreserved / unreserved / escaped ).
# '@' is tolerated in values: phones put unescaped addresses in Replaces and friends.
_URI_HEADERS_RE = re.compile(r"[A-Za-z0-9\-_.!~*'()%\[\]/?:+$@]+=[A-Za-z0-9\-_.!~*'()%\[\]/?:+$@]*"
                             r"(?:&[A-Za-z0-9\-_.!~*'()%\[\]/?:+$@]+=[A-Za-z0-9\-_.!~*'()%\[\]/?:+$@]*)*")
# RFC 3966 section 3: global numbers are "+" digits with visual separators, local ones
# hex digits, "*" and "#" with separators. "p"/"w" (pause) are tolerated as dial strings.
_TEL_GLOBAL_RE = re.compile(r"\+[0-9\-.()]+")
_TEL_LOCAL_RE = re.compile(r"[0-9A-Fa-f*#pPwW\-.()]+")
_TEL_DIGIT_RE = re.compile(r"[0-9A-Fa-f*#pPwW]")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
_NO_SPACE_RE = re.compile(r"[\s<>\"]")


def _check_escapes(text: str, what: str) -> None:
    """escaped = "%" HEXDIG HEXDIG (RFC 3261 25.1)."""
    if "%" in text and _BAD_ESCAPE_RE.search(text) is not None:
        raise SipParseError(f"bad escape in {what}")


def _check_ipv6(host: str) -> str:
    try:
        ipaddress.IPv6Address(host[1:-1])
    except ValueError:
        raise SipParseError("bad IPv6 reference") from None
    return host.lower()


def _host_port(host: str, port_text: str | None) -> tuple[str, int | None]:
    host = _check_ipv6(host) if host[0] == "[" else host.lower()
    if port_text is None:
        return host, None
    port = int(port_text)
    if port > 65535:
        raise SipParseError("port out of range")
    return host, port


def parse_host(text: str) -> tuple[str, int | None]:
    """hostport = host [ ":" port ]; host is a name, IPv4 or bracketed IPv6 reference."""
    m = _HOST_RE.fullmatch(text)
    if m is None:
        raise SipParseError(f"bad host {text[:40]!r}")
    return _host_port(m.group(1), m.group(2))


def parse_sip_uri(text: str) -> SipUri:
    """SIP-URI / SIPS-URI (RFC 3261 section 19.1.1, 25.1)."""
    colon = text.find(":")
    scheme = text[:colon].lower()
    if scheme not in SCHEMES_SIP:
        raise SipParseError(f"not a SIP URI: {text[:40]!r}", 416)
    rest = text[colon + 1 :]
    user = password = None
    # '@' cannot appear unescaped in userinfo or host, so the first one ends the userinfo.
    at = rest.find("@")
    if at != -1:
        m = _USERINFO_RE.fullmatch(rest, 0, at)
        if m is None:
            raise SipParseError("bad user part in URI")
        user, password = m.group(1), m.group(2)
        _check_escapes(user, "user part")
        rest = rest[at + 1 :]
    h = _HOSTPORT_RE.fullmatch(rest)
    if h is None:
        raise SipParseError(f"bad host part in URI {rest[:40]!r}")
    host, port = _host_port(h.group(1), h.group(2))
    ptext = h.group(3)
    params: Params = ()
    if ptext:
        params = parse_params(ptext, uri=True)
        _check_escapes(ptext, "URI parameter")
    headers = h.group(4)
    if headers is None:
        headers = ""
    elif _URI_HEADERS_RE.fullmatch(headers) is None:
        raise SipParseError("bad URI headers")
    else:
        _check_escapes(headers, "URI headers")
    return SipUri(scheme, host, user, password, port, params, headers)


def parse_tel_uri(text: str) -> TelUri:
    """telephone-uri = "tel:" telephone-subscriber (RFC 3966 section 3)."""
    rest = text[4:]
    semi = rest.find(";")
    number, ptext = (rest, "") if semi == -1 else (rest[:semi], rest[semi:])
    rx = _TEL_GLOBAL_RE if number[:1] == "+" else _TEL_LOCAL_RE
    if rx.fullmatch(number) is None or _TEL_DIGIT_RE.search(number) is None:
        raise SipParseError(f"bad tel number {number[:30]!r}")
    params = parse_params(ptext, uri=True) if ptext else ()
    if ptext:
        _check_escapes(ptext, "tel parameter")
    return TelUri(number, params)


# sized like the address caches (address.CACHE_ENTRIES): every phone's URIs stay cached
_URI_CACHE: BoundedCache[Uri] = BoundedCache(32_768)


def parse_uri(text: str) -> Uri:
    """Parse any absolute URI; SIP/SIPS/tel are structured, others kept verbatim."""
    hit = _URI_CACHE.get(text)
    if hit is not None:
        return hit
    uri = _parse_uri(text)
    _URI_CACHE.put(text, uri)
    return uri


def _parse_uri(text: str) -> Uri:
    colon = text.find(":")
    if colon <= 0 or _SCHEME_RE.fullmatch(text, 0, colon) is None:
        raise SipParseError(f"not an absolute URI: {text[:40]!r}")
    if _NO_SPACE_RE.search(text) is not None:
        raise SipParseError("whitespace, quote or angle bracket inside URI")
    scheme = text[:colon].lower()
    if scheme == "sip" or scheme == "sips":
        return parse_sip_uri(text)
    if scheme == "tel":
        return parse_tel_uri(text)
    rest = text[colon + 1 :]
    if not rest:
        raise SipParseError("empty URI after the scheme")
    return AbsoluteUri(scheme, rest)


def uri_user(uri: Uri) -> str | None:
    """The dialable user of a URI: SIP user part (unescaped), tel number, or None."""
    if isinstance(uri, SipUri):
        return uri.user_unescaped
    if isinstance(uri, TelUri):
        return uri.digits
    return None
