"""The call-application contract: anything that answers a call and talks to the caller.

A call application (the test services, an auto-attendant, a queue, voicemail, a
conference...) is a pure state machine with time passed in. It never touches sockets, the
clock, files or the media engine: it consumes :data:`AppEvent` values and returns
:data:`Command` values, and one runner in the switch (`switch/services/applications.py`)
performs those commands on the call's media endpoint and signalling.

The protocol, for a newcomer (see also `ivr/README.md`):

- ``start(now)`` once, when the runner takes the call; then ``receive(Answered(), now)``
  once the caller has the 200 OK.
- ``receive(event, now)`` for everything that happens: a DTMF digit with its source, a
  prompt that finished (or was interrupted by a digit), a recording that was saved, the
  digits a ``CollectDigits`` gathered, the far end hanging up.
- ``next_deadline()`` says when the application wants ``handle_timer(now)`` to be called
  (None: no timer). The runner arms one timer per call on it.

Every method returns the commands to perform, in order. After ``HangUp`` (or
``FarEndHungUp``) the runner stops feeding events, except a ``RecordingFinished`` for a
recording that was still running: an application can still log or store it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

# -- events (what happened) --------------------------------------------------------------


class DigitSource(Enum):
    """How a DTMF digit reached the switch."""

    RFC4733 = "rfc4733"  # RTP telephone-event
    INBAND = "inband"  # tones in the audio (Goertzel)
    INFO = "info"  # SIP INFO, application/dtmf-relay or application/dtmf


@dataclass(frozen=True, slots=True)
class Answered:
    """The caller has our 200 OK: media flows from now on."""


@dataclass(frozen=True, slots=True)
class Digit:
    digit: str
    source: DigitSource
    duration_ms: int = 0


@dataclass(frozen=True, slots=True)
class PromptFinished:
    """The current ``Play`` ended; ``interrupted`` when a digit cut it short."""

    interrupted: bool = False


@dataclass(frozen=True, slots=True)
class RecordingFinished:
    path: str
    seconds: float
    saved: bool = True


class CollectEnd(Enum):
    MAX_DIGITS = "max_digits"
    TERMINATOR = "terminator"
    TIMEOUT = "timeout"


@dataclass(frozen=True, slots=True)
class DigitsCollected:
    """What a ``CollectDigits`` gathered and why it stopped."""

    digits: str
    reason: CollectEnd


@dataclass(frozen=True, slots=True)
class Timer:
    """The deadline the application asked for has passed."""


@dataclass(frozen=True, slots=True)
class FarEndHungUp:
    cause: str = "caller hung up"


@dataclass(frozen=True, slots=True)
class TransferFailed:
    """The ``Transfer`` target could not be reached (busy, no answer, unknown, barred):
    the caller is still with the application, which decides what comes next (a prompt,
    the menu again, another target). ``status`` is the SIP status the target gave."""

    target: str
    status: int
    reason: str = ""


AppEvent = (Answered | Digit | PromptFinished | RecordingFinished | DigitsCollected | Timer
            | FarEndHungUp | TransferFailed)


# -- commands (what to do) ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Prompt:
    """A named announcement, converted ahead of time (8 kHz mono PCM) and found by name:
    the customer's own announcement of that name when ``customer`` is given and has one,
    else the operator's, else the French prompt shipped with the switch (`prompts/fr/`)."""

    name: str
    customer: str | None = None


@dataclass(frozen=True, slots=True)
class Tone:
    """A sine tone of a given length, synthesised by the media engine."""

    freq_hz: float
    seconds: float


@dataclass(frozen=True, slots=True)
class Recording:
    """A WAV the switch recorded itself (a voicemail message, a greeting), played as it is
    (8 kHz mono 16-bit, as the recorder writes it) and read from its path each time, never
    cached. The path comes from the switch's own storage, never from a caller."""

    path: str


PromptItem = Prompt | Tone | Recording


