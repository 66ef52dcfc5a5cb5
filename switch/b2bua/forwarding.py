"""Personal call forwarding, pure: when a user's call is forwarded, where to, and the
headers that say so on the forwarded leg.

Order (section 4.2 of the service description): forwarding always applies before ringing;
once the user's legs are exhausted, busy (every leg 486/600) forwards on busy, the ring
time running out forwards on no answer, and no reachable device (408, 503, 480) forwards
on unreachable. What the forwarding does not take goes to the next policy (voicemail, or
giving up): `forwarding_policy` wraps an `ExhaustedPolicy`.

The forwarded leg carries `Diversion` (RFC 5806) and `History-Info` (RFC 7044, causes of
RFC 4458) naming the forwarding user's public number: a carrier then accepts the original
caller in From, a number that is not the customer's own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

from dialplan.user_settings import UserSettings

from .decisions import Exhausted, ExhaustedPolicy, NextStep, RingMore, give_up

log = logging.getLogger("switch.b2bua.forwarding")

MAX_FORWARDS = 5  # forwarding hops followed before the call ends with 482


class ForwardReason(Enum):
    """Why a call was forwarded: the Diversion reason (RFC 5806 section 4) and the
    History-Info cause (RFC 4458 section 3.5, RFC 7044 section 9.1)."""

    ALWAYS = "unconditional"
    BUSY = "user-busy"
    NO_ANSWER = "no-answer"
    UNREACHABLE = "unavailable"
    SIMULTANEOUS = "follow-me"  # the user's own extra number ringing with its phones

    @property
    def cause(self) -> int:
        return _CAUSES[self]


_CAUSES = {
    ForwardReason.ALWAYS: 302,
    ForwardReason.BUSY: 486,
    ForwardReason.NO_ANSWER: 408,
    ForwardReason.UNREACHABLE: 503,
    ForwardReason.SIMULTANEOUS: 302,
}

_UNREACHABLE = frozenset({408, 480, 503})
_BUSY = frozenset({486, 600})


def trigger(exhausted: Exhausted) -> ForwardReason | None:
    """Which conditional forwarding an exhausted call meets, if any."""
    if exhausted.no_answer:
        return ForwardReason.NO_ANSWER
    if exhausted.status in _BUSY:
        return ForwardReason.BUSY
    if exhausted.status in _UNREACHABLE:
        return ForwardReason.UNREACHABLE
    return None


def destination(settings: UserSettings, reason: ForwardReason) -> str | None:
    if reason is ForwardReason.ALWAYS:
        return settings.forward_always
    if reason is ForwardReason.BUSY:
        return settings.forward_busy
    if reason is ForwardReason.NO_ANSWER:
        return settings.forward_no_answer
    if reason is ForwardReason.UNREACHABLE:
        return settings.forward_unreachable
    return None


# builds the legs toward a forwarding destination (the adapter: routing as the user,
# locations, leg assembly); None when nothing can be rung there
RingForward = Callable[[ForwardReason, str], RingMore | None]


def forwarding_policy(settings: UserSettings, ring: RingForward,
                      next_policy: ExhaustedPolicy = give_up) -> ExhaustedPolicy:
    """The exhausted policy of one call to a user with `settings`: the first exhaustion
    of its own legs forwards when a conditional forwarding matches; anything else (no
    forwarding, nothing to ring there, the forwarded legs exhausted in turn) is
    `next_policy`'s (voicemail when it plugs in, else giving up)."""
    used = False

    def policy(exhausted: Exhausted) -> NextStep:
        nonlocal used
        if not used:
            used = True
            reason = trigger(exhausted)
            number = destination(settings, reason) if reason is not None else None
            if reason is not None and number is not None:
                step = ring(reason, number)
                if step is not None and step.groups:
                    log.info("forwarding on %s to %s", reason.value, number)
                    return step
        return next_policy(exhausted)

    return policy


@dataclass(frozen=True, slots=True)
class Diversion:
    """One forwarding hop: who forwarded (its address of record) and why."""

    uri: str  # e.g. sip:+33562070410@acme.example;user=phone
    reason: ForwardReason


def diversion_header(hops: Sequence[Diversion]) -> str:
    """`Diversion` (RFC 5806 section 4): the most recent diversion first, with the counter
    of diversions done so far."""
    entries = [f"<{hop.uri}>;reason={hop.reason.value};counter={i + 1}"
               for i, hop in enumerate(hops)]
    return ", ".join(reversed(entries))


def history_info_header(hops: Sequence[Diversion], target_uri: str) -> str:
    """`History-Info` (RFC 7044 section 4): the original target, each retarget with the
    cause of RFC 4458 in its URI and `mp` (the user changed: a forwarding, section 4.2.2)
    pointing at the entry it came from; the last entry is the target rung now."""
    entries: list[str] = []
    index = "1"
    entries.append(f"<{hops[0].uri}>;index={index}" if hops else f"<{target_uri}>;index=1")
    for i, hop in enumerate(hops):
        parent, index = index, f"{index}.1"
        uri = hops[i + 1].uri if i + 1 < len(hops) else target_uri
        entries.append(f"<{_with_cause(uri, hop.reason.cause)}>;index={index};mp={parent}")
    return ", ".join(entries)


def _with_cause(uri: str, cause: int) -> str:
    """RFC 4458 section 3.5: the cause is a URI parameter of the retargeted URI."""
    head, sep, headers = uri.partition("?")
    return f"{head};cause={cause}{sep}{headers}"


def forwarding_headers(hops: Sequence[Diversion], target_uri: str
                       ) -> tuple[tuple[str, str], ...]:
    if not hops:
        return ()
    return (("Diversion", diversion_header(hops)),
            ("History-Info", history_info_header(hops, target_uri)))
