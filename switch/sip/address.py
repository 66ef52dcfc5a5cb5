"""name-addr / addr-spec for From, To, Contact, Route, Record-Route (RFC 3261 20.10, 25.1)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import SipParseError
from .grammar import (
    QUOTED,
    TOKEN_CLASS,
    Params,
    format_params,
    get_param,
    parse_params,
    quote,
    unquote,
)
from .lazy import BoundedCache
from .uri import Uri, parse_uri

# name-addr = [ display-name ] LAQUOT addr-spec RAQUOT; LAQUOT = SWS "<", RAQUOT = ">" SWS.
# No LWS is allowed inside the brackets (RFC 4475 3.1.2.14 rejects "< sip:... >").
# The alternatives are disjoint (a quote, or text without '"' and '<'), so matching is
# linear even on hostile input.
_NAME_ADDR_RE = re.compile(
    rf"(?:({QUOTED})[ \t]*|([^\"<]*))<([^<>\s]*)>(.*)", re.S
)
# display-name = *(token LWS) / quoted-string. We are liberal in one way only: non-ASCII
# letters are accepted in an unquoted display name because deployed phones send them.
_DISPLAY_TOKENS_RE = re.compile(rf"[{TOKEN_CLASS}\x80-\U0010ffff]+(?:[ \t]+[{TOKEN_CLASS}\x80-\U0010ffff]+)*")


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
        params = (*(p for p in self.params if p[0] != "tag"), ("tag", tag))
        return NameAddr(self.uri, self.display, params)

    def with_params(self, params: Params) -> NameAddr:
        return NameAddr(self.uri, self.display, params)

    def __str__(self) -> str:
        # Always the name-addr form: safe for URIs that carry their own parameters.
        disp = "" if self.display is None else quote(self.display) + " "
        return f"{disp}<{self.uri}>{format_params(self.params)}"


# Sized for the switch's scale: 10,000 phones, each one's To, Contact and address cached
# from one re-registration to the next (at 2,048 entries, emptied every couple of thousand
# new texts, a re-registration found them one time in ten). Emptied when full, so hostile
# text bounds each at a few MB.
CACHE_ENTRIES = 32_768
_CACHE: BoundedCache[NameAddr] = BoundedCache(CACHE_ENTRIES)
# A tagged From or To belongs to one dialog (RFC 3261 19.3: tags are unique): it repeats in
# that dialog's responses and requests for a few seconds, then never again. Kept apart, the
# stream of new dialogs empties this small cache instead of pushing the phones' addresses
# out of _CACHE.
_DIALOG_CACHE: BoundedCache[NameAddr] = BoundedCache(4096)
# `["display"] <uri>` without its parameters -> NameAddr without parameters. From and To
# carry a fresh tag in every dialog, so the whole value misses the caches above while this
# part (the phone's own address) repeats.
_BASE_CACHE: BoundedCache[NameAddr] = BoundedCache(CACHE_ENTRIES)


def parse_name_addr(text: str) -> NameAddr:
    """Parse `["display"] <uri> *(;param)` or `addr-spec *(;param)`."""
    cache = _DIALOG_CACHE if ";tag=" in text else _CACHE
    hit = cache.get(text)
    if hit is not None:
        return hit
    addr = _with_cached_base(text)
    if addr is None:
        addr = _parse_name_addr(text)
    cache.put(text, addr)
    return addr


def _with_cached_base(text: str) -> NameAddr | None:
    """`base;params` from the cached base; None when the shape is not the plain one.

    The cut is at the last '>' and the tail must hold no '"', '<' or '>': then every way
    _NAME_ADDR_RE can match the whole text lies in the base, so the base matched alone with
    nothing after its '>' gives the display name and URI the whole match gives.
    """
    gt = text.rfind(">")
    if gt == -1:
        return None
    tail = text[gt + 1 :]
    if '"' in tail or "<" in tail:
        return None
    base_text = text[: gt + 1]
    base = _BASE_CACHE.get(base_text)
    if base is None:
        s = base_text.strip(" \t")
        m = _NAME_ADDR_RE.fullmatch(s)
        if m is None or m.group(4):
            return None
        base = _parse_name_addr(s)
        _BASE_CACHE.put(base_text, base)
    tail = tail.rstrip(" \t")
    if not tail:
        return base
    return NameAddr(base.uri, base.display, parse_params(tail))


def _parse_name_addr(text: str) -> NameAddr:
    s = text.strip(" \t")
    if not s:
        raise SipParseError("empty address")
    m = _NAME_ADDR_RE.fullmatch(s)
    if m is not None:
        quoted, bare, uri_text, rest = m.groups()
        display: str | None = None
        if quoted is not None:
            display = unquote(quoted)
        elif bare:
            bare = bare.strip(" \t")
            if bare:
                if _DISPLAY_TOKENS_RE.fullmatch(bare) is None:
                    raise SipParseError(f"bad display name {bare[:40]!r}")
                display = bare
        uri = parse_uri(uri_text)
        params = parse_params(rest) if rest else ()
        return NameAddr(uri, display, params)
    if s[0] == '"' or "<" in s or ">" in s:
        raise SipParseError(f"bad name-addr {s[:40]!r}")
    # addr-spec: parameters after ';' belong to the header, not to the URI (20.10), and
    # a URI with headers, commas or '?' must be written in name-addr form.
    semi = s.find(";")
    uri_text, rest = (s, "") if semi == -1 else (s[:semi], s[semi:])
    uri_text = uri_text.rstrip(" \t")
    if "?" in uri_text or "," in uri_text:
        raise SipParseError("addr-spec with URI headers or commas must use <>")
    uri = parse_uri(uri_text)
    return NameAddr(uri, None, parse_params(rest) if rest else ())


@dataclass(frozen=True, slots=True)
class ContactStar:
    """`Contact: *` (RFC 3261 10.2.2), only valid with Expires: 0 in REGISTER."""

    def __str__(self) -> str:
        return "*"


def format_addresses(addresses: list[NameAddr]) -> str:
    return ", ".join(str(a) for a in addresses)
