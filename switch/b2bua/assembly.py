"""Leg assembly: the B-leg INVITEs of a call, grouped for hunting, emergency parts added.

Pure: the targets (where each leg goes and with which identity) come from the target
resolver; the emergency parts (a PIDF-LO body beside the SDP, `Geolocation`, `Priority`,
RFC 6442) come from a function the adapter passes. Legs are numbered in the order the Call
will add them, so the adapter can map each leg's Call-ID to its `LegId` before sending.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from switch.sip import NameAddr, Request, new_call_id, new_tag
from switch.transaction import Peer

from .effects import LegId
from .legs import LocalAddress, invite_for_callee


@dataclass(frozen=True, slots=True)
class LegTarget:
    """One leg to ring: where, to whom, presented as whom."""

    request_uri: str
    dest: Peer
    to: NameAddr
    from_: NameAddr  # the caller as the callee sees it (RFC 3325 identity decided)
    identity_headers: tuple[tuple[str, str], ...] = ()
    number: str | None = None  # the caller's presented number (for the emergency parts)
    user: str | None = None  # the internal number rung, None for a trunk


@dataclass(frozen=True, slots=True)
class EmergencyParts:
    """What an emergency leg carries instead of plain SDP (RFC 6442 section 4.1)."""

    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class AssembledLeg:
    leg: LegId
    invite: Request
    dest: Peer
    user: str | None


# (caller's number, SDP) -> the emergency leg's body and headers
EmergencyBuilder = Callable[[str | None, bytes], EmergencyParts]


def assemble(groups: Sequence[Sequence[LegTarget]], *, body: bytes, local: LocalAddress,
             max_forwards: int, emergency: EmergencyBuilder | None = None,
             first_leg: int = 0) -> list[list[AssembledLeg]]:
    """The INVITEs of every group (a group's legs ring together; groups one after the
    other), each a new dialog with its own Call-ID and tags (RFC 3261 8.1.1)."""
    index = first_leg
    steps: list[list[AssembledLeg]] = []
    for group in groups:
        step: list[AssembledLeg] = []
        for target in group:
            content_type, leg_body, headers = "application/sdp", body, target.identity_headers
            if emergency is not None:
                parts = emergency(target.number, body)
                content_type, leg_body = parts.content_type, parts.body
                headers = (*headers, *parts.headers)
            invite = invite_for_callee(
                request_uri=target.request_uri, to=target.to,
                caller=target.from_.with_tag(new_tag()), call_id=new_call_id(), local=local,
                dest=target.dest, body=leg_body, max_forwards=max_forwards,
                identity_headers=headers, content_type=content_type,
            )
            step.append(AssembledLeg(LegId(index), invite, target.dest, target.user))
            index += 1
        steps.append(step)
    return steps
