"""A recording `MailboxActions` and snapshots for the voicemail application tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ivr.application import CallInfo
from voicemail.pin import hash_pin
from voicemail.store import Greeting, MailboxSnapshot, StoredMessage

INFO = CallInfo("call-1@test", "501411", "sip:501410@switch", "tok123")
PIN_HASH = hash_pin("1410", salt=b"0123456789abcdef", iterations=1000)


class Actions:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def save_message(self, owner: str, recording: str, *, caller: str,
                     caller_name: str | None, seconds: float, urgent: bool) -> None:
        self.calls.append(("save", (owner, recording, caller, caller_name, seconds, urgent)))

    def discard(self, recording: str) -> None:
        self.calls.append(("discard", recording))

    def mark_heard(self, owner: str, message_id: str) -> None:
        self.calls.append(("heard", (owner, message_id)))

    def delete_message(self, owner: str, message_id: str) -> None:
        self.calls.append(("delete", (owner, message_id)))

    def set_greeting(self, owner: str, kind: Greeting, recording: str) -> None:
        self.calls.append(("greeting", (owner, kind, recording)))

    def set_pin(self, owner: str, pin: str) -> None:
        self.calls.append(("pin", (owner, pin)))

    def pin_failed(self, owner: str) -> None:
        self.calls.append(("pin_failed", owner))

    def kinds(self) -> list[str]:
        return [k for k, _ in self.calls]


def message(i: int, *, heard: bool = False, urgent: bool = False,
            caller: str = "501411") -> StoredMessage:
    return StoredMessage(f"m{i}", caller, 1_800_000_000.0 + i,
                         datetime(2026, 12, 3, 14, 5 + i), 4.0, urgent, heard,
                         f"/data/voicemail/501410/m{i}.wav")


def snapshot(*messages: StoredMessage, locked: bool = False,
             greetings: dict[Greeting, str] | None = None) -> MailboxSnapshot:
    return MailboxSnapshot("501410", PIN_HASH, greetings or {}, tuple(messages), locked)