@dataclass(frozen=True, slots=True)
class Play:
    """Play prompts one after the other; a DTMF digit stops them when interruptible.
    ``PromptFinished`` follows (``interrupted`` when a digit cut it)."""

    items: tuple[PromptItem, ...]
    interruptible: bool = True
    loop: bool = False


@dataclass(frozen=True, slots=True)
class PlayTone:
    """A continuous tone until something else plays (no ``PromptFinished``)."""

    freq_hz: float


@dataclass(frozen=True, slots=True)
class MusicOnHold:
    """The shared music on hold, until something else plays: the music of ``customer``
    (the caller's customer) when it has its own, else the operator's or the shipped one."""

    customer: str | None = None


@dataclass(frozen=True, slots=True)
class StopPlaying:
    pass


@dataclass(frozen=True, slots=True)
class Echo:
    """Send back what the caller sends (diagnostics)."""

    enabled: bool = True


@dataclass(frozen=True, slots=True)
class Record:
    """Record the caller into ``name`` (relative: the runner puts it in its recordings
    directory). ``RecordingFinished`` follows when it stops: max length, ``#`` when
    ``stop_on_hash``, ``StopRecording``, or the end of the call."""

    name: str
    max_seconds: float
    stop_on_hash: bool = True
    keep_silence: bool = False  # keep a file even when the caller sent only silence


@dataclass(frozen=True, slots=True)
class StopRecording:
    pass


@dataclass(frozen=True, slots=True)
class CollectDigits:
    """Gather up to ``max_digits`` digits; ``DigitsCollected`` follows. The first digit must
    come within ``first_timeout`` seconds, each next one within ``inter_digit_timeout``;
    ``terminator`` (not included in the digits) ends early."""

    max_digits: int
    first_timeout: float = 5.0
    inter_digit_timeout: float = 3.0
    terminator: str | None = "#"


@dataclass(frozen=True, slots=True)
class Transfer:
    """Hand the caller to another target: a full internal number (``501410``: a user, a
    hunt group, a queue, an auto-attendant), a mailbox (``voicemail:501410``) or an
    external number (``+33612345678``, ``0612345678``), routed from the application's
    site. The caller hears ringback while the target rings, keeps its own identity (the
    target sees who calls), and is connected when the target answers: the application's
    part is then over. If the target cannot be reached, ``TransferFailed`` follows and the
    application goes on. No other event reaches the application meanwhile except
    ``FarEndHungUp``."""

    target: str


@dataclass(frozen=True, slots=True)
class HangUp:
    cause: str = "application ended the call"


Command = (Play | PlayTone | MusicOnHold | StopPlaying | Echo | Record | StopRecording
           | CollectDigits | Transfer | HangUp)


@dataclass(frozen=True, slots=True)
class CallInfo:
    """What an application knows of its call, for its decisions and its log lines."""

    call_id: str
    caller: str
    dialed: str
    token: str  # unique and file-name safe: recordings are named after it


class CallApplication(Protocol):
    """The contract every call application implements (pure, time passed in)."""

    def start(self, now: float) -> list[Command]: ...

    def receive(self, event: AppEvent, now: float) -> list[Command]: ...

    def next_deadline(self) -> float | None: ...

    def handle_timer(self, now: float) -> list[Command]: ...


class ApplicationBase:
    """Defaults for applications without timers and that ignore most events."""

    def start(self, now: float) -> list[Command]:
        return []

    def receive(self, event: AppEvent, now: float) -> list[Command]:
        return []

    def next_deadline(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> list[Command]:
        return []


def play(*items: PromptItem, interruptible: bool = True) -> Play:
    """`Play` of a few prompts or tones: ``play(Prompt("welcome"), Tone(1000, 0.2))``."""
    return Play(tuple(items), interruptible=interruptible)


def is_final(commands: Sequence[Command]) -> bool:
    """Whether the application let go of the call (hang-up or transfer)."""
    return any(isinstance(c, HangUp | Transfer) for c in commands)
