"""What a relay leg does on hold: hold its phone's packets back, send music on the clock.

The adapter half of :mod:`media.hold` (which holds the rules and the RTP stream): a mixin of
:class:`media.udp.RelayLeg`, kept apart so the per-packet path stays short to read.  The
music goes out from the leg's own socket to its phone, one packet per 20 ms tick of the
process's :class:`~media.clock.MediaClock`, encoded in the leg's negotiated codec.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from media.hold import HoldStream, LegHold
from media.latch import Addr
from media.player import MusicOnHold

if TYPE_CHECKING:
    from media.udp import MediaEngine


class HoldingLeg:
    """Hold behaviour of a relay leg (the attributes below are the leg's own)."""

    _engine: MediaEngine
    _hold: LegHold | None
    codec: str | None
    payload_type: int | None
    dest: Addr | None
    transport: asyncio.DatagramTransport | None
    tx_packets: int
    tx_bytes: int

    def _configure(self) -> None:
        raise NotImplementedError

    @property
    def holding_back(self) -> bool:
        """True while packets from this leg's phone are not forwarded (a party holds)."""
        return self._hold is not None and self._hold.muted

    @property
    def playing_music(self) -> bool:
        return self._hold is not None and self._hold.tick is not None

    def _mute(self, muted: bool) -> None:
        self._hold = self._hold or LegHold()
        self._hold.muted = muted
        self._configure()

    def _play_music(self, music: MusicOnHold | None) -> None:
        """Send ``music`` to this leg's phone every tick (None: stop)."""
        h = self._hold
        if h is not None and h.tick is not None:
            self._engine.clock.remove(h.tick)
            h.tick = None
        if music is not None and self.codec is not None and self.payload_type is not None:
            h = self._hold = h or LegHold()
            h.stream = h.stream or HoldStream()
            h.stream.start(music, self.codec, self.payload_type)
            h.tick = self._engine.clock.add(self._send_music)

    def _send_music(self, now: float) -> None:
        h = self._hold
        packet = h.stream.packet(now) if h is not None and h.stream is not None else None
        if packet is not None and self.dest is not None and self.transport is not None:
            self.transport.sendto(packet, self.dest)
            self.tx_packets += 1
            self.tx_bytes += len(packet)
