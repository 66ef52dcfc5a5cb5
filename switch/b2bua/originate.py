"""Calls the switch places itself (a queue's callback, later callback on busy), pure.

No phone sent an INVITE: the switch is the caller. Its legs are built like any callee's
(`assembly.assemble`, from the target resolver's `LegTarget`s) and rung by an ordinary
`Call` whose caller is virtual (nothing is ever sent to it), so forking, hunting and ring
timeouts are the usual ones. What differs, and lives here:

- the template INVITE the virtual caller "sent" (`origination_request`): its From is the
  identity the switch presents, its Call-ID names the originated call;
- the identity on every leg (`present_as`): the one the switch chose (a queue's number,
  with P-Asserted-Identity toward a trusted trunk, RFC 3325 section 9.1), never a phone's;
- the call the answering party then belongs to (`answered_call`): a `Call` already
  answered whose caller side is the dialog the switch opened as UAC (RFC 3261 12.1.2),
  so the party's BYE and re-INVITEs reach it as the caller's, and an application can
  hand it to a second party (`Call.adopt_callee`) as any answered application call;
- the origination's own state (`OriginState`, `ORIGIN_TRANSITIONS`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum, auto

from switch.sip import (
    Headers,
    NameAddr,
    Request,
    Response,
    new_branch,
    new_call_id,
    new_tag,
    parse_uri,
)

from .assembly import LegTarget
from .call import Call, CallState, Leg
from .effects import LegId
from .legs import ALLOW


class OriginState(Enum):
    ROUTING = auto()  # the target is routed, media opened
    RINGING = auto()  # its legs ring
    ANSWERED = auto()  # a leg answered: the call now lives in the call service
    FAILED = auto()  # refused, busy, no answer
    CANCELLED = auto()  # the switch gave up (shutting down, the reason vanished)


ORIGIN_TRANSITIONS: dict[tuple[OriginState, OriginState], str] = {
    (OriginState.ROUTING, OriginState.RINGING): "legs sent",
    (OriginState.ROUTING, OriginState.FAILED): "refused or no binding",
    (OriginState.ROUTING, OriginState.CANCELLED): "cancelled before ringing",
    (OriginState.RINGING, OriginState.ANSWERED): "a leg answered",
    (OriginState.RINGING, OriginState.FAILED): "every leg failed or rang out",
    (OriginState.RINGING, OriginState.CANCELLED): "cancelled while ringing",
}


class OriginTransitionError(Exception):
    """A step the origination's state does not allow (a bug here, never a peer's)."""


def next_state(state: OriginState, wanted: OriginState) -> OriginState:
    if (state, wanted) not in ORIGIN_TRANSITIONS:
        raise OriginTransitionError(f"origination: {state.name} -> {wanted.name}")
    return wanted


@dataclass(frozen=True, slots=True)
class Presented:
    """Who the switch says is calling: From, and the identity headers (P-Asserted-Identity
    toward a trunk that trusts us, RFC 3325 section 9.1)."""

    from_: NameAddr
    headers: tuple[tuple[str, str], ...] = ()
    number: str | None = None


def origination_request(presented: Presented, target_uri: str,
                        max_forwards: int = 70) -> Request:
    """The INVITE the virtual caller of an originated call stands for: it never goes on the
    wire; the legs are built from it (Max-Forwards) and the call record names it."""
    # Via and Contact name nowhere: the inner call answers this "caller" in memory only
    # (a dialog needs a Contact, RFC 3261 12.1.1)
    items = [("Via", f"SIP/2.0/UDP 0.0.0.0:0;branch={new_branch()}"),
             ("From", str(presented.from_.with_tag(new_tag()))), ("To", f"<{target_uri}>"),
             ("Call-ID", new_call_id()), ("CSeq", "1 INVITE"),
             ("Max-Forwards", str(max_forwards)), ("Allow", ALLOW),
             ("Contact", "<sip:wte@0.0.0.0:0>")]
    return Request("INVITE", parse_uri(target_uri), Headers(items), b"")


_IDENTITY = ("p-asserted-identity", "privacy", "diversion", "history-info",
             "p-preferred-identity")


def present_as(groups: Sequence[Sequence[LegTarget]],
               presented: Presented) -> list[list[LegTarget]]:
    """Every leg shows `presented`: the identity the resolver derived (from the virtual
    caller, or from a party already in the call) is replaced, never merged."""
    out: list[list[LegTarget]] = []
    for group in groups:
        out.append([dataclasses.replace(
            t, from_=presented.from_, number=presented.number,
            identity_headers=(*(h for h in t.identity_headers
                                if h[0].lower() not in _IDENTITY), *presented.headers))
            for t in group])
    return out


def answered_call(leg: Leg, ok: Response, template: Call, now: float) -> Call:
    """The call an originated leg's answering party belongs to: answered, its caller side
    the UAC dialog of that leg (the party's BYE and re-INVITEs reach it as the caller's;
    our BYE goes there), no callee yet. ``a_invite`` is the INVITE we sent with the party's
    answer as body: what the media is bridged from (the party's address and codec)."""
    if leg.dialog is None:
        raise OriginTransitionError("an originated leg answered without a dialog")
    invite = leg.invite.replace(body=ok.body)
    call = Call(invite, leg.dest, template.local, now, 0.0, answer_sdp=_same,
                t1=template.t1, t2=template.t2)
    # the party answered us: the call starts where an answered incoming call is after
    # the caller's ACK (no 2xx of ours to retransmit, no ACK to wait for)
    call.state = CallState.ANSWERED
    call.answered_at = now
    call.a_dialog = leg.dialog
    call.a_to_tag = leg.dialog.local_tag
    return call


def _same(leg: LegId, body: bytes) -> bytes:
    return body


__all__ = [
    "ORIGIN_TRANSITIONS",
    "OriginState",
    "OriginTransitionError",
    "Presented",
    "answered_call",
    "next_state",
    "origination_request",
    "present_as",
]
