"""Which source may send a stream its media: strict source with symmetric-RTP learning.

RFC 4961 (symmetric RTP) says a phone sends from the address it receives on, the one its SDP
declares; a phone behind NAT declares a private address and its media really comes from the
NAT's public mapping, so that mapping has to be learned from the packets ("latching", the
"comedia" idea of RFC 4145 section 4.1 applied to RTP).  Learning from packets is exactly what
lets a third party that guessed a relay port take a call's audio (the "RTP bleed" class of
attacks), so learning is narrow and, once media flows, locked:

- nothing is accepted before the SDP address is known (``set_expected``);
- a packet from the declared address (IP and port) is accepted at once and locks: the
  declared address is preferred, it even replaces a source learned by the rules below;
- another source may be *learned* (a phone whose media does not come from its SDP address:
  NAT, several interfaces) only after ``probation`` packets in a row with one SSRC and
  consecutive sequence numbers (RFC 3550 A.1 MIN_SEQUENTIAL), and only when plausible:

  * the signalling came from a known host (``nat_host``, the source of the INVITE/200):
    only a source on that IP -- the phone's own NAT;
  * else it must be the *only* sender: no other source sent within the last ``grace``
    seconds (two rival senders, the phone and a stranger, get neither latched: no audio
    rather than audio to a stranger); and, when the declared address is reachable (not
    RFC 1918, RFC 6598 shared, link-local, unspecified), only once the declared address
    itself stayed silent for ``grace`` seconds since the first packet -- a phone that can
    send from where it said it would gets that chance first;

- once locked, every other source is dropped and counted.  A locked source is replaced only by
  a new SDP address (a re-INVITE: ``set_expected`` with a different address), by the declared
  address, or -- for a *learned* source -- when it has been silent for ``relatch_after``
  seconds and a new, plausible source passes probation (a NAT rebinding, a roaming phone).  A
  lock on the declared address itself is never given up to another source.

Pure: the caller passes the source address, the RTP sequence number, SSRC and ``now``.
"""

from __future__ import annotations

import ipaddress
import logging
from enum import Enum

log = logging.getLogger(__name__)

Addr = tuple[str, int]

# Addresses a packet cannot come from over the Internet: an SDP that declares one is behind a
# NAT (RFC 1918, RFC 6598 carrier-grade NAT, RFC 3927 link-local, RFC 4193 ULA, unspecified).
# Loopback is not in the list: a declared loopback address is reachable (same host).
_UNROUTABLE = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16",
        "0.0.0.0/8", "fc00::/7", "fe80::/10", "::/128",
    )
)
_MAX_CANDIDATES = 8  # sources in probation at once; more are dropped without being tracked


