"""Recording what a phone says (voicemail, greetings), stopping on DTMF, silence or length.

Pure state machine: ``feed`` frames, ``stop`` on a digit; when finished, :meth:`Recorder.save`
writes the WAV atomically (temporary file, fsync, rename: see :func:`media.audio.atomic_write`)
so that a crash never leaves half a message looking like a good one.  The socket adapter
runs ``save`` off the event loop.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum

import numpy as np

from media.audio import RATE, write_wav
from media.codecs import Pcm

log = logging.getLogger(__name__)


class StopReason(Enum):
    DTMF = "dtmf"
    SILENCE = "silence"
    MAX_LENGTH = "max_length"
    STOPPED = "stopped"  # stopped by the application or the call ended


class RecorderState(Enum):
    RECORDING = "recording"
    FINISHED = "finished"


@dataclass(frozen=True, slots=True)
class RecordingResult:
    path: str
    duration_s: float
    reason: StopReason
    digit: str | None = None
    saved: bool = True  # False when nothing but silence was heard (no file written)


class Recorder:
    def __init__(
        self,
        path: str,
        *,
        max_seconds: float,
        stop_on_dtmf: bool = True,
        silence_seconds: float | None = None,
        silence_level: float = 300.0,  # RMS below which a frame is silence (about -40 dBFS)
        rate: int = RATE,
        keep_silence: bool = False,
    ) -> None:
        if max_seconds <= 0:
            raise ValueError("max_seconds must be positive")
        self.path = path
        self.max_samples = int(max_seconds * rate)
        self.stop_on_dtmf = stop_on_dtmf
        self.silence_samples = int(silence_seconds * rate) if silence_seconds else None
        self.silence_level = silence_level
        self.rate = rate
        self.state = RecorderState.RECORDING
        self.reason: StopReason | None = None
        self.digit: str | None = None
        self._frames: list[Pcm] = []
        self._samples = 0
        self._trailing_silence = 0
        self._heard_voice = False
        # a diagnostic recording keeps what the phone sent, silence included; a message
        # (voicemail) with nothing but silence is not worth a file
        self.keep_silence = keep_silence
        self._received = False

    def feed(self, pcm: Pcm, received: bool = True) -> bool:
        """Add one frame (`received`: it came from the phone's RTP, not concealment);
        True when the recording just finished."""
        if self.state is not RecorderState.RECORDING:
            return False
        self._received = self._received or received
        pcm = pcm[: self.max_samples - self._samples]
        self._frames.append(pcm)
        self._samples += len(pcm)
        rms = float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) if len(pcm) else 0.0
        if rms < self.silence_level:
            self._trailing_silence += len(pcm)
        else:
            self._trailing_silence = 0
            self._heard_voice = True
        if self._samples >= self.max_samples:
            return self._finish(StopReason.MAX_LENGTH)
        if self.silence_samples is not None and self._trailing_silence >= self.silence_samples:
            return self._finish(StopReason.SILENCE)
        return False

    def on_digit(self, digit: str) -> bool:
        """A DTMF digit arrived; True when it stopped the recording."""
        if self.state is RecorderState.RECORDING and self.stop_on_dtmf:
            self.digit = digit
            return self._finish(StopReason.DTMF)
        return False

    def stop(self) -> bool:
        return self._finish(StopReason.STOPPED)

    def _finish(self, reason: StopReason) -> bool:
        if self.state is not RecorderState.RECORDING:
            return False
        self.state, self.reason = RecorderState.FINISHED, reason
        log.debug("recording %s stopped: %s", self.path, reason.value)
        return True

    def audio(self) -> Pcm:
        """The kept audio: trailing silence trimmed to 0.2 s, the DTMF tone tail removed."""
        pcm = np.concatenate(self._frames) if self._frames else np.zeros(0, np.int16)
        cut = 0
        if self.reason is StopReason.SILENCE:
            cut = max(0, self._trailing_silence - int(0.2 * self.rate))
        elif self.reason is StopReason.DTMF:
            cut = int(0.1 * self.rate)  # the start of an in-band tone already got in
        return pcm[: max(0, len(pcm) - cut)]

    def save(self) -> RecordingResult:
        """Write the WAV atomically (blocking: run it off the event loop)."""
        if self.state is RecorderState.RECORDING:
            self.stop()
        reason = self.reason or StopReason.STOPPED
        pcm = self.audio()
        if not self._heard_voice and not (self.keep_silence and self._received):
            return RecordingResult(self.path, 0.0, reason, self.digit, saved=False)
        write_wav(self.path, pcm, self.rate)
        return RecordingResult(self.path, len(pcm) / self.rate, reason, self.digit)
