"""CSeq (RFC 3261 section 8.1.1.5, 20.16)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import SipParseError
from .grammar import TOKEN_CLASS
from .lazy import BoundedCache

MAX_CSEQ = 2**31 - 1  # section 8.1.1.5: the sequence number MUST be less than 2**31


@dataclass(frozen=True, slots=True)
class CSeq:
    seq: int
    method: str

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


# CSeq = 1*DIGIT LWS Method (section 20.16); the number is below 2**31 (section 8.1.1.5).
_CSEQ_RE = re.compile(rf"([0-9]{{1,10}})[ \t]+([{TOKEN_CLASS}]+)")


# Real traffic repeats a few CSeq values ("1 OPTIONS", "2 REGISTER"); CSeq is immutable,
# so a parsed value is shared (bounded: emptied when full).
_CACHE: BoundedCache[CSeq] = BoundedCache(512)


def parse_cseq(text: str) -> CSeq:
    hit = _CACHE.get(text)
    if hit is not None:
        return hit
    cseq = _parse_cseq(text)
    _CACHE.put(text, cseq)
    return cseq


def _parse_cseq(text: str) -> CSeq:
    m = _CSEQ_RE.fullmatch(text.strip(" \t"))
    if m is None:
        raise SipParseError(f"bad CSeq {text[:40]!r}")
    seq = int(m.group(1))
    if seq > MAX_CSEQ:
        raise SipParseError("CSeq out of range")
    return CSeq(seq, m.group(2))