def unroutable(host: str) -> bool:
    """True for an address a phone can only have behind a NAT (or a name we cannot judge)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return True  # a host name in c=: we cannot compare sources with it; treat as NAT
    return any(ip.version == net.version and ip in net for net in _UNROUTABLE)


class LatchState(Enum):
    WAITING = "waiting"  # no source locked; sending to the SDP address
    LATCHED = "latched"  # a source is locked


class Latch:
    def __init__(
        self,
        probation: int = 4,
        relatch_after: float = 5.0,
        grace: float = 1.0,
    ) -> None:
        self.probation = probation
        self.relatch_after = relatch_after  # silence of a learned source before re-learning
        self.grace = grace  # silence of a reachable declared address before learning another
        self.state = LatchState.WAITING
        self.expected: Addr | None = None
        self.nat_host: str | None = None
        self.latched: Addr | None = None
        self.last_seen = 0.0
        self.rejected = 0  # packets from a source not accepted (foreign or in probation)
        self._unroutable = False
        self._first: float | None = None  # first packet since the SDP address was set
        # sources in probation: addr -> (ssrc, last sequence number, count, last seen)
        self._cands: dict[Addr, tuple[int, int, int, float]] = {}

    @property
    def target(self) -> Addr | None:
        """Where to send: the locked source, else the address from the SDP."""
        return self.latched if self.latched is not None else self.expected

    def set_expected(self, addr: Addr, nat_host: str | None = None) -> None:
        """A new SDP address (offer/answer or re-INVITE): learn again.

        The same address again (a session refresh, a hold/resume) keeps the lock, so a
        periodic re-INVITE does not reopen a learning window.
        """
        if addr == self.expected and nat_host == self.nat_host:
            return
        self.expected, self.nat_host = addr, nat_host
        self._unroutable = unroutable(addr[0])
        self._first = None
        self._cands.clear()
        if self.latched is not None:
            log.info("latch %s -> %s: new SDP address %s:%d", self.state.value,
                     LatchState.WAITING.value, *addr)
        self.latched = None
        self.state = LatchState.WAITING

    def check(self, addr: Addr, seq: int, now: float, ssrc: int = 0) -> bool:
        """Should a packet from ``addr`` be accepted?  Latches as a side effect."""
        if addr == self.latched:
            self.last_seen = now
            return True
        exp = self.expected
        if exp is None:
            self.rejected += 1
            return False  # no SDP address yet: nobody may claim the stream
        if self._first is None:
            self._first = now
        if addr == exp:
            return self._latch(addr, now, "declared address")
        latched = self.latched
        if latched is not None and (latched == exp or now - self.last_seen < self.relatch_after):
            self.rejected += 1
            return False  # a stranger while the stream is locked
        cand = self._cands.get(addr)
        if cand is None and len(self._cands) >= _MAX_CANDIDATES:
            self._prune(now)
            if len(self._cands) >= _MAX_CANDIDATES:
                self.rejected += 1
                return False  # a spray from many ports: track none of it
        if cand is not None and cand[0] == ssrc and seq == (cand[1] + 1) & 0xFFFF:
            count = cand[2] + 1
        else:
            count = 1
        self._cands[addr] = (ssrc, seq, count, now)
        if count >= self.probation and self._plausible(addr, now):
            return self._latch(addr, now, f"learned after {count} packets")
        self.rejected += 1
        return False

    def rtcp_allowed(self, addr: Addr, learned: Addr | None) -> bool:
        """May RTCP from ``addr`` be taken (and its source become the RTCP destination)?

        ``learned`` is the RTCP source already accepted, if any.  RTCP goes to the RTP port + 1
        (RFC 3550 section 11): with media from the declared address, RTCP must come from the
        declared port + 1.  With a *learned* RTP source (a NAT), RTCP has its own mapping on
        the same IP: the first one from that IP is learned, then only it.
        """
        exp, latched = self.expected, self.latched
        if exp is None:
            return False
        if latched is None or latched == exp:
            return addr == (exp[0], exp[1] + 1)
        if addr[0] != latched[0]:
            return False
        return learned is None or learned[0] != latched[0] or addr == learned

    def _plausible(self, addr: Addr, now: float) -> bool:
        """May ``addr`` (not the declared address) be learned?  See the module doc."""
        if self.nat_host is not None:
            return addr[0] == self.nat_host
        since = now - self.grace
        if any(a != addr and c[3] >= since for a, c in self._cands.items()):
            return False  # a rival sender: the phone and a stranger cannot be told apart
        assert self._first is not None
        return self._unroutable or now - self._first >= self.grace

    def _prune(self, now: float) -> None:
        since = now - self.grace
        for a in [a for a, c in self._cands.items() if c[3] < since]:
            del self._cands[a]

    def _latch(self, addr: Addr, now: float, why: str) -> bool:
        log.info("latch %s -> %s on %s:%d (%s)", self.state.value, LatchState.LATCHED.value,
                 addr[0], addr[1], why)
        self.latched, self.last_seen = addr, now
        self.state = LatchState.LATCHED
        self._cands.clear()
        return True
