"""What a subscription needs to outlive a restart, and where it is kept (a Protocol that
`switch.storage.subscriptions` implements).

Written once per subscription change (created, refreshed, ended), never per NOTIFY: the
NOTIFY CSeq and the dialog-info version grow between writes, so a restored subscription
jumps both by `RESTART_GAP` (RFC 3261 12.2.1.1 wants a higher CSeq, RFC 4235 4.1 a higher
version; no subscription sends that many NOTIFYs between two refreshes in practice).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

RESTART_GAP = 100_000


@dataclass(frozen=True, slots=True)
class StoredSubscription:
    id: str
    package: str
    resource: str
    watcher: str
    source: str
    expires_at: float  # epoch seconds
    version: int
    # the dialog (RFC 6665 4.1.2.1: a subscription is a dialog; we are its UAS)
    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: str  # NameAddr text, no tag
    remote_uri: str
    remote_target: str
    route_set: tuple[str, ...]
    local_seq: int | None
    remote_seq: int | None
    # where NOTIFYs go (the source of the SUBSCRIBE: NAT-safe, RFC 3581)
    transport: str
    peer_host: str
    peer_port: int
    event_id: str = ""  # the `id` parameter of the SUBSCRIBE's Event (RFC 6665 8.2.1)


class SubscriptionRepository(Protocol):
    async def save(self, sub: StoredSubscription) -> None: ...

    async def delete(self, sub_id: str) -> None: ...

    async def load_unexpired(self, now: float) -> Sequence[StoredSubscription]: ...

    async def delete_expired(self, now: float) -> int: ...
