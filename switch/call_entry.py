"""What the call service keeps per call (`CallEntry`), how a dialog finds its call
(`DialogRef`), and what it asks of the media service (`MediaAnchoring`).

Split from `switch/calls.py` so that the services which look at calls (transfer, pickup,
queues, originated calls) share these types without the pump's size.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from dialplan import RoutingDecision, User
from rating.cdr import CallRecord
from switch.b2bua.call import Call
from switch.b2bua.effects import LegId, Side
from switch.b2bua.originate import Presented
from switch.divert import ApplicationTransfer, DivertMedia
from switch.media_service import Anchor
from switch.services.applications import ApplicationMedia, ApplicationRunner


def same_body(leg: LegId, body: bytes) -> bytes:
    """A passthrough call's SDP goes to the caller unchanged."""
    return body


class MediaAnchoring(DivertMedia, Protocol):
    """What the call service asks of the media service."""

    async def anchor(self, offer_body: bytes) -> Anchor | None: ...

    async def application_endpoint(self, offer_body: bytes
                                   ) -> tuple[ApplicationMedia, bytes]: ...


@dataclass(frozen=True, slots=True)
class DialogRef:
    """Which call (and which side of it) a Call-ID belongs to."""

    entry: CallEntry
    side: Side
    leg: LegId | None = None


@dataclass(slots=True)
class CallEntry:
    call: Call
    invite_key: object
    caller: User | None
    decision: RoutingDecision
    record: CallRecord
    leg_users: dict[LegId, str] = field(default_factory=dict)  # leg -> user rung
    extra_call_ids: list[str] = field(default_factory=list)  # dialogs joined by transfer
    a_sdp: bytes = b""  # the SDP the caller has from us
    b_sdp: bytes = b""  # the SDP the answering callee has from us
    timer: asyncio.TimerHandle | None = None
    timer_at: float = 0.0  # when `timer` fires (loop time)
    anchor: Anchor | None = None
    app: ApplicationRunner | None = None
    divert: ApplicationTransfer | None = None  # the application's Transfer ringing its target
    # a call the switch placed (switch/originate.py): the identity its application's
    # Transfer presents, and who is told when it ends (an agent's queue state)
    presented: Presented | None = None
    on_end: Callable[[CallEntry], None] | None = None
    # an attended transfer waits on this call (switch/attended_transfer.py)
    on_answered: Callable[[], None] | None = None
    on_ended: Callable[[], None] | None = None
    watched: list[tuple[str, str]] = field(default_factory=list)  # (user, Call-ID) joined
