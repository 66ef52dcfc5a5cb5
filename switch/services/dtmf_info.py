"""DTMF in SIP INFO bodies: `application/dtmf-relay` and `application/dtmf`.

Neither has an RFC of its own; both are what phones send in practice (the Cisco/Nortel
`dtmf-relay` form `Signal=5\\r\\nDuration=160`, and the bare `application/dtmf` digit). INFO
itself is RFC 6086 (without an Info-Package for these legacy bodies).
"""

from __future__ import annotations

DTMF_DIGITS = frozenset("0123456789*#ABCD")
# the event numbers of RFC 4733 table 7, which some phones put in Signal=
_EVENTS = "0123456789*#ABCD"
DEFAULT_DURATION_MS = 100


def parse_dtmf_info(content_type: str, body: bytes) -> tuple[str, int] | None:
    """The (digit, duration in ms) of an INFO body, or None when it carries no DTMF."""
    ctype = content_type.split(";", 1)[0].strip().lower()
    try:
        text = body.decode("ascii").strip()
    except UnicodeDecodeError:
        return None
    if ctype == "application/dtmf":
        return _digit(text, DEFAULT_DURATION_MS)
    if ctype != "application/dtmf-relay":
        return None
    fields: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep:
            fields[name.strip().lower()] = value.strip()
    signal = fields.get("signal")
    if signal is None:
        return None
    try:
        duration = int(fields.get("duration", DEFAULT_DURATION_MS))
    except ValueError:
        duration = DEFAULT_DURATION_MS
    return _digit(signal, max(0, min(duration, 60_000)))


def _digit(value: str, duration: int) -> tuple[str, int] | None:
    value = value.upper()
    if len(value) == 1 and value in DTMF_DIGITS:
        return value, duration
    if value.isdigit() and int(value) < len(_EVENTS):
        return _EVENTS[int(value)], duration
    return None
