"""The voicemail lamp: voicemail's message counts to the subscriptions' message-summary.

Both key a user as `customer:full number` (`switch.call_targets.aor_key`,
`switch.services.voicemail.mailbox_key`), because full numbers repeat across customers.
The subscription service asks `counts(key)` when it builds a NOTIFY, and voicemail calls
`message_waiting_changed(key)` whenever a mailbox's new/old counts change (a deposit, a
message heard or deleted, by phone or by the visual voicemail API)."""

from __future__ import annotations

from typing import Protocol

from dialplan import PlanHolder


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
        """(new, old) of the mailbox of `user` (`customer:number`)."""
        return self.mailboxes.counts(user)

    def message_waiting_changed(self, user: str) -> None:
        if self.lamps is not None:
            self.lamps.message_waiting_changed(user)
