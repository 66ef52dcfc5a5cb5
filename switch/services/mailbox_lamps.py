"""The voicemail lamp: voicemail's message counts to the subscriptions' message-summary.

Voicemail keys mailboxes by full internal number; subscriptions key users by their
location-service key (`customer:full number`, `switch.call_targets.aor_key`), because full
numbers repeat across customers. This adapter turns one into the other both ways: the
subscription service asks `counts(aor)` when it builds a NOTIFY, and voicemail calls
`message_waiting_changed(full_number)` whenever a mailbox's new/old counts change (a
deposit, a message heard or deleted, by phone or by the visual voicemail API)."""

from __future__ import annotations

from typing import Protocol

from dialplan import PlanHolder, User
from switch.call_targets import aor_key


class Counts(Protocol):
    def counts(self, user_full_number: str) -> tuple[int, int]: ...


class Lamps(Protocol):
    def message_waiting_changed(self, user: str) -> None: ...


class MailboxLamps:
    """`MailboxCounts` for subscriptions, `MessageWaiting` for voicemail."""

    def __init__(self, mailboxes: Counts, plan: PlanHolder) -> None:
        self.mailboxes = mailboxes
        self.plan = plan
        self.lamps: Lamps | None = None  # the subscription service, set once both exist

    def counts(self, user: str) -> tuple[int, int]:
        """(new, old) of the mailbox of `user`, a location-service key."""
        return self.mailboxes.counts(user.rpartition(":")[2])

    def message_waiting_changed(self, user_full_number: str) -> None:
        if self.lamps is None:
            return
        for customer in self.plan.plan.customers:
            owner = customer.by_full_number.get(user_full_number)
            if isinstance(owner, User):
                self.lamps.message_waiting_changed(aor_key(owner))
