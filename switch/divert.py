"""An application hands its caller to a target (`ivr.application.Transfer`).

An auto-attendant's menu key, dial by extension, a queue's overflow: the caller already
talks to the switch (the application answered), and now a user, a hunt group or an
external number must ring while the caller hears ringback. The target is routed from the
application's site (`dialplan.route_application_target`) and handled by the call manager's
decision table like any call:

- ringing legs: a second, inner `Call` rings them, so forking, hunting, ring timeouts and
  the "every leg failed" policy are the ordinary ones. Its answers to its (virtual) caller
  are read here, never sent: a 2xx connects, a final failure gives the caller back to the
  application (`TransferFailed`). When the target answers, its leg is adopted by the
  caller's call (`Call.adopt_callee`) and the application's media endpoint becomes the
  caller's relay leg (`MediaService.bridge`): the caller keeps the same RTP port, so no
  re-INVITE reaches the caller's phone.
- another application (a nested auto-attendant, a mailbox): it replaces the current one on
  the same media endpoint.
- a refusal (unknown number, barred): `TransferFailed` with its status.

The target sees the original caller (the caller's identity is kept, as the issue asks).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from enum import Enum, auto
from typing import TYPE_CHECKING, Protocol

from dialplan import DecisionKind, RoutingDecision, User, route_application_target
from dialplan.model import Queue, Site
from ivr.application import CallApplication, CallInfo, TransferFailed
from media import MediaEndpoint, RelayLeg
from switch.b2bua.assembly import assemble
from switch.b2bua.call import Call
from switch.b2bua.decisions import (
    AppContext,
    ApplicationFactory,
    InContext,
    Refuse,
    RingMore,
    RunApplication,
    give_up,
    handling_for,
)
from switch.b2bua.effects import (
    LegId,
    Side,
)
from switch.b2bua.forwarding import Diversion, ForwardReason, forwarding_headers
from switch.b2bua.originate import present_as
from switch.call_targets import Target, hunt_step_for, ring_timeout_for
from switch.inner_call import NOWHERE, InnerCall
from switch.media_service import Anchor
from switch.services import call_watch
from switch.services.applications import call_customer
from switch.services.personal import PersonalCalls, PersonalRouting, users_in_calls
from switch.sip import Request, Response, SipError
from switch.transaction import Peer
from switch.transfer import latch_onto, target_number

if TYPE_CHECKING:
    from switch.calls import CallEntry, CallService

log = logging.getLogger("switch.divert")



class DivertState(Enum):
    RINGING = auto()
    CONNECTED = auto()  # the target answered: the caller talks to it through the relay
    FAILED = auto()  # back to the application
    HANDED = auto()  # another application took the caller (mailbox on no answer)
    CANCELLED = auto()  # the caller hung up meanwhile


TRANSITIONS: dict[tuple[DivertState, str], DivertState] = {
    (DivertState.RINGING, "answered"): DivertState.CONNECTED,
    (DivertState.RINGING, "failed"): DivertState.FAILED,
    (DivertState.RINGING, "application"): DivertState.HANDED,
    (DivertState.RINGING, "cancel"): DivertState.CANCELLED,
}


class DivertMedia(Protocol):
    """What a transfer out of an application asks of the media service."""

    async def divert_leg(self) -> RelayLeg: ...

    def divert_offer(self, endpoint: MediaEndpoint, leg: RelayLeg) -> bytes: ...

    def bridge(self, endpoint: MediaEndpoint, leg_b: RelayLeg, caller_offer: bytes, *,
               caller_host: str | None) -> Anchor: ...


def application_site(entry: CallEntry) -> Site | None:
    """Where the application's targets are routed from: the site of what was called (an
    auto-attendant, a queue), else the caller's own (a feature code)."""
    site = getattr(entry.decision.target, "site", None)
    if isinstance(site, Site):
        return site
    return entry.caller.site if entry.caller is not None else None


