"""SIP, SIPS and tel URIs (RFC 3261 section 19.1, RFC 3966), and other absolute URIs.

The user part is kept as received (escaped) so that serialisation round-trips exactly;
`user_unescaped` gives the value used for comparisons and lookups (section 19.1.4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote as _pct_unquote

from .errors import SipParseError
from .grammar import Params, format_params, get_param, parse_params

SCHEMES_SIP = ("sip", "sips")
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
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(self.user)
            if self.password is not None:
                out.append(":" + self.password)
            out.append("@")
        out.append(self.hostport)
        out.append(format_params(self.params))
        if self.headers:
            out.append("?" + self.headers)
        return "".join(out)


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

_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.")
_USER_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!~*'()%&=+$,;?/"
)
_PASSWORD_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!~*'()%&=+$,"
)
_TEL_CHARS = frozenset("0123456789+-.()*#abcdefABCDEFpwPW")
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789+-.")


def _check_escapes(text: str, what: str) -> None:
    i = text.find("%")
    while i != -1:
        pair = text[i + 1 : i + 3]
        if len(pair) != 2 or any(c not in "0123456789abcdefABCDEF" for c in pair):
            raise SipParseError(f"bad escape in {what}")
        i = text.find("%", i + 3)


def parse_host(text: str) -> tuple[str, int | None]:
    """hostport = host [ ":" port ]; host is a name, IPv4 or bracketed IPv6 reference."""
    if not text:
        raise SipParseError("empty host")
    if text[0] == "[":
        end = text.find("]")
        if end == -1:
            raise SipParseError("unterminated IPv6 reference")
        host = text[: end + 1]
        inner = host[1:-1]
        if not inner or any(c not in "0123456789abcdefABCDEF:." for c in inner) or ":" not in inner:
            raise SipParseError("bad IPv6 reference")
        rest = text[end + 1 :]
        host = host.lower()
    else:
        colon = text.find(":")
        host, rest = (text, "") if colon == -1 else (text[:colon], text[colon:])
        if not host or any(c not in _HOST_CHARS for c in host):
            raise SipParseError(f"bad host {host[:40]!r}")
        host = host.lower()
    if not rest:
        return host, None
    if rest[0] != ":" or not rest[1:].isdigit() or not rest[1:].isascii() or len(rest) > 6:
        raise SipParseError(f"bad port {rest[:10]!r}")
    port = int(rest[1:])
    if port > 65535:
        raise SipParseError("port out of range")
    return host, port


def parse_sip_uri(text: str) -> SipUri:
    colon = text.find(":")
    scheme = text[:colon].lower()
    if scheme not in SCHEMES_SIP:
        raise SipParseError(f"not a SIP URI: {text[:40]!r}", 416)
    rest = text[colon + 1 :]
    user = password = None
    at = rest.find("@")
    if at != -1:
        userinfo, rest = rest[:at], rest[at + 1 :]
        pc = userinfo.find(":")
        if pc != -1:
            user, password = userinfo[:pc], userinfo[pc + 1 :]
            if any(c not in _PASSWORD_CHARS for c in password):
                raise SipParseError("bad password in URI")
        else:
            user = userinfo
        if not user or any(c not in _USER_CHARS for c in user):
            raise SipParseError("bad user part in URI")
        _check_escapes(user, "user part")
    q = rest.find("?")
    headers = ""
    if q != -1:
        rest, headers = rest[:q], rest[q + 1 :]
        if not headers or any(c in " \t<>\"" for c in headers):
            raise SipParseError("bad URI headers")
    semi = rest.find(";")
    hostport, ptext = (rest, "") if semi == -1 else (rest[:semi], rest[semi:])
    host, port = parse_host(hostport)
    params = parse_params(ptext) if ptext else ()
    for k, v in params:
        if v is not None:
            _check_escapes(v, "URI parameter")
    return SipUri(scheme, host, user, password, port, params, headers)


def parse_tel_uri(text: str) -> TelUri:
    rest = text[4:]
    semi = rest.find(";")
    number, ptext = (rest, "") if semi == -1 else (rest[:semi], rest[semi:])
    if not number or any(c not in _TEL_CHARS for c in number):
        raise SipParseError(f"bad tel number {number[:30]!r}")
    if "+" in number[1:]:
        raise SipParseError("misplaced '+' in tel URI")
    return TelUri(number, parse_params(ptext) if ptext else ())


def parse_uri(text: str) -> Uri:
    """Parse any absolute URI; SIP/SIPS/tel are structured, others kept verbatim."""
    if len(text) > MAX_URI_LENGTH:
        raise SipParseError("URI too long", 414)
    colon = text.find(":")
    if colon <= 0:
        raise SipParseError(f"not an absolute URI: {text[:40]!r}")
    scheme = text[:colon].lower()
    if any(c not in _SCHEME_CHARS for c in scheme) or not scheme[0].isalpha():
        raise SipParseError("bad URI scheme")
    if any(c in " \t\r\n<>" for c in text):
        raise SipParseError("whitespace or angle bracket inside URI")
    if scheme in SCHEMES_SIP:
        return parse_sip_uri(text)
    if scheme == "tel":
        return parse_tel_uri(text)
    return AbsoluteUri(scheme, text[colon + 1 :])


def uri_user(uri: Uri) -> str | None:
    """The dialable user of a URI: SIP user part (unescaped), tel number, or None."""
    if isinstance(uri, SipUri):
        return uri.user_unescaped
    if isinstance(uri, TelUri):
        return uri.digits
    return None
