"""Calls the switch places itself: ring a party, then run a call application on it.

A queue's callback (issue 14) calls the agent first and then the caller who asked to be
called back; later, callback on busy rings the caller then the freed user. Both start
here (`Originator.place`):

1. the target (a full internal number, an extension of the given site, or an external
   number) is routed from a site (`dialplan.route_application_target`): the customer's
   barring profile decides whether an external number may be called at all, so no
   number a customer could not dial itself is ever called on its behalf;
2. its legs come from the target resolver (a user's registered phones, a group's
   members, the trunk) with the identity the switch presents (`b2bua.originate.present_as`)
   and an offer from a fresh media endpoint; an inner `Call` with a virtual caller rings
   them (forking, hunting, ring timeouts as for any call), as `switch.divert` does;
3. when a leg answers, the call joins the call service as an answered call whose caller
   side is that party (`b2bua.originate.answered_call`), and the application runs on the
   endpoint. To reach a second party the application sends `Transfer`: the call service's
   ordinary hand-over (`switch.divert`) rings it presenting ``then_presented`` and bridges
   the two through the relay (anchored media).

Every origination leaves a call record: answered ones through the call service, failed
ones closed here with their status.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, cast

from dialplan import DecisionKind, RoutingDecision, route_application_target
from dialplan.model import Site
from ivr.application import CallApplication, CallInfo
from media import MediaEndpoint
from rating.cdr import CallRecord
from switch.b2bua.assembly import assemble
from switch.b2bua.call import Call, disposition_for
from switch.b2bua.decisions import give_up
from switch.b2bua.effects import (
    LegId,
    Side,
)
from switch.b2bua.originate import (
    OriginState,
    Presented,
    answered_call,
    next_state,
    origination_request,
    present_as,
)
from switch.call_targets import hunt_step_for
from switch.calls import CallEntry, CallService, DialogRef
from switch.divert import ApplicationControl
from switch.inner_call import NOWHERE, InnerCall
from switch.services.applications import ApplicationRunner
from switch.services.call_record import new_call_record
from switch.sip import Request, Response, SipError
from switch.transaction import Peer

log = logging.getLogger("switch.originate")

# what may be originated toward: a party that answers (not an application or a mailbox)
RINGABLE = (DecisionKind.USER, DecisionKind.HUNT_GROUP, DecisionKind.EXTERNAL)


class OriginatingMedia(Protocol):
    """What an origination asks of the media service (`switch.media_service`)."""

    async def originating_endpoint(self) -> tuple[MediaEndpoint, bytes]: ...

    def originated_answer(self, endpoint: MediaEndpoint, offer: bytes,
                          answer: bytes) -> None: ...


@dataclass(frozen=True)
class Origination:
    """One call to place."""

    site: Site  # routed from here, with its customer's barring
    target: str
    presented: Presented  # who the rung party sees calling
    application: Callable[[CallInfo], CallApplication]  # runs once it answered
    then_presented: Presented | None = None  # what the application's Transfer presents
    # what the call record and the application's routing see (a queue's callback: the
    # queue, whose site the Transfer is routed from); None: the target's decision
    decision: RoutingDecision | None = None
    ring_timeout: float | None = None
    label: str = "originate"  # for log lines
    on_answered: Callable[[CallEntry], None] | None = None
    # the answered call ends; its record is still open (the owner may note an outcome)
    on_ended: Callable[[CallEntry], None] | None = None
    on_failed: Callable[[int, str], None] | None = None
    record: Callable[[CallRecord], CallRecord] | None = None  # extra record fields


class Originator:
    """Places calls for the switch's own services."""

    def __init__(self, calls: CallService) -> None:
        self.calls = calls
        self.active: set[OriginatedCall] = set()
        self._tasks: set[asyncio.Future[None]] = set()

    def place(self, spec: Origination) -> OriginatedCall:
        call = OriginatedCall(self, spec)
        self.active.add(call)
        task = asyncio.ensure_future(self._run(call))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return call

    async def _run(self, call: OriginatedCall) -> None:
        try:
            await call.run()
        except Exception:  # a bug must not leave the requester waiting forever
            log.exception("%s: origination to %s failed", call.spec.label, call.spec.target)
            call.fail(500, "Server Internal Error")

    # -- Service: started with the switch; stopping cancels what still rings --

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        for call in list(self.active):
            call.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