async def transfer_from_application(service: CallService, entry: CallEntry,
                                    target: str) -> None:
    """Route `target` and ring it (or hand the caller to another application, or fail)."""
    runner = entry.app
    if runner is None or runner.closed:
        return
    site = application_site(entry)
    if site is None:
        runner.deliver(TransferFailed(target, 404, "no site to route from"))
        return
    together = target.split(",")  # a queue's ring all: its agents, rung at once
    decision = route_application_target(service.plan.plan, site, together[0],
                                        dt.datetime.now(dt.UTC),
                                        forced=service.schedule_modes.forced)
    log.info("call %s: application transfer to %s decision=%s", entry.call.a_invite.call_id,
             target, decision.kind.value)
    personal: PersonalRouting | None = None
    if service.personal is not None and not queue_member(entry, decision):
        # the target user's DND, forwarding, simultaneous ring (not for a queue's agent)
        personal = service.personal.route(decision, entry.caller, entry.call.a_invite,
                                          lambda: users_in_calls(service.by_call_id.values()))
        if personal is not None and personal.refuse is not None:
            runner.deliver(TransferFailed(target, personal.refuse.status,
                                          personal.refuse.reason))
            return
        if personal is not None and personal.feature is not None:
            personal = None  # a feature code is no target for an application
        elif personal is not None:
            decision = personal.decision
    handling = handling_for(decision, service.applications, service.features)
    if isinstance(handling, Refuse):
        runner.deliver(TransferFailed(target, handling.status, handling.reason))
        return
    if isinstance(handling, RunApplication):
        runner.replace(make_application(handling.factory, runner.info, decision, entry),
                       handling.name)
        return
    endpoint = runner.media
    media = service.media
    if not isinstance(endpoint, MediaEndpoint) or media is None:
        runner.deliver(TransferFailed(target, 503, "media cannot be bridged"))
        return
    groups = service.resolver.targets(decision, entry.caller, entry.call.a_invite)
    if personal is not None and service.personal is not None:
        groups = service.personal.targets(personal, entry.caller, entry.call.a_invite, groups,
                                          service.resolver.targets)
    if len(together) > 1 and queue_member(entry, decision):
        groups = rung_together(service, entry, site, together, groups)
    if not groups:
        runner.deliver(TransferFailed(target, 480, "Temporarily Unavailable"))
        return
    if queue_member(entry, decision):
        groups = shown_as_queue(entry, groups)
    if entry.presented is not None:  # a call the switch placed: its own identity
        groups = present_as(groups, entry.presented)
    elif decision.kind is DecisionKind.EXTERNAL:
        groups = diverted_by_application(entry, site, groups)
    try:
        leg_b = await media.divert_leg()
    except SipError as exc:
        runner.deliver(TransferFailed(target, exc.status, exc.reason))
        return
    if entry.app is not runner or runner.closed:  # the caller left meanwhile
        leg_b._close()
        return
    divert = ApplicationTransfer(service, entry, target, decision, endpoint, leg_b, personal)
    entry.divert = divert
    divert.ring(groups)


