"""RTP fixed header: parse and build (RFC 3550 section 5.1), sequence arithmetic (appendix A.1).

Pure: bytes in, frozen dataclasses out.  Malformed datagrams raise :class:`RtpError`, which
the socket adapter counts and drops (validate at the edge).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

RTP_VERSION = 2
HEADER_LEN = 12
_HDR = struct.Struct("!BBHII")


class RtpError(ValueError):
    """A datagram that is not a valid RTP packet (RFC 3550 section A.1 checks)."""


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One RTP packet (RFC 3550 section 5.1).  ``payload`` excludes padding."""

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension: tuple[int, bytes] | None = None  # (profile-defined 16 bits, data), section 5.3.1

    def build(self) -> bytes:
        """Serialise without padding."""
        if not 0 <= self.payload_type < 128:
            raise RtpError(f"payload type {self.payload_type} out of range")
        if len(self.csrcs) > 15:
            raise RtpError("more than 15 CSRCs")
        b0 = (RTP_VERSION << 6) | len(self.csrcs)
        if self.extension is not None:
            b0 |= 0x10
        b1 = (0x80 if self.marker else 0) | self.payload_type
        parts = [_HDR.pack(b0, b1, self.sequence & 0xFFFF, self.timestamp & 0xFFFFFFFF, self.ssrc)]
        parts.extend(struct.pack("!I", c) for c in self.csrcs)
        if self.extension is not None:
            profile, data = self.extension
            if len(data) % 4:
                raise RtpError("extension data must be a multiple of 4 octets")
            parts.append(struct.pack("!HH", profile, len(data) // 4) + data)
        parts.append(self.payload)
        return b"".join(parts)


def build_header(
    payload_type: int, sequence: int, timestamp: int, ssrc: int, marker: bool = False
) -> bytes:
    """The 12-octet fixed header alone: the hot path of the player (no dataclass)."""
    return _HDR.pack(
        0x80,
        (0x80 if marker else 0) | payload_type,
        sequence & 0xFFFF,
        timestamp & 0xFFFFFFFF,
        ssrc,
    )


def payload_offset(data: bytes) -> int:
    """Offset of the payload in a datagram already known to be RTP (CSRCs and extension)."""
    off = HEADER_LEN + 4 * (data[0] & 0x0F)
    if data[0] & 0x10:
        if len(data) < off + 4:
            raise RtpError("truncated header extension")
        off += 4 + 4 * ((data[off + 2] << 8) | data[off + 3])
    return off


def parse_rtp(data: bytes) -> RtpPacket:
    """Parse one datagram; raises :class:`RtpError` on anything RFC 3550 A.1 would reject."""
    if len(data) < HEADER_LEN:
        raise RtpError("shorter than the fixed header")
    b0, b1, seq, ts, ssrc = _HDR.unpack_from(data)
    if b0 >> 6 != RTP_VERSION:
        raise RtpError(f"version {b0 >> 6}")
    pt = b1 & 0x7F
    if 72 <= pt <= 76:  # section 5.1 / RFC 5761 section 4: these are RTCP SR/RR/...
        raise RtpError("RTCP packet type in the RTP payload type field")
    cc = b0 & 0x0F
    off = HEADER_LEN + 4 * cc
    if len(data) < off:
        raise RtpError("truncated CSRC list")
    csrcs = struct.unpack_from(f"!{cc}I", data, HEADER_LEN) if cc else ()
    extension: tuple[int, bytes] | None = None
    if b0 & 0x10:
        if len(data) < off + 4:
            raise RtpError("truncated header extension")
        profile, words = struct.unpack_from("!HH", data, off)
        end = off + 4 + 4 * words
        if len(data) < end:
            raise RtpError("truncated header extension data")
        extension = (profile, bytes(data[off + 4 : end]))
        off = end
    end = len(data)
    if b0 & 0x20:  # padding, section 5.1: last octet counts the padding octets
        pad = data[-1]
        if pad == 0 or off + pad > end:
            raise RtpError("bad padding length")
        end -= pad
    return RtpPacket(
        payload_type=pt,
        sequence=seq,
        timestamp=ts,
        ssrc=ssrc,
        payload=bytes(data[off:end]),
        marker=bool(b1 & 0x80),
        csrcs=tuple(csrcs),
        extension=extension,
    )


def seq_diff(a: int, b: int) -> int:
    """Signed distance a - b on the 16-bit sequence circle (RFC 3550 A.1)."""
    return ((a - b + 0x8000) & 0xFFFF) - 0x8000


def ts_diff(a: int, b: int) -> int:
    """Signed distance a - b on the 32-bit timestamp circle."""
    return ((a - b + 0x80000000) & 0xFFFFFFFF) - 0x80000000
