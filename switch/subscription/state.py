"""One subscription (RFC 6665): its state machine, Expires negotiation, Subscription-State.

The notifier side only: a SUBSCRIBE creates a subscription, refreshes it or ends it
(Expires: 0, RFC 6665 4.2.1.4); the subscription ends by itself when it is not refreshed in
time (4.2.2 timeout) and the notifier may end it (deactivated, noresource, 4.2.2). Time is
passed in (`now`, epoch seconds: subscriptions outlive a restart).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import Enum

from switch.sip import SipError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PackageRules:
    """Per event package: the Content-Type of its NOTIFY bodies and its Expires bounds."""

    content_type: str
    accept: str
    default_expires: int


# RFC 4235 section 3.2 (default 3600), RFC 3856 section 6.4 (3600), RFC 3842 section 4
# (3600 is the usual default; the RFC leaves it to the notifier).
PACKAGES: dict[str, PackageRules] = {
    "dialog": PackageRules("application/dialog-info+xml", "application/dialog-info+xml", 3600),
    "presence": PackageRules("application/pidf+xml", "application/pidf+xml", 3600),
    "message-summary": PackageRules("application/simple-message-summary",
                                    "application/simple-message-summary", 3600),
}


class SubState(Enum):
    PENDING = "pending"
    ACTIVE = "active"
    TERMINATED = "terminated"


class SubEvent(Enum):
    AUTHORIZE = "authorize"  # the notifier's policy allows the watcher (RFC 6665 4.2.1.2)
    REFRESH = "refresh"  # a SUBSCRIBE with a non-zero Expires inside the dialog
    TERMINATE = "terminate"  # Expires: 0, timeout, deactivated, noresource


TRANSITIONS: dict[tuple[SubState, SubEvent], SubState] = {
    (SubState.PENDING, SubEvent.AUTHORIZE): SubState.ACTIVE,
    (SubState.PENDING, SubEvent.REFRESH): SubState.PENDING,
    (SubState.PENDING, SubEvent.TERMINATE): SubState.TERMINATED,
    (SubState.ACTIVE, SubEvent.REFRESH): SubState.ACTIVE,
    (SubState.ACTIVE, SubEvent.TERMINATE): SubState.TERMINATED,
}


class TerminationReason(Enum):
    """Subscription-State reasons (RFC 6665 4.1.3): what the subscriber does next."""

    TIMEOUT = "timeout"  # not refreshed in time: the subscriber may re-subscribe at once
    NORESOURCE = "noresource"  # the resource is gone: do not re-subscribe
    DEACTIVATED = "deactivated"  # the notifier ended it: re-subscribe at once
    GIVEUP = "giveup"
    REJECTED = "rejected"
    PROBATION = "probation"


class SubscriptionError(SipError):
    """A transition the table does not have (a bug of ours: 500)."""


def negotiate_expires(requested: int | None, *, default: int, minimum: int,
                      maximum: int) -> int:
    """The duration the subscription is granted (RFC 6665 4.2.1.1).

    No Expires: the package's default. Zero: an un-SUBSCRIBE (a fetch when there is no
    subscription yet), granted as 0. Below `minimum`: 423 Interval Too Brief with
    Min-Expires (4.2.1.1). Above `maximum`: shortened to it (the notifier "MAY shorten").
    """
    if requested is None:
        return min(max(default, minimum), maximum)
    if requested < 0:
        raise SipError(400, "Bad Expires")
    if requested == 0:
        return 0
    if requested < minimum:
        raise SipError(423, "Interval Too Brief", headers=(("Min-Expires", str(minimum)),))
    return min(requested, maximum)


@dataclass(slots=True)
class Subscription:
    """One watcher's subscription to one resource's event package.

    `resource` is the watched user's key ("customer:full number"), `watcher` the
    subscribing user's; `source` the address it subscribed from (limits per source).
    `version` counts dialog-info documents sent in this subscription (RFC 4235 4.1).
    """

    id: str
    package: str
    resource: str
    watcher: str
    source: str
    expires_at: float
    state: SubState = SubState.PENDING
    version: int = 0
    reason: TerminationReason | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def _go(self, event: SubEvent) -> None:
        new = TRANSITIONS.get((self.state, event))
        if new is None:
            raise SubscriptionError(500, f"subscription: no {event.value} in state "
                                         f"{self.state.value}")
        log.debug("subscription %s %s: %s --%s--> %s", self.id, self.package,
                  self.state.value, event.value, new.value)
        self.state = new

    def authorize(self) -> None:
        self._go(SubEvent.AUTHORIZE)

    def refresh(self, expires_at: float) -> None:
        self._go(SubEvent.REFRESH)
        self.expires_at = expires_at

    def terminate(self, reason: TerminationReason) -> None:
        if self.state is SubState.TERMINATED:
            return
        self._go(SubEvent.TERMINATE)
        self.reason = reason

    def remaining(self, now: float) -> int:
        return max(0, round(self.expires_at - now))

    def next_version(self) -> int:
        """The dialog-info version of the next NOTIFY (RFC 4235 4.1: +1 per document)."""
        v = self.version
        self.version += 1
        return v

    def state_header(self, now: float) -> str:
        """The Subscription-State value of a NOTIFY sent at `now` (RFC 6665 4.1.3, 8.2.3)."""
        if self.state is SubState.TERMINATED:
            reason = self.reason or TerminationReason.DEACTIVATED
            return f"terminated;reason={reason.value}"
        return f"{self.state.value};expires={self.remaining(now)}"