class ApplicationTransfer:
    """One transfer out of an application, from the first ring to its outcome."""

    def __init__(self, service: CallService, entry: CallEntry, target: str,
                 decision: RoutingDecision, endpoint: MediaEndpoint, leg_b: RelayLeg,
                 personal: PersonalRouting | None = None) -> None:
        self.service = service
        self.entry = entry
        self.target = target
        self.decision = decision
        self.endpoint = endpoint
        self.leg_b = leg_b
        self.state = DivertState.RINGING
        self.offer = b""
        self.leg_users: dict[str, str] = {}  # Call-ID of a leg -> the user it rings
        self.personal = personal
        t = service.timers
        ring_timeout = ring_timeout_for(decision, t.ring_timeout)
        if personal is not None and personal.ring_timeout is not None:
            ring_timeout = personal.ring_timeout  # the user's ring time before forwarding
        # a queue rings its agent, never the agent's mailbox (the queue keeps its caller)
        policy = give_up if queue_member(entry, decision) else service._policy_for(decision)
        self.inner = Call(entry.call.a_invite, NOWHERE, service.local, service.now(),
                          ring_timeout, answer_sdp=_same,
                          t1=t.t1, t2=t.t2, exhausted_policy=policy)
        if personal is not None and service.personal is not None:
            # forwarding on busy/no answer/unreachable, then the switch's own policy
            self.inner.exhausted_policy = service.personal.policy(
                personal, entry.caller, entry.call.a_invite, service.resolver.targets,
                self._ring_more, self.inner.exhausted_policy)
        self.pump = InnerCall(service.runtime, self.inner,
                              ringing=lambda: self.state is DivertState.RINGING,
                              on_answer=self._connected, on_failure=self._failed,
                              on_application=self._hand_to)

    def _go(self, event: str) -> bool:
        nxt = TRANSITIONS.get((self.state, event))
        if nxt is None:
            return False
        log.debug("divert %s: %s --%s--> %s", self.entry.call.a_invite.call_id,
                  self.state.name, event, nxt.name)
        self.state = nxt
        return True

    def ring(self, groups: list[list[Target]]) -> None:
        service = self.service
        assert service.media is not None  # checked before the divert was made
        self.offer = service.media.divert_offer(self.endpoint, self.leg_b)
        invite = self.entry.call.a_invite
        assembled = assemble(groups, body=self.offer, local=service.local,
                             emergency=None,
                             max_forwards=max(0, (invite.max_forwards or 70) - 1))
        steps: list[list[tuple[Request, Peer]]] = []
        for group_legs in assembled:
            for leg in group_legs:
                if leg.user is not None:
                    self.leg_users[leg.invite.call_id] = leg.user
            steps.append([(leg.invite, leg.dest) for leg in group_legs])
        step = hunt_step_for(self.decision, service.timers.hunt_step)
        if self.personal is not None and self.personal.hunt_step is not None:
            step = self.personal.hunt_step  # the user's sequential ring
        self.pump.ring(steps, step)

    def _ring_more(self, groups: list[list[Target]], billed: User | None) -> RingMore | None:
        """Legs toward the target user's forwarding destination, for the inner call."""
        invite = self.entry.call.a_invite
        assembled = assemble(groups, body=self.offer, local=self.service.local,
                             max_forwards=max(0, (invite.max_forwards or 70) - 1),
                             first_leg=len(self.inner.legs))
        for group_legs in assembled:
            for leg in group_legs:
                if leg.user is not None:
                    self.leg_users[leg.invite.call_id] = leg.user
        self.entry.record = PersonalCalls.bill(self.entry.record, billed)
        return RingMore(tuple(tuple((leg.invite, leg.dest) for leg in g) for g in assembled),
                        self.service.timers.ring_timeout)

    # -- outcomes --

    def _connected(self, ok: Response) -> None:
        if not self._go("answered"):
            return
        service, entry, inner = self.service, self.entry, self.inner
        self.inner.on_ack(service.now())  # the virtual caller "ACKs" at once
        leg = inner.answered
        runner = entry.app
        if leg is None or runner is None or service.media is None:
            return
        call_id = entry.call.a_invite.call_id
        anchor = service.media.bridge(self.endpoint, self.leg_b, entry.call.a_invite.body,
                                      caller_host=entry.call.a_peer.host)
        latch_onto(anchor, Side.CALLEE, ok.body, leg.dest.host)
        # either party may hold from now on: the other hears its customer's music
        anchor.hold_music = service.prompts.music_on_hold_for(
            call_customer(entry.caller, entry.decision))
        runner.detach()
        entry.app = None
        entry.anchor = anchor
        entry.b_sdp = self.offer
        entry.divert = None
        leg_id = entry.call.adopt_callee(leg)
        service.bind_dialog(leg.invite.call_id, entry, Side.CALLEE, leg_id)
        user = self.leg_users.get(leg.invite.call_id)
        if user is not None:
            entry.leg_users[leg_id] = user
            # the answering user is in a call now (its watchers, a queue's agent state)
            call_watch.leg_response(service.watch, entry, leg_id, ok)
        number = target_number(self.decision, self.target)
        if "," in self.target and user is not None:  # ring all: the agent who answered
            number = user
        entry.record = dataclasses.replace(entry.record, transferred_to=number)
        log.info("call %s: application handed the caller to %s", call_id, number)

    def _failed(self, status: int, reason: str) -> None:
        if not self._go("failed"):
            return
        self._release()
        runner = self.entry.app
        log.info("call %s: application transfer to %s failed with %d",
                 self.entry.call.a_invite.call_id, self.target, status)
        if runner is not None and not runner.closed:
            runner.deliver(TransferFailed(self.target, status, reason))

    def _hand_to(self, name: str) -> None:
        """The target's no-answer or busy treatment is an application (its mailbox): it
        takes over the caller on the same endpoint."""
        if not self._go("application"):
            return
        self.pump.perform(self.inner.hang_up(self.service.now(), f"handed to {name}"))
        self._release()
        runner = self.entry.app
        factory = self.service.applications.get(name)
        if runner is None or runner.closed:
            return
        if factory is None:
            runner.deliver(TransferFailed(self.target, 480, f"{name} unavailable"))
            return
        runner.replace(make_application(factory, runner.info, self.decision, self.entry), name)

    def cancel(self) -> None:
        """The caller hung up while the target rang."""
        if not self._go("cancel"):
            return
        self.pump.perform(self.inner.on_cancel(self.service.now()))
        self._release()

    def _release(self) -> None:
        self.pump.stop_timer()
        self.leg_b._close()
        if self.entry.divert is self:
            self.entry.divert = None


