"""RTCP sender and receiver reports, SDES CNAME and BYE (RFC 3550 section 6).

Pure: build compound packets (section 6.1: SR or RR first, then SDES with a CNAME) and
parse them into frozen dataclasses.  Wall-clock time is an argument.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

SR, RR, SDES, BYE = 200, 201, 202, 203
NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900-01-01 to 1970-01-01
_RB = struct.Struct("!IIIIII")


class RtcpError(ValueError):
    """Malformed RTCP (section 6.4 / A.2 validity checks)."""


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """One reception report block (section 6.4.1)."""

    ssrc: int
    fraction_lost: int  # 8-bit fixed point
    cumulative_lost: int  # 24-bit signed
    highest_seq: int  # extended
    jitter: int  # timestamp units
    lsr: int  # middle 32 bits of the last SR's NTP time
    dlsr: int  # 1/65536 s


@dataclass(frozen=True, slots=True)
class SenderInfo:
    ntp_timestamp: int  # 64-bit NTP
    rtp_timestamp: int
    packet_count: int
    octet_count: int


@dataclass(frozen=True, slots=True)
class RtcpReport:
    """An SR (``sender`` set) or an RR; section 6.4."""

    ssrc: int
    sender: SenderInfo | None
    blocks: tuple[ReportBlock, ...]


@dataclass(frozen=True, slots=True)
class RtcpBye:
    ssrcs: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class RtcpSdes:
    ssrc: int
    cname: str


RtcpPacket = RtcpReport | RtcpBye | RtcpSdes


def ntp_time(unix_seconds: float) -> int:
    """64-bit NTP timestamp (section 4)."""
    secs = int(unix_seconds) + NTP_EPOCH_OFFSET
    frac = int((unix_seconds % 1.0) * (1 << 32)) & 0xFFFFFFFF
    return ((secs & 0xFFFFFFFF) << 32) | frac


def ntp_middle(ntp: int) -> int:
    """The middle 32 bits used as LSR (section 6.4.1)."""
    return (ntp >> 16) & 0xFFFFFFFF


def _header(count: int, pt: int, body_len: int) -> bytes:
    if body_len % 4:
        raise RtcpError("RTCP body must be 32-bit aligned")
    return struct.pack("!BBH", 0x80 | count, pt, (body_len + 4) // 4 - 1)


def _blocks(blocks: tuple[ReportBlock, ...]) -> bytes:
    out = []
    for b in blocks:
        lost = b.cumulative_lost
        lost = max(-0x800000, min(0x7FFFFF, lost)) & 0xFFFFFF
        out.append(
            _RB.pack(
                b.ssrc,
                (b.fraction_lost & 0xFF) << 24 | lost,
                b.highest_seq & 0xFFFFFFFF,
                b.jitter & 0xFFFFFFFF,
                b.lsr & 0xFFFFFFFF,
                b.dlsr & 0xFFFFFFFF,
            )
        )
    return b"".join(out)


def build_report(report: RtcpReport) -> bytes:
    """SR (section 6.4.1) when ``report.sender`` is set, else RR (section 6.4.2)."""
    if len(report.blocks) > 31:
        raise RtcpError("at most 31 report blocks")
    blocks = _blocks(report.blocks)
    if report.sender is not None:
        s = report.sender
        body = (
            struct.pack(
                "!IQIII",
                report.ssrc,
                s.ntp_timestamp,
                s.rtp_timestamp & 0xFFFFFFFF,
                s.packet_count & 0xFFFFFFFF,
                s.octet_count & 0xFFFFFFFF,
            )
            + blocks
        )
        return _header(len(report.blocks), SR, len(body)) + body
    body = struct.pack("!I", report.ssrc) + blocks
    return _header(len(report.blocks), RR, len(body)) + body


def build_sdes(ssrc: int, cname: str) -> bytes:
    """SDES with one chunk holding a CNAME item (section 6.5.1), null-terminated, padded."""
    text = cname.encode()[:255]
    chunk = struct.pack("!IBB", ssrc, 1, len(text)) + text + b"\x00"
    chunk += b"\x00" * (-len(chunk) % 4)
    return _header(1, SDES, len(chunk)) + chunk


def build_bye(ssrcs: tuple[int, ...]) -> bytes:
    body = b"".join(struct.pack("!I", s) for s in ssrcs)
    return _header(len(ssrcs), BYE, len(body)) + body


def parse_rtcp(data: bytes) -> list[RtcpPacket]:
    """Parse a compound packet; unknown packet types are skipped (section 6.1)."""
    out: list[RtcpPacket] = []
    off = 0
    if len(data) < 4 or data[1] not in (SR, RR):
        raise RtcpError("compound RTCP must start with SR or RR (A.2)")
    while off < len(data):
        if len(data) - off < 4:
            raise RtcpError("truncated RTCP header")
        b0, pt, length = struct.unpack_from("!BBH", data, off)
        if b0 >> 6 != 2:
            raise RtcpError("RTCP version")
        end = off + 4 * (length + 1)
        if end > len(data):
            raise RtcpError("RTCP length beyond datagram")
        count = b0 & 0x1F
        body = off + 4
        if pt in (SR, RR):
            ssrc = struct.unpack_from("!I", data, body)[0]
            pos = body + 4
            sender = None
            if pt == SR:
                ntp, rtp_ts, pc, oc = struct.unpack_from("!QIII", data, pos)
                sender = SenderInfo(ntp, rtp_ts, pc, oc)
                pos += 20
            if pos + 24 * count > end:
                raise RtcpError("report blocks beyond packet length")
            blocks = []
            for i in range(count):
                s, fl, hs, jit, lsr, dlsr = _RB.unpack_from(data, pos + 24 * i)
                lost = fl & 0xFFFFFF
                if lost & 0x800000:
                    lost -= 0x1000000
                blocks.append(ReportBlock(s, fl >> 24, lost, hs, jit, lsr, dlsr))
            out.append(RtcpReport(ssrc, sender, tuple(blocks)))
        elif pt == SDES and count:
            ssrc = struct.unpack_from("!I", data, body)[0]
            pos = body + 4
            cname = ""
            while pos + 2 <= end and data[pos] != 0:
                item, ln = data[pos], data[pos + 1]
                if item == 1:
                    cname = data[pos + 2 : pos + 2 + ln].decode(errors="replace")
                pos += 2 + ln
            out.append(RtcpSdes(ssrc, cname))
        elif pt == BYE:
            out.append(RtcpBye(struct.unpack_from(f"!{count}I", data, body)))
        off = end
    return out


def rtt_seconds(block: ReportBlock, arrival_unix: float) -> float | None:
    """Round-trip time from LSR/DLSR (section 6.4.1), or None when no SR was received yet."""
    if block.lsr == 0:
        return None
    a = ntp_middle(ntp_time(arrival_unix))
    rtt = (a - block.lsr - block.dlsr) & 0xFFFFFFFF
    if rtt > 0x80000000:
        return None
    return rtt / 65536.0
