"""Symmetric RTP / latching (RFC 4961 practice, "comedia" of RFC 4145 section 4.1 applied to RTP).

A phone behind NAT advertises a private address in its SDP; its media really comes from the
NAT's public mapping.  We send to where its media comes from ("latch"), with a guard against
hijacking by a third party:

- a source equal to the SDP address latches at once (it is the address we were told);
- any other source must first send ``probation`` packets in sequence (RFC 3550 A.1 uses the
  same idea, MIN_SEQUENTIAL) before we latch to it;
- once latched, other sources are dropped while the latched one is alive; we re-latch only
  after it has been silent for ``relatch_after`` seconds (a NAT rebinding or a phone roaming).

Pure: the caller passes the source address, the RTP sequence number and ``now``.
"""

from __future__ import annotations

import logging
from enum import Enum

log = logging.getLogger(__name__)

Addr = tuple[str, int]


class LatchState(Enum):
    WAITING = "waiting"  # nothing latched yet; sending to the SDP address
    LATCHED = "latched"


class Latch:
    def __init__(self, probation: int = 3, relatch_after: float = 2.0) -> None:
        self.probation = probation
        self.relatch_after = relatch_after
        self.state = LatchState.WAITING
        self.expected: Addr | None = None
        self.latched: Addr | None = None
        self.last_seen = 0.0
        self.rejected = 0
        self._cand: Addr | None = None
        self._cand_seq = 0
        self._cand_count = 0

    @property
    def target(self) -> Addr | None:
        """Where to send: the latched source, else the address from the SDP."""
        return self.latched if self.latched is not None else self.expected

    def set_expected(self, addr: Addr) -> None:
        """A new SDP address (offer/answer or re-INVITE): learn again."""
        if addr != self.expected:
            self.expected = addr
            self.latched = None
            self.state = LatchState.WAITING
            self._cand = None

    def check(self, addr: Addr, seq: int, now: float) -> bool:
        """Should a packet from ``addr`` be accepted?  Latches as a side effect."""
        if addr == self.latched:
            self.last_seen = now
            return True
        if self.latched is not None and now - self.last_seen < self.relatch_after:
            self.rejected += 1
            return False  # somebody else while our peer is alive: hijack guard
        if addr == self.expected:
            return self._latch(addr, now)
        if addr == self._cand and seq == (self._cand_seq + 1) & 0xFFFF:
            self._cand_count += 1
        else:
            self._cand, self._cand_count = addr, 1
        self._cand_seq = seq
        if self._cand_count >= self.probation:
            return self._latch(addr, now)
        self.rejected += 1
        return False

    def _latch(self, addr: Addr, now: float) -> bool:
        log.info("latched %s -> %s:%d", self.state.value, addr[0], addr[1])
        self.latched, self.last_seen = addr, now
        self.state = LatchState.LATCHED
        self._cand = None
        return True
