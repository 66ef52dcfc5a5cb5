"""One conference room's audio, one 20 ms frame at a time: pure, no clock, no sockets.

Every participant's last received frame goes in (`feed`); each `tick()` mixes them with
`mix_minus` (everyone hears the sum of the others, never themselves) and returns one frame
per participant. A muted participant is still heard *by* nobody but still hears everyone.
Tones (join, leave, an owner's action) are a cue mixed into what everyone hears, or into
one participant's frame only.

The adapter (`switch/services/conferences.py`) calls `tick()` from the media engine's
20 ms clock and hands each frame to the participant's endpoint; the benchmark
(`bench/bench_conference.py`) calls it in a loop.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np

from media.codecs import Pcm
from media.mixer import mix_minus

FRAME = 160  # 20 ms at 8 kHz
RATE = 8000
K = TypeVar("K", bound=Hashable)

_SILENCE = np.zeros(FRAME, np.int16)
_SILENCE.setflags(write=False)


def cue(freqs: tuple[float, ...], seconds: float = 0.15, amplitude: float = 0.2) -> Pcm:
    """A short tone sequence (each frequency `seconds` long), 8 kHz int16."""
    t = np.arange(int(RATE * seconds)) / RATE
    parts = [amplitude * 32767 * np.sin(2 * np.pi * f * t) for f in freqs]
    out: Pcm = np.concatenate(parts).astype(np.int16) if parts else _SILENCE.copy()
    return out


# Join: rising two tones; leave: falling (the common convention of bridges).
JOIN_CUE = cue((600.0, 900.0))
LEAVE_CUE = cue((900.0, 600.0))
ACTION_CUE = cue((1200.0,), 0.1)


@dataclass
class _Party:
    muted: bool = False
    frame: Pcm | None = None  # the last frame received since the previous tick
    cue: deque[Pcm] = field(default_factory=deque)  # tone frames for this party only


def _frames(pcm: Pcm) -> list[Pcm]:
    n = -(-len(pcm) // FRAME)
    padded = np.zeros(n * FRAME, np.int16)
    padded[: len(pcm)] = pcm
    return [padded[i * FRAME:(i + 1) * FRAME] for i in range(n)]


class RoomMixer(Generic[K]):
    """The audio of one room, keyed by participant."""

    def __init__(self) -> None:
        self._parties: dict[K, _Party] = {}
        self._cue: deque[Pcm] = deque()  # frames everyone hears

    def __len__(self) -> int:
        return len(self._parties)

    def __contains__(self, key: object) -> bool:
        return key in self._parties

    def add(self, key: K) -> None:
        self._parties.setdefault(key, _Party())

    def remove(self, key: K) -> None:
        self._parties.pop(key, None)

    def mute(self, key: K, muted: bool) -> None:
        party = self._parties.get(key)
        if party is not None:
            party.muted = muted

    def muted(self, key: K) -> bool:
        party = self._parties.get(key)
        return party is not None and party.muted

    def feed(self, key: K, pcm: Pcm | None) -> None:
        """The frame received from `key` this tick (None: nothing arrived, a gap)."""
        party = self._parties.get(key)
        if party is not None:
            party.frame = pcm if pcm is None or len(pcm) == FRAME else None

    def play_to_all(self, pcm: Pcm) -> None:
        """A cue everyone hears (join, leave), after any cue already queued."""
        self._cue.extend(_frames(pcm))

    def play_to(self, key: K, pcm: Pcm) -> None:
        """A cue only `key` hears (an owner's action confirmed)."""
        party = self._parties.get(key)
        if party is not None:
            party.cue.extend(_frames(pcm))

    def tick(self) -> dict[K, Pcm]:
        """Mix this tick's frames: for each participant, the others' sum plus the cues."""
        if not self._parties:
            self._cue.clear()
            return {}
        frames: dict[K | None, Pcm] = {}
        for key, party in self._parties.items():
            frames[key] = (_SILENCE if party.muted or party.frame is None else party.frame)
            party.frame = None
        if self._cue:
            # the cue is one more "participant" nobody is: everyone hears it
            frames[None] = self._cue.popleft()
        mixed = mix_minus(frames)
        out: dict[K, Pcm] = {}
        for key, party in self._parties.items():
            frame = mixed[key]
            if party.cue:
                extra = party.cue.popleft().astype(np.int32)
                frame = np.clip(frame.astype(np.int32) + extra, -32768, 32767).astype(np.int16)
            out[key] = frame
        return out


class RoomFeed:
    """What a participant's endpoint plays: the frames the room mixed for it (a `Source`
    of `media.player`). At most `depth` frames wait (older ones are dropped), so a clock
    that ran late never builds up delay."""

    interruptible = False
    finished = False

    def __init__(self, depth: int = 3) -> None:
        self._frames: deque[Pcm] = deque(maxlen=depth)

    def push(self, pcm: Pcm) -> None:
        self._frames.append(pcm)

    def read(self, n: int) -> Pcm:
        if self._frames and n == FRAME:
            return self._frames.popleft()
        return np.zeros(n, np.int16)
