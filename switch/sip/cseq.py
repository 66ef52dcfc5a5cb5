"""CSeq (RFC 3261 section 8.1.1.5, 20.16)."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import SipParseError
from .grammar import is_token, parse_uint

MAX_CSEQ = 2**31 - 1  # section 8.1.1.5: the sequence number MUST be less than 2**31


@dataclass(frozen=True, slots=True)
class CSeq:
    seq: int
    method: str

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


def parse_cseq(text: str) -> CSeq:
    parts = text.split()
    if len(parts) != 2 or not is_token(parts[1]):
        raise SipParseError("bad CSeq")
    return CSeq(parse_uint(parts[0], "CSeq", maximum=MAX_CSEQ), parts[1])
