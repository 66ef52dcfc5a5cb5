"""DTMF as RTP telephone-events (RFC 4733): payload format, sender and receiver.

Pure.  The receiver delivers each digit once, when its end is known (E bit, section 2.5.1.3),
with its duration; lost end packets are covered by a timeout and by the start of the next
event.  The sender produces one event packet per tick with a growing duration and repeats
the final packet three times (section 2.5.1.4).
"""

from __future__ import annotations

import logging
import math
import struct
from collections import deque
from dataclasses import dataclass
from enum import Enum

log = logging.getLogger(__name__)

#: RFC 4733 section 3.2, table 7: events 0-15
EVENT_CODES = "0123456789*#ABCD"


class DtmfSource(Enum):
    RFC4733 = "rfc4733"
    INBAND = "inband"


@dataclass(frozen=True, slots=True)
class DtmfDigit:
    """A digit the phone pressed, delivered once.  ``started`` is the local clock (seconds)."""

    digit: str
    duration_ms: int
    source: DtmfSource
    started: float = 0.0


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """The 4-octet payload of RFC 4733 section 2.3."""

    event: int
    end: bool
    volume: int  # 0..63, -dBm0
    duration: int  # timestamp units

    def build(self) -> bytes:
        return struct.pack(
            "!BBH",
            self.event,
            (0x80 if self.end else 0) | (self.volume & 0x3F),
            self.duration & 0xFFFF,
        )


class DtmfError(ValueError):
    pass


def parse_event(payload: bytes) -> TelephoneEvent:
    """Parse the first event of a payload (section 2.3; redundancy per 2.5.1.5 is not used)."""
    if len(payload) < 4:
        raise DtmfError("telephone-event payload shorter than 4 octets")
    ev, flags, duration = struct.unpack_from("!BBH", payload)
    return TelephoneEvent(ev, bool(flags & 0x80), flags & 0x3F, duration)


def digit_to_event(digit: str) -> int:
    idx = EVENT_CODES.find(digit.upper())
    if idx < 0 or len(digit) != 1:
        raise DtmfError(f"not a DTMF digit: {digit!r}")
    return idx


@dataclass(frozen=True, slots=True)
class EventPacket:
    """What the sender wants transmitted on one tick."""

    payload: bytes
    timestamp: int  # the event's start timestamp (section 2.5.1.2)
    marker: bool  # set on the first packet of an event (section 2.5.1.1)


class DtmfSender:
    """Turns queued digits into per-tick telephone-event packets (section 2.5.1)."""

    def __init__(self, samples_per_tick: int = 160, clock_rate: int = 8000) -> None:
        self.samples_per_tick = samples_per_tick
        self.clock_rate = clock_rate
        # one entry per tick: (event, duration, end, first) or None for an audio gap
        self._plan: deque[tuple[int, int, bool, bool] | None] = deque()
        self._event_ts = 0

    @property
    def busy(self) -> bool:
        return bool(self._plan)

    def queue(self, digits: str, duration_ms: int = 100, gap_ms: int = 60) -> None:
        ticks = max(1, math.ceil(duration_ms * self.clock_rate / 1000 / self.samples_per_tick))
        gap = max(1, math.ceil(gap_ms * self.clock_rate / 1000 / self.samples_per_tick))
        for d in digits:
            ev = digit_to_event(d)
            for k in range(1, ticks + 1):
                self._plan.append((ev, k * self.samples_per_tick, k == ticks, k == 1))
            total = ticks * self.samples_per_tick
            self._plan.extend([(ev, total, True, False)] * 2)  # 3 end packets in all
            self._plan.extend([None] * gap)

    def tick(self, timestamp: int, volume: int = 10) -> EventPacket | None:
        """The event packet to send now, or None (send audio)."""
        if not self._plan:
            return None
        step = self._plan.popleft()
        if step is None:
            return None
        ev, duration, end, first = step
        if first:
            self._event_ts = timestamp
        payload = TelephoneEvent(ev, end, volume, duration).build()
        return EventPacket(payload, self._event_ts, first)


class DtmfReceiver:
    """Deduplicates telephone-event packets into digits (section 2.5.2)."""

    def __init__(self, clock_rate: int = 8000, end_timeout: float = 1.0) -> None:
        self.clock_rate = clock_rate
        self.end_timeout = end_timeout
        self._ts: int | None = None  # timestamp of the current event
        self._event = 0
        self._duration = 0
        self._ended = True
        self._started = 0.0
        self._last_seen = 0.0
        self._done: deque[int] = deque(maxlen=16)  # timestamps of completed events

    def _deliver(self) -> DtmfDigit | None:
        self._ended = True
        if self._ts is not None:
            self._done.append(self._ts)
        if self._event >= len(EVENT_CODES):
            log.debug("ignoring non-DTMF telephone-event %d", self._event)
            return None
        ms = self._duration * 1000 // self.clock_rate
        return DtmfDigit(EVENT_CODES[self._event], ms, DtmfSource.RFC4733, self._started)

    def receive(self, timestamp: int, payload: bytes, now: float) -> list[DtmfDigit]:
        """One telephone-event packet in; zero, one or two digits out."""
        ev = parse_event(payload)
        out: list[DtmfDigit] = []
        if timestamp == self._ts:
            if self._ended:
                return out  # retransmitted end packet (2.5.1.4)
            self._duration = max(self._duration, ev.duration)
            self._last_seen = now
            if ev.end:
                d = self._deliver()
                if d:
                    out.append(d)
            return out
        if timestamp in self._done:
            return out  # a stray retransmission of an older event
        if not self._ended:  # a new event started: the old one's end was lost
            d = self._deliver()
            if d:
                out.append(d)
        self._ts, self._event, self._duration = timestamp, ev.event, ev.duration
        self._ended = False
        self._started = now - ev.duration / self.clock_rate
        self._last_seen = now
        if ev.end:
            d = self._deliver()
            if d:
                out.append(d)
        return out

    def check_timeout(self, now: float) -> DtmfDigit | None:
        """Deliver an event whose end packets were all lost."""
        if not self._ended and now - self._last_seen > self.end_timeout:
            return self._deliver()
        return None