class OriginatedCall:
    """One origination, from routing to its answer (then the call service has it)."""

    def __init__(self, owner: Originator, spec: Origination) -> None:
        self.owner = owner
        self.calls = owner.calls
        self.spec = spec
        self.state = OriginState.ROUTING
        self.inner: Call | None = None
        self.pump: InnerCall | None = None
        self.endpoint: MediaEndpoint | None = None
        self.offer = b""
        self.record: CallRecord | None = None
        self.decision = RoutingDecision(DecisionKind.REJECT)  # routed in run()
        self.leg_users: dict[str, str] = {}  # Call-ID of a leg -> the user it rings

    def _go(self, state: OriginState) -> None:
        self.state = next_state(self.state, state)

    # -- routing and ringing --

    async def run(self) -> None:
        spec, calls = self.spec, self.calls
        decision = route_application_target(calls.plan.plan, spec.site, spec.target,
                                            dt.datetime.now(dt.UTC),
                                            forced=calls.schedule_modes.forced)
        uri = f"sip:{spec.target}@{spec.site.customer.sip_domain}"
        template = origination_request(spec.presented, uri)
        self.decision = decision
        record_decision = spec.decision or decision
        record = new_call_record(template, None, record_decision, calls.clock())
        record = dataclasses.replace(record, customer=spec.site.customer.id,
                                     callee=_callee(decision, spec.target),
                                     site=spec.site.code)
        self.record = spec.record(record) if spec.record is not None else record
        calls.records.open(self.record)
        log.info("%s call=%s target=%s decision=%s", spec.label, template.call_id,
                 spec.target, decision.kind.value)
        if decision.kind not in RINGABLE:
            status = decision.status or 403
            self._fail(status, decision.reason or f"cannot call a {decision.kind.value}")
            return
        groups = present_as(calls.resolver.targets(decision, None, template), spec.presented)
        if not groups:
            self._fail(480, "Temporarily Unavailable")
            return
        media = cast(OriginatingMedia | None, calls.media)
        if media is None:
            self._fail(503, "Media Unavailable")
            return
        try:
            self.endpoint, self.offer = await media.originating_endpoint()
        except SipError as exc:
            self._fail(exc.status, exc.reason)
            return
        if self.state is not OriginState.ROUTING:  # cancelled meanwhile
            await self._close_endpoint()
            return
        t = calls.timers
        ring_timeout = spec.ring_timeout or t.ring_timeout
        self.inner = Call(template, NOWHERE, calls.local, calls.now(), ring_timeout,
                          answer_sdp=_same, t1=t.t1, t2=t.t2, exhausted_policy=give_up)
        assembled = assemble(groups, body=self.offer, local=calls.local,
                             max_forwards=max(0, (template.max_forwards or 70) - 1))
        steps: list[list[tuple[Request, Peer]]] = []
        for group_legs in assembled:
            for leg in group_legs:
                if leg.user is not None:
                    self.leg_users[leg.invite.call_id] = leg.user
            steps.append([(leg.invite, leg.dest) for leg in group_legs])
        self._go(OriginState.RINGING)
        self.pump = InnerCall(calls.runtime, self.inner,
                              ringing=lambda: self.state is OriginState.RINGING,
                              on_answer=self._answered, on_failure=self._fail)
        self.pump.ring(steps, hunt_step_for(decision, t.hunt_step))

    # -- outcomes --

    def _answered(self, ok: Response) -> None:
        calls, spec, inner, endpoint = self.calls, self.spec, self.inner, self.endpoint
        assert inner is not None and endpoint is not None and self.record is not None
        self._go(OriginState.ANSWERED)
        self.owner.active.discard(self)
        now = calls.now()
        inner.on_ack(now)  # the virtual caller "ACKs" at once
        leg = inner.answered
        assert leg is not None  # a 2xx to the virtual caller names its leg
        answer = ok.body
        try:
            media = cast(OriginatingMedia, calls.media)
            media.originated_answer(endpoint, self.offer, answer)
        except (SipError, ValueError) as exc:
            log.info("%s call=%s: unusable answer (%s), hanging up", spec.label,
                     self.record.call_id, exc)
            if self.pump is not None:
                self.pump.perform(inner.hang_up(now, "no usable media"))
            self._close_later()
            self._closed_record(488, "no usable media in the answer", answered=True)
            if spec.on_failed is not None:
                spec.on_failed(488, "Not Acceptable Here")
            return
        call = answered_call(leg, ok, inner, now)
        record = dataclasses.replace(self.record, answer=calls.clock())
        entry = CallEntry(call, ("originated", leg.invite.call_id), None,
                          spec.decision or self.decision, record,
                          a_sdp=self.offer, presented=spec.then_presented)
        calls.records.answered(entry.record)
        calls.by_call_id[leg.invite.call_id] = DialogRef(entry, Side.CALLER)
        user = self.leg_users.get(leg.invite.call_id)
        key = f"{spec.site.customer.id}:{user}" if user is not None else None
        if key is not None:  # the answering user is in a call (its watchers, a queue)
            calls.watch.leg_answered(key, leg.invite.call_id)
        entry.on_end = functools.partial(_ended, calls, key, leg.invite.call_id, spec.on_ended)
        info = CallInfo(leg.invite.call_id, user or spec.target, str(leg.invite.uri),
                        secrets.token_hex(6))
        entry.app = ApplicationRunner(spec.application(info), endpoint,
                                      ApplicationControl(calls, entry), info,
                                      recordings=calls.recordings, prompts=calls.prompts)
        log.info("%s call=%s answered by %s (dialog %s)", spec.label, self.record.call_id,
                 user or spec.target, leg.invite.call_id)
        entry.app.start()
        entry.app.answered()
        calls.perform(entry, [])
        if spec.on_answered is not None:
            spec.on_answered(entry)

    def fail(self, status: int, reason: str) -> None:
        self._fail(status, reason)

    def _fail(self, status: int, reason: str) -> None:
        if self.state in (OriginState.FAILED, OriginState.CANCELLED, OriginState.ANSWERED):
            return
        self._go(OriginState.FAILED)
        self.owner.active.discard(self)
        log.info("%s call=%s target=%s failed status=%d reason=%s", self.spec.label,
                 self.record.call_id if self.record else "-", self.spec.target, status, reason)
        self._closed_record(status, reason, answered=False)
        self._close_later()
        if self.spec.on_failed is not None:
            self.spec.on_failed(status, reason)

    def cancel(self) -> None:
        """The switch gives up (shutting down): CANCEL the ringing legs."""
        if self.state not in (OriginState.ROUTING, OriginState.RINGING):
            return
        ringing = self.state is OriginState.RINGING
        self._go(OriginState.CANCELLED)
        self.owner.active.discard(self)
        if ringing and self.inner is not None and self.pump is not None:
            self.pump.perform(self.inner.on_cancel(self.calls.now()))
        self._closed_record(487, "cancelled by the switch", answered=False)
        self._close_later()

    def _closed_record(self, status: int, cause: str, *, answered: bool) -> None:
        if self.record is None:
            return
        self.record = self.record.closed(
            end=self.calls.clock(), disposition=disposition_for(status).value, status=status,
            cause=cause, side=Side.CALLEE.value if not answered else Side.SWITCH.value)
        self.calls.records.close(self.record)

    def _close_later(self) -> None:
        if self.pump is not None:
            self.pump.stop_timer()
        if self.endpoint is not None:
            task = asyncio.ensure_future(self._close_endpoint())
            self.owner._tasks.add(task)
            task.add_done_callback(self.owner._tasks.discard)

    async def _close_endpoint(self) -> None:
        endpoint, self.endpoint = self.endpoint, None
        if endpoint is not None:
            try:
                await endpoint.close()
            except Exception:  # closing twice or a socket already gone
                log.debug("originate: endpoint close failed", exc_info=True)


def _ended(calls: CallService, key: str | None, call_id: str,
           then: Callable[[CallEntry], None] | None, entry: CallEntry) -> None:
    if key is not None:
        calls.watch.leg_ended(key, call_id)
    if then is not None:
        then(entry)


def _callee(decision: RoutingDecision, target: str) -> str:
    if decision.kind is DecisionKind.EXTERNAL:
        return decision.e164 or decision.number or target
    return getattr(decision.target, "full_number", None) or target


def _same(leg: LegId, body: bytes) -> bytes:
    return body


__all__ = ["RINGABLE", "OriginatedCall", "Origination", "Originator"]