def rung_together(service: CallService, entry: CallEntry, site: Site, numbers: list[str],
                  groups: list[list[Target]]) -> list[list[Target]]:
    """A queue's ring all (issue 14): the phones of every agent in `numbers` ring in one
    group, the first to answer wins (the others are cancelled, RFC 3261 16.7 done by a
    B2BUA). Only the queue's own users are rung; anything else in the list is ignored."""
    legs = [t for g in groups for t in g]
    now = dt.datetime.now(dt.UTC)
    for number in numbers[1:]:
        decision = route_application_target(service.plan.plan, site, number, now,
                                            forced=service.schedule_modes.forced)
        if decision.kind is DecisionKind.USER and queue_member(entry, decision):
            legs.extend(t for g in service.resolver.targets(decision, entry.caller,
                                                           entry.call.a_invite) for t in g)
    return [legs] if legs else []


def queue_member(entry: CallEntry, decision: RoutingDecision) -> bool:
    """The application is a queue's and rings one of its agents (issue 14): any user it
    rings but its overflow target, which keeps the user's own forwarding and mailbox."""
    queue, user = entry.decision.target, decision.target
    if not isinstance(queue, Queue) or not isinstance(user, User):
        return False
    overflow = queue.overflow_target
    return overflow is None or overflow.kind is not DecisionKind.USER or (
        overflow.entity.full_number != user.full_number)


def shown_as_queue(entry: CallEntry, groups: list[list[Target]]) -> list[list[Target]]:
    """A queue's agent sees the caller's number with the queue's name as display name
    (issue 14: the agent knows which line the caller called)."""
    queue = entry.decision.target
    if not isinstance(queue, Queue):
        return groups
    return [[dataclasses.replace(t, from_=dataclasses.replace(t.from_, display=queue.name))
             for t in group] for group in groups]


def diverted_by_application(entry: CallEntry, site: Site,
                            groups: list[list[Target]]) -> list[list[Target]]:
    """An application sending its caller to the public network keeps the caller's number in
    From, so the carrier is told who redirected the call and that it was on purpose:
    `Diversion` (RFC 5806) and `History-Info` (RFC 7044) naming the application's public
    number (the site's main number when it has none), reason `unconditional`."""
    number = getattr(entry.decision.target, "public_number", None) or site.main_number
    if number is None:
        return groups
    hop = Diversion(f"sip:{number}@{site.customer.sip_domain};user=phone",
                    ForwardReason.ALWAYS)
    out: list[list[Target]] = []
    for group in groups:
        out.append([dataclasses.replace(t, identity_headers=(
            *(h for h in t.identity_headers
              if h[0].lower() not in ("diversion", "history-info")),
            *forwarding_headers((hop,), t.request_uri))) for t in group])
    return out


def make_application(factory: ApplicationFactory, info: CallInfo, decision: RoutingDecision,
                     entry: CallEntry) -> CallApplication:
    """The application for the target's own decision (a mailbox knows its owner from it)."""
    if isinstance(factory, InContext):
        return factory.make(info, AppContext(decision, entry.caller, entry.call.a_peer.host))
    return factory(info)


def _same(leg: LegId, body: bytes) -> bytes:
    return body


class ApplicationControl:
    """What an application may do to its call (`CallControl`), for one call."""

    def __init__(self, service: CallService, entry: CallEntry) -> None:
        self.service = service
        self.entry = entry

    def hang_up(self, cause: str) -> None:
        self.service.perform(self.entry, self.entry.call.hang_up(self.service.now(), cause))

    def transfer(self, target: str) -> None:
        """Ring `target` for the application's caller (`switch.divert`)."""
        self.service._spawn(transfer_from_application(self.service, self.entry, target))


__all__ = [
    "NOWHERE",
    "ApplicationControl",
    "ApplicationTransfer",
    "DivertMedia",
    "DivertState",
    "application_site",
    "transfer_from_application",
]
