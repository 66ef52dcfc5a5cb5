"""Reception statistics (RFC 3550 appendix A.1, A.3, A.8) and the figures a call reads at its end.

Pure: the caller passes the arrival time (``now``, seconds) with each packet.
"""

from __future__ import annotations

from dataclasses import dataclass

from media.rtp import seq_diff

MAX_DROPOUT = 3000  # A.1
MAX_MISORDER = 100  # A.1


@dataclass(frozen=True, slots=True)
class RtpStats:
    """What a call record needs: own counters plus what the peer said in its RTCP (section 6.4).

    ``packets_lost``/``jitter_ms`` are what *we* measured on the stream we receive;
    ``remote_*`` are the peer's figures about the stream we send (from its SR/RR report
    block); ``rtt_ms`` comes from LSR/DLSR (section 6.4.1).  ``None`` when never reported.
    """

    packets_sent: int = 0
    bytes_sent: int = 0
    packets_received: int = 0
    bytes_received: int = 0
    packets_lost: int = 0
    fraction_lost: float = 0.0
    jitter_ms: float = 0.0
    remote_packets_lost: int | None = None
    remote_fraction_lost: float | None = None
    remote_jitter_ms: float | None = None
    rtt_ms: float | None = None
    ssrc_changes: int = 0
    dropped: int = 0  # malformed, foreign-source or late packets


class ReceptionStats:
    """Per-source counters: extended highest sequence, loss, interarrival jitter."""

    def __init__(self, clock_rate: int = 8000) -> None:
        self.clock_rate = clock_rate
        self.ssrc: int | None = None
        self.ssrc_changes = 0
        self._reset(0)
        self.received = 0
        self.octets = 0

    def _reset(self, seq: int) -> None:
        self.base_seq = seq
        self.max_seq = seq
        self.cycles = 0
        self.bad_seq = 0x10000 + 1
        self.received_prior = 0
        self.expected_prior = 0
        self.jitter = 0.0  # timestamp units, A.8
        self._transit: float | None = None
        self._received_since_reset = 0

    def update(self, ssrc: int, seq: int, rtp_ts: int, payload_len: int, now: float) -> bool:
        """Account one packet; False if A.1 says it is a stray (very late or a big jump)."""
        if ssrc != self.ssrc:
            if self.ssrc is not None:
                self.ssrc_changes += 1
            self.ssrc = ssrc
            self._reset(seq)
            self.max_seq = (seq - 1) & 0xFFFF
        udelta = (seq - self.max_seq) & 0xFFFF
        if udelta < MAX_DROPOUT:
            if seq < self.max_seq:
                self.cycles += 0x10000
            self.max_seq = seq
        elif udelta <= 0x10000 - MAX_MISORDER:
            if seq == self.bad_seq:  # two sequential packets after a jump: the source restarted
                self._reset(seq)
            else:
                self.bad_seq = (seq + 1) & 0xFFFF
                return False
        # else: duplicate or reordered packet, counted below
        self.received += 1
        self._received_since_reset += 1
        self.octets += payload_len
        arrival = now * self.clock_rate  # A.8, in timestamp units
        transit = arrival - rtp_ts
        if self._transit is not None:
            d = abs(transit - self._transit)
            if d < 0x80000000:
                self.jitter += (d - self.jitter) / 16.0
        self._transit = transit
        return True

    @property
    def extended_max(self) -> int:
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        return self.extended_max - self.base_seq + 1 if self.ssrc is not None else 0

    @property
    def lost(self) -> int:
        """Cumulative number lost, A.3 (may be negative with duplicates; clamped to 0)."""
        return max(0, self.expected - self._received_since_reset)

    def interval_fraction(self) -> tuple[int, float]:
        """Fraction lost since the previous call (A.3), as 8-bit fixed point and as a float."""
        expected = self.expected
        exp_int = expected - self.expected_prior
        self.expected_prior = expected
        rec_int = self._received_since_reset - self.received_prior
        self.received_prior = self._received_since_reset
        lost_int = exp_int - rec_int
        if exp_int == 0 or lost_int <= 0:
            return 0, 0.0
        fixed = (lost_int << 8) // exp_int
        return min(fixed, 255), lost_int / exp_int

    @property
    def jitter_ms(self) -> float:
        return self.jitter * 1000.0 / self.clock_rate


def is_newer(seq: int, ref: int) -> bool:
    """True when ``seq`` follows ``ref`` on the sequence circle."""
    return seq_diff(seq, ref) > 0
