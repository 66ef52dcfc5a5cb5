"""What the voicemail applications know of a mailbox, and how they change it.

The choice (issue 13): an application never waits on storage. It is built with a
**snapshot** of its mailbox (`MailboxSnapshot`: the messages, the recorded greetings, the
PIN hash), taken by the adapter from its cache when the call reaches the mailbox, and it
changes the mailbox by **commands** on a `MailboxActions` Protocol whose methods return
nothing and never block (fire-and-forget). The adapter (`switch/services/voicemail.py`)
performs them in order, durably: a deposited message's WAV is moved and fsynced into the
data directory before its row is committed. The application keeps its own view up to date
(a deleted message disappears from its list at once), so it never reads back.

Commands still come after the caller hung up: a message whose caller leaves during the
recording is saved from the `RecordingFinished` that follows the hang-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Protocol


class Greeting(Enum):
    """The recordings a mailbox owner makes from the settings menu."""

    UNAVAILABLE = "unavailable"  # played on no answer, unreachable, direct deposit
    BUSY = "busy"  # played when the user's phones were busy
    NAME = "name"  # the owner's name, spoken inside the standard phrase


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: str
    caller: str  # the caller's number as the switch knew it ("501411", "+33612345678")
    received_at: float  # seconds since the epoch (UTC)
    received_local: datetime  # the same instant in the mailbox's site time zone (naive)
    duration: float  # seconds of audio
    urgent: bool
    heard: bool
    audio_path: str
    caller_name: str | None = None


@dataclass(frozen=True, slots=True)
class MailboxSnapshot:
    owner: str  # the user's full internal number: the mailbox key
    pin_hash: str
    greetings: Mapping[Greeting, str] = field(default_factory=dict)  # kind -> WAV path
    messages: tuple[StoredMessage, ...] = ()
    locked: bool = False  # the failure guard blocks PIN entry for this caller now

    @property
    def new(self) -> tuple[StoredMessage, ...]:
        return tuple(m for m in self.messages if not m.heard)

    @property
    def old(self) -> tuple[StoredMessage, ...]:
        return tuple(m for m in self.messages if m.heard)


class PinFailures(Protocol):
    """Wrong PINs, counted by the adapter in the switch's failure guard (devices/guard.py)."""

    def pin_failed(self, owner: str) -> None: ...


class MailboxActions(PinFailures, Protocol):
    """Fire-and-forget changes to a mailbox (the adapter performs them in order)."""

    def save_message(self, owner: str, recording: str, *, caller: str,
                     caller_name: str | None, seconds: float, urgent: bool) -> None:
        """Keep `recording` (a WAV the runner wrote) as a new message of `owner`."""

    def discard(self, recording: str) -> None:
        """A recording that is not kept (too short, re-recorded): delete its file."""

    def mark_heard(self, owner: str, message_id: str) -> None: ...

    def delete_message(self, owner: str, message_id: str) -> None: ...

    def set_greeting(self, owner: str, kind: Greeting, recording: str) -> None: ...

    def set_pin(self, owner: str, pin: str) -> None:
        """A new PIN (already checked: 4 to 8 digits); the adapter stores its hash only."""
