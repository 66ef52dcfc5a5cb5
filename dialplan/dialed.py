"""Turn what a caller dialed (digits, a SIP URI, a tel URI, a service URN) into digits.

Accepted forms (the issue's list): "501410", "410", "0612345678", "0044...", "+44...",
"sip:0612345678@host;user=phone", "tel:+33612345678", "urn:service:sos.fire" (RFC 5031).
"""

from __future__ import annotations

from dataclasses import dataclass

from switch.sip import AbsoluteUri, SipError, SipUri, TelUri, parse_uri

from .numbers import SOS_URN_NUMBERS, strip_separators

_DIAL_CHARS = frozenset("0123456789*#+")


@dataclass(frozen=True, slots=True)
class Dialed:
    digits: str = ""  # 0-9 * # and a leading +
    name: str | None = None  # a non-numeric SIP user part ("alice"), looked up as a username
    host: str | None = None  # host of a SIP URI
    form: str = "digits"  # digits | sip | tel | urn
    sos: str | None = None  # emergency number a service URN maps to
    error: tuple[int, str] | None = None  # (SIP status, reason) when unusable


def parse_dialed(dialed: str) -> Dialed:
    s = dialed.strip()
    if s.startswith("<") and s.endswith(">"):
        s = s[1:-1]
    if not s:
        return Dialed(error=(484, "nothing dialed"))
    if ":" not in s:
        return _digits(strip_separators(s), None, "digits")
    try:
        uri = parse_uri(s)
    except SipError as exc:
        return Dialed(error=(400, f"bad URI: {exc.reason}"))
    if isinstance(uri, AbsoluteUri):
        service = uri.rest.lower()
        if uri.scheme == "urn" and service.startswith("service:sos"):
            # RFC 5031 section 4.2: sub-services of sos; unknown ones fall back to 112.
            name = service[len("service:") :].split(";")[0]
            return Dialed(form="urn", sos=SOS_URN_NUMBERS.get(name, "112"))
        return Dialed(error=(416, f"unsupported URI scheme {uri.scheme}"))
    if isinstance(uri, TelUri):
        return _digits(uri.digits, None, "tel")
    return _sip(uri)


def _sip(uri: SipUri) -> Dialed:
    user = uri.user_unescaped
    if not user:
        return Dialed(error=(484, "no user part in the request URI"))
    if uri.param("user") == "phone":
        # RFC 3261 section 19.1.6: a telephone-subscriber, maybe with ;phone-context=...
        user = strip_separators(user.split(";")[0])
    return _digits(user, uri.host, "sip")


def _digits(text: str, host: str | None, form: str) -> Dialed:
    if text and all(c in _DIAL_CHARS for c in text) and "+" not in text[1:]:
        return Dialed(digits=text, host=host, form=form)
    if form == "sip" and text:
        return Dialed(name=text, host=host, form=form)
    return Dialed(error=(484, f"not a dialable number: {text[:40]!r}"))
