"""Hold in a relayed call, sans-IO: who hears what, and the music's own RTP stream.

When one party of an anchored call puts it on hold (an offer with ``sendonly``/``inactive``
or ``c=0.0.0.0``, RFC 3264 section 8.4) the relay stops bridging the two phones: the holder
asked not to receive (the switch answered it ``recvonly``/``inactive``, section 6.1), and the
other party hears music on hold instead of whatever the holder still sends.  On resume the
relay goes back to plain forwarding.

- :class:`HoldState` and :data:`TRANSITIONS`: the relay's hold state machine (parties ``A``
  and ``B``, each may hold independently);
- :func:`plan_for`: what each direction does in a state (:class:`HoldPlan`);
- :class:`HoldStream`: the RTP packets of the music a relay leg sends its phone, with their
  own SSRC, a continuing sequence number, a timestamp that follows the media clock, and the
  marker bit on the first packet after every switch to music (RFC 3551 section 4.1, RFC 3550
  section 5.1).  Frames come pre-encoded from the shared :class:`~media.player.MusicOnHold`
  (encoded once per codec for every listener of the process).

Pure: time is the media clock's nominal tick time, passed in.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from enum import Enum

from media.codecs import G711, get_codec
from media.player import MohListener, MusicOnHold
from media.rtp import build_header

log = logging.getLogger(__name__)

RATE = 8000
FRAME = 160  # samples per 20 ms tick at 8 kHz


class Party(Enum):
    A = "a"  # the relay's A leg faces the caller
    B = "b"  # the B leg faces the callee


class HoldState(Enum):
    TALKING = "talking"
    HELD_BY_A = "held-by-a"
    HELD_BY_B = "held-by-b"
    HELD_BY_BOTH = "held-by-both"


class HoldTransitionError(ValueError):
    """A (state, party, holds) triple the table does not know (a bug: the table is total)."""


#: (state, party that sent an offer, that offer is a hold) -> next state.  A party that
#: holds again, or resumes while not holding, stays where it is (RFC 3264 section 8.4 lets
#: an offer repeat the current direction).
TRANSITIONS: dict[tuple[HoldState, Party, bool], HoldState] = {
    (HoldState.TALKING, Party.A, True): HoldState.HELD_BY_A,
    (HoldState.TALKING, Party.A, False): HoldState.TALKING,
    (HoldState.TALKING, Party.B, True): HoldState.HELD_BY_B,
    (HoldState.TALKING, Party.B, False): HoldState.TALKING,
    (HoldState.HELD_BY_A, Party.A, True): HoldState.HELD_BY_A,
    (HoldState.HELD_BY_A, Party.A, False): HoldState.TALKING,
    (HoldState.HELD_BY_A, Party.B, True): HoldState.HELD_BY_BOTH,
    (HoldState.HELD_BY_A, Party.B, False): HoldState.HELD_BY_A,
    (HoldState.HELD_BY_B, Party.A, True): HoldState.HELD_BY_BOTH,
    (HoldState.HELD_BY_B, Party.A, False): HoldState.HELD_BY_B,
    (HoldState.HELD_BY_B, Party.B, True): HoldState.HELD_BY_B,
    (HoldState.HELD_BY_B, Party.B, False): HoldState.TALKING,
    (HoldState.HELD_BY_BOTH, Party.A, True): HoldState.HELD_BY_BOTH,
    (HoldState.HELD_BY_BOTH, Party.A, False): HoldState.HELD_BY_B,
    (HoldState.HELD_BY_BOTH, Party.B, True): HoldState.HELD_BY_BOTH,
    (HoldState.HELD_BY_BOTH, Party.B, False): HoldState.HELD_BY_A,
}


def next_state(state: HoldState, party: Party, holds: bool) -> HoldState:
    try:
        new = TRANSITIONS[(state, party, holds)]
    except KeyError:
        raise HoldTransitionError(f"no hold transition from {state} for {party} {holds}") from None
    if new is not state:
        log.info("relay hold %s -> %s (%s %s)", state.value, new.value, party.value,
                 "holds" if holds else "resumes")
    return new


@dataclass(frozen=True, slots=True)
class HoldPlan:
    """What the relay does in one hold state."""

    forward_a_to_b: bool  # packets from A's phone reach B's phone
    forward_b_to_a: bool
    music_to_a: bool  # the A leg sends music on hold to A's phone
    music_to_b: bool


_PLANS = {
    HoldState.TALKING: HoldPlan(True, True, False, False),
    HoldState.HELD_BY_A: HoldPlan(False, False, False, True),
    HoldState.HELD_BY_B: HoldPlan(False, False, True, False),
    HoldState.HELD_BY_BOTH: HoldPlan(False, False, False, False),  # neither wants to receive
}


def plan_for(state: HoldState) -> HoldPlan:
    return _PLANS[state]


@dataclass(slots=True)
class LegHold:
    """A relay leg's hold state: whether it holds its phone's packets back, and the music it
    sends (its RTP stream and the media clock's callback handle while it plays)."""

    muted: bool = False
    stream: HoldStream | None = None
    tick: int | None = None


class HoldStream:
    """The music-on-hold RTP stream of one relay leg.

    Its SSRC is its own (the forwarded phone's stream is not ours to continue), chosen at
    random like the initial sequence number and timestamp (RFC 3550 section 5.1).  Across
    several holds of one call the sequence number continues and the timestamp keeps
    following the media clock, so a gap in sending is a gap in time, never a jump backwards.
    """

    def __init__(self, rng: random.Random | None = None) -> None:
        r = rng or random.SystemRandom()
        self.ssrc = r.getrandbits(32)
        self._seq = r.getrandbits(16)
        self._ts0 = r.getrandbits(32)
        self._t0: float | None = None  # the media-clock time of timestamp _ts0
        self._listener: MohListener | None = None
        self._codec = "PCMU"
        self._payload_type = 0
        self._marker = False
        self.sent_packets = 0
        self.sent_octets = 0

    def start(self, music: MusicOnHold, codec: str, payload_type: int) -> None:
        """Begin (or restart) the music: the next packet carries the marker bit."""
        get_codec(codec)  # KeyError names an unknown codec
        self._listener = music.listener()
        self._codec, self._payload_type = codec.upper(), payload_type
        self._marker = True

    def packet(self, now: float) -> bytes | None:
        """The datagram for the tick at media-clock time ``now`` (None before ``start``)."""
        listener = self._listener
        if listener is None:
            return None
        if self._t0 is None:
            self._t0 = now
        ts = self._ts0 + round((now - self._t0) * RATE)
        codec = get_codec(self._codec)
        if isinstance(codec, G711):
            payload = listener.next_payload(codec.name)  # a slice of the shared encoding
        else:
            payload = codec.encode(listener.read(FRAME))
        seq = self._seq
        self._seq = (seq + 1) & 0xFFFF
        marker, self._marker = self._marker, False
        self.sent_packets += 1
        self.sent_octets += len(payload)
        return build_header(self._payload_type, seq, ts, self.ssrc, marker) + payload
