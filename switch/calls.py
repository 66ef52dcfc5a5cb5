"""The call service: the pump between SIP and the pure call manager.

For a new INVITE it identifies the caller (a trusted trunk by address, or a phone by digest
with a 407 challenge), asks the dialplan for a decision and the call manager's table
(`switch.b2bua.decisions`) how to handle it: ring legs (found by `TargetResolver`), answer
with a call application (run by `switch.services.applications`), or refuse with a status.
Then it translates SIP events into inputs of the pure `Call` and performs the Call's
effects: client transactions, stateless sends, answers to the caller, media and records.
Every attempt that reaches the dialplan leaves a call record, refused ones included.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any

from dialplan import MediaMode, RoutingDecision, User
from dialplan.router import RouteCache
from ivr.night_switch import ScheduleControl
from rating.cdr import CallRecord
from switch.attended_transfer import AttendedTransfers
from switch.b2bua.assembly import EmergencyBuilder, EmergencyParts, assemble
from switch.b2bua.call import Call, CallState
from switch.b2bua.decisions import (
    APPLICATIONS,
    NO_TARGET,
    AnswerWith,
    ApplicationFactory,
    DecisionPolicy,
    Exhausted,
    ExhaustedPolicy,
    FeatureServices,
    Refuse,
    RingLegs,
    RunApplication,
    give_up,
    handling_for,
)
from switch.b2bua.effects import (
    Answered,
    CalleeMedia,
    Disposition,
    Effect,
    Ended,
    LegId,
    RespondCaller,
    SendRequest,
    SendStateless,
    Side,
    StartApplication,
    Transferred,
)
from switch.b2bua.legs import LocalAddress
from switch.call_applications import answer_with, start_application
from switch.call_entry import CallEntry, DialogRef, MediaAnchoring, same_body
from switch.call_requests import MIN_SE, InDialogRequests
from switch.call_targets import Target, TargetResolver, hunt_step_for, ring_timeout_for
from switch.dialog.session_timer import UasDecision, uas_negotiate
from switch.internal_calls import InternalInvites
from switch.linger import Lingering
from switch.media_service import Anchor, close_media
from switch.runtime import ServerRequest, SipRuntime
from switch.services import call_watch  # issue 17: watchers of users' calls
from switch.services.admission import CallAdmission
from switch.services.applications import (
    ApplicationRunner,
    PromptLibrary,
    call_customer,
)
from switch.services.call_record import log_call_end, new_call_record
from switch.services.caller import authenticate, callback_override
from switch.services.personal import (
    PersonalCalls,
    PersonalRouting,
    ring_forwarded,
    users_in_calls,
)
from switch.services.ports import (
    Accounts,
    CallerAuthority,
    CallRecords,
    CallStateObserver,
    CallTimers,
    EmergencyHooks,
    Locations,
    NoCallObserver,
    NoScheduleOverrides,
    PlanSource,
    ScheduleOverrides,
)
from switch.sip import Request, Response, SipError, make_response, new_tag
from switch.transaction import Peer
from switch.transfer import TransferHandler

log = logging.getLogger("switch.calls")



def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class CallService:
    def __init__(self, runtime: SipRuntime, local: LocalAddress, *, plan: PlanSource,
                 accounts: Accounts, authority: CallerAuthority, locations: Locations,
                 records: CallRecords, media: MediaAnchoring | None,
                 emergency: EmergencyHooks | None, timers: CallTimers,
                 recordings: Path, prompts: PromptLibrary,
                 applications: Mapping[str, ApplicationFactory] = APPLICATIONS,
                 exhausted_policy: ExhaustedPolicy = give_up,
                 admission: CallAdmission | None = None,
                 wall_clock: Callable[[], float] = time.time,
                 schedule_modes: ScheduleOverrides | None = None,
                 schedule_control: ScheduleControl | None = None,
                 watch: CallStateObserver | None = None,
                 personal: PersonalCalls | None = None,
                 decision_policy: DecisionPolicy | None = None,
                 settle: Callable[[str], Awaitable[None]] | None = None) -> None:
        self.runtime = runtime
        self.local = local
        self.plan = plan
        self.accounts = accounts
        self.authority = authority
        self.records = records
        self.media = media
        self.emergency = emergency
        self.timers = timers
        self.recordings = recordings
        self.prompts = prompts
        self.applications = applications
        self.exhausted_policy = exhausted_policy  # forwarding and voicemail plug in here
        # voicemail (issue 13): a policy bound to each call's decision (it diverts a user's
        # calls, not a group's), and the durable work of an application (a message
        # committed) awaited before the caller's BYE gets its 200 OK
        self.decision_policy = decision_policy
        self.settle = settle
        self.admission = admission if admission is not None else CallAdmission()
        self.personal = personal  # issue 15: DND, forwarding, privacy (services/personal.py)
        self.clock = wall_clock
        # the night switch: forced schedule modes for routing, and where *55 stores one
        self.schedule_modes = schedule_modes or NoScheduleOverrides()
        self.features = FeatureServices(schedules=schedule_control)
        self.watch = watch or NoCallObserver()  # issue 17: dialog/presence subscriptions
        self.by_call_id: dict[str, DialogRef] = {}
        self.trunk_attempts: Counter[str] = Counter()
        self.routes = RouteCache()
        self.resolver = TargetResolver(lambda: locations.location, wall_clock)
        self.transfers = TransferHandler(self)
        self.internal = InternalInvites(local)  # issue 16: INVITEs to itself (park)
        self.attended = AttendedTransfers(self)
        self.requests = InDialogRequests(self)
        self._tasks: set[asyncio.Future[None]] = set()
        self._session: tuple[Request, UasDecision] | None = None  # see _session_of
        # ended calls kept to absorb retransmissions, then forgotten (one timer for all)
        self.lingering: Lingering[CallEntry] = Lingering(lambda: self.runtime.loop,
                                                         self.now, self._forget)
        # told every closed call record, after it is written (switch/services/busy_callback)
        self.ended_hooks: list[Callable[[CallRecord], None]] = []

    # -- lifecycle --

    async def start(self) -> None:
        rt = self.runtime
        rt.register_handler("INVITE", self.on_invite)
        rt.register_handler("ACK", self.requests.on_ack)
        rt.register_handler("BYE", self.requests.on_bye)
        rt.register_handler("UPDATE", self.requests.on_update)
        rt.register_handler("REFER", self.transfers.on_refer)
        rt.register_handler("INFO", self.requests.on_info)

    def hang_up_all(self) -> None:
        """A stopping switch hangs its calls up (BYE both sides, records closed) while it
        can still reach the phones."""
        now = self.now()
        for ref in list(self.by_call_id.values()):
            if ref.side is Side.CALLER and ref.entry.call.state is not CallState.ENDED:
                self.perform(ref.entry, ref.entry.call.hang_up(now, "switch shutting down"))

    async def stop(self) -> None:
        self.hang_up_all()

    def now(self) -> float:
        return self.runtime.now()

    def _session_of(self, req: Request) -> UasDecision:
        """The RFC 4028 decision for `req`: the one `on_invite` took for this very
        INVITE (its headers are immutable), else taken now."""
        kept = self._session
        if kept is not None and kept[0] is req:
            return kept[1]
        return uas_negotiate(req, min_se=MIN_SE, preferred=None)

    # -- INVITE --

    def on_invite(self, runtime: SipRuntime, sreq: ServerRequest) -> Awaitable[None] | None:
        req = sreq.request
        if req.to.tag is not None:
            self.requests.on_reinvite(sreq)
            return None
        contacts = req.contacts
        if not isinstance(contacts, list) or len(contacts) != 1:
            # RFC 3261 8.1.1.8: an INVITE carries exactly one Contact (the dialog's target)
            runtime.respond(sreq.key, make_response(req, 400, "Bad Contact", to_tag=new_tag()))
            return None
        if req.max_forwards == 0:
            # RFC 3261 16.3 step 2: a request that has run out of hops is looping
            runtime.respond(sreq.key, make_response(req, 483, to_tag=new_tag()))
            return None
        # RFC 4028: a Session-Expires below our Min-SE answers 422 before anything else;
        # the decision is kept for the call this INVITE starts (`_session_of`)
        self._session = (req, uas_negotiate(req, min_se=MIN_SE, preferred=None))
        plan = self.plan.plan
        trunk = plan.trunk_for_address(sreq.peer.host, sreq.peer.port)
        caller: User | None = None
        decision: RoutingDecision | None = None
        # issue 16: an INVITE from the switch itself (a transfer to park, a pickup)
        internal = self.internal.claim(req, sreq.peer)
        if internal is not None:
            caller, trunk = internal.user, None
        elif trunk is None:
            check = authenticate(self.runtime, sreq, plan, self.accounts, self.authority,
                                 self.clock())
            if check is None:
                return None
            caller, decision = check.user, check.emergency
        if req.headers.get("Replaces") is not None:  # RFC 3891: a phone takes a call's place
            self.attended.on_invite(sreq, caller)
            return None
        if decision is None:
            # an aware time: each schedule reads it in its own site's time zone; a repeated
            # call of a plan version without a schedule in its way is decided once
            decision = self.routes.route(plan, caller, trunk, str(req.uri), _utc_now,
                                         forced=self.schedule_modes.forced)
        if trunk is not None and self.emergency is not None:
            decision = callback_override(decision, req, self.emergency.callbacks, self.clock())
        # one INFO line per call, when it ends (`log_call_end`); this one is for debugging
        if log.isEnabledFor(logging.DEBUG):
            log.debug("call %s from=%s dialed=%s decision=%s", req.call_id,
                      caller.full_number if caller else f"trunk:{trunk.id if trunk else '?'}",
                      req.uri, decision.kind.value)
        # issue 15: the called user's own settings may refuse (433, DND), answer a feature
        # code, or change where the call goes (forwarding always, *31)
        personal = (self.personal.route(decision, caller, req,
                                        lambda: users_in_calls(self.by_call_id.values()))
                    if self.personal is not None else None)
        if personal is not None:
            if personal.refuse is not None:
                self.refuse(sreq, caller, personal.decision, personal.refuse)
                return None
            if personal.feature is not None:
                return self._start_feature(sreq, caller, personal.decision, personal.feature)
            decision = personal.decision
        handling = handling_for(decision, self.applications, self.features)
        if internal is not None and internal.handling is not None:
            handling = internal.handling  # issue 16: pickup's bridge answers it
        if isinstance(handling, Refuse):
            self.refuse(sreq, caller, decision, handling)
            return None
        # the switch's own legs (issue 16) are no call of the user's: never limited
        refusal = (self.admission.admit(req.call_id, caller, decision, self.clock())
                   if internal is None else None)
        if refusal is not None:  # per-account/site limits (toll fraud brake)
            self.refuse(sreq, caller, decision, refusal)
            return None
        if isinstance(handling, RunApplication):
            return start_application(self, sreq, caller, decision, handling)
        targets = self.resolver.targets(decision, caller, req)
        if personal is not None and self.personal is not None:  # issue 15: simring, Diversion
            targets = self.personal.targets(personal, caller, req, targets,
                                            self.resolver.targets)
        if not targets:
            # voicemail (issue 13): a user with no registered device reaches the mailbox
            step = self._policy_for(decision)(Exhausted(480, no_answer=False))
            factory = (self.applications.get(step.application)
                       if isinstance(step, AnswerWith) else None)
            if isinstance(step, AnswerWith) and factory is not None:
                log.info("call %s: nobody to ring, answering with %s", req.call_id,
                         step.application)
                return start_application(self, sreq, caller, decision,
                                               RunApplication(step.application, factory))
            self.refuse(sreq, caller, decision, NO_TARGET)
            return None
        if self.media is not None and req.body and self._anchored(caller, decision):
            return self._start_anchored(sreq, caller, decision, handling, targets, personal)
        self._start_call(sreq, caller, decision, handling, targets, personal=personal)
        return None

    def refuse(self, sreq: ServerRequest, caller: User | None, decision: RoutingDecision,
               refusal: Refuse) -> None:
        """Answer the INVITE ourselves and leave a record of the attempt."""
        self.admission.release(sreq.request.call_id)
        if self.runtime.txn.server_request(sreq.key) is None:  # type: ignore[arg-type]
            return  # cancelled meanwhile: the CANCEL got its 487
        headers = list(refusal.headers)
        if refusal.warning:
            headers.append(("Warning", refusal.warning))
        self.runtime.respond(sreq.key, make_response(sreq.request, refusal.status,
                                                     refusal.reason, to_tag=new_tag(),
                                                     headers=headers))
        record = self._open_record(sreq.request, caller, decision)
        self.records.open(record)  # opened and closed in one batch: a single INSERT
        record = record.closed(end=self.clock(), disposition=Disposition.REFUSED.value,
                               status=refusal.status, cause=refusal.reason,
                               side=Side.SWITCH.value)
        log_call_end(record)
        self.records.close(record)

    @staticmethod
    def _anchored(caller: User | None, decision: RoutingDecision) -> bool:
        """Media anchoring follows the site's setting: the caller's, or the callee's site
        for calls from the public network."""
        site = caller.site if caller is not None else getattr(decision.target, "site", None)
        return site is None or site.media is MediaMode.ANCHOR

    async def _start_anchored(self, sreq: ServerRequest, caller: User | None,
                              decision: RoutingDecision, handling: RingLegs,
                              targets: list[list[Target]],
                              personal: PersonalRouting | None = None) -> None:
        assert self.media is not None
        try:
            anchor = await self.media.anchor(sreq.request.body)
        except SipError as exc:  # no RTP port left: 503, recorded like any refusal
            self.refuse(sreq, caller, decision, Refuse(exc.status, exc.reason,
                                                        headers=tuple(exc.headers)))
            return
        if anchor is not None:  # what a party hears while the other holds
            anchor.hold_music = self.prompts.music_on_hold_for(call_customer(caller, decision))
        entry = self._start_call(sreq, caller, decision, handling, targets, anchor, personal)
        if entry is None:
            self.admission.release(sreq.request.call_id)
            if anchor is not None:
                await anchor.close()

    async def _start_feature(self, sreq: ServerRequest, caller: User | None,
                             decision: RoutingDecision,
                             pending: Awaitable[RunApplication]) -> None:
        """issue 15: a feature code's change is stored first, then confirmed."""
        await start_application(self, sreq, caller, decision, await pending)

    def _policy_for(self, decision: RoutingDecision) -> ExhaustedPolicy:
        """The exhausted policy of a call routed by `decision` (voicemail, issue 13)."""
        if self.decision_policy is None:
            return self.exhausted_policy
        return functools.partial(self.decision_policy, decision)

    def new_entry(self, sreq: ServerRequest, caller: User | None, decision: RoutingDecision,
                  anchor: Anchor | None,
                  personal: PersonalRouting | None = None) -> CallEntry | None:
        req = sreq.request
        if self.runtime.txn.server_request(sreq.key) is None:  # type: ignore[arg-type]
            return None  # cancelled or answered while media was being set up
        t = self.timers
        ring_timeout = ring_timeout_for(decision, t.ring_timeout)
        if personal is not None and personal.ring_timeout is not None:
            ring_timeout = personal.ring_timeout  # issue 15: ring time before forwarding
        call = Call(req, sreq.peer, self.local, self.now(), ring_timeout,
                    answer_sdp=anchor.answer_for_caller if anchor is not None else same_body,
                    t1=t.t1, t2=t.t2, exhausted_policy=self._policy_for(decision))
        session = self._session_of(req)
        if session.negotiated is not None and not session.negotiated.we_refresh:
            # the caller refreshes and we watch; we do not refresh toward phones ourselves
            call.session_interval = session.negotiated.interval
            call.session_headers = session.headers
        record = self._open_record(req, caller, decision)
        if personal is not None:  # issue 15: forwarded outside, the forwarding user pays
            record = PersonalCalls.bill(record, personal.billed)
        entry = CallEntry(call, sreq.key, caller, decision, record, anchor=anchor)
        if personal is not None and self.personal is not None:
            # issue 15: forwarding on busy/no answer/unreachable wraps the call's policy
            call.exhausted_policy = self.personal.policy(
                personal, caller, req, self.resolver.targets,
                functools.partial(ring_forwarded, self, entry), call.exhausted_policy)
        self.records.open(entry.record)
        self.by_call_id[self.internal.key(req.call_id)] = DialogRef(entry, Side.CALLER)
        self.runtime.cancel_listeners[sreq.key] = lambda: self.perform(
            entry, entry.call.on_cancel(self.now()))
        return entry

    def _start_call(self, sreq: ServerRequest, caller: User | None, decision: RoutingDecision,
                    handling: RingLegs, targets: list[list[Target]],
                    anchor: Anchor | None = None,
                    personal: PersonalRouting | None = None) -> CallEntry | None:
        entry = self.new_entry(sreq, caller, decision, anchor, personal)
        if entry is None:
            return None
        req, call = sreq.request, entry.call
        body = anchor.offer_for_callee() if anchor is not None else req.body
        entry.b_sdp = body
        emergency = self.emergency if handling.emergency else None
        builder: EmergencyBuilder | None = None
        if emergency is not None:
            hooks, nomadic = emergency, emergency.is_nomadic(caller, sreq.peer.host)

            def builder(number: str | None, sdp: bytes) -> EmergencyParts:
                return hooks.leg(decision, caller, number, sdp, nomadic)

            for group in targets:  # the alert and the call-back window, once per leg
                for target in group:
                    emergency.started(decision, caller, target.number,
                                      authenticated=caller is not None, nomadic=nomadic)
        assembled = assemble(targets, body=body, local=self.local, emergency=builder,
                             max_forwards=max(0, (req.max_forwards or 70) - 1))
        steps: list[list[tuple[Request, Peer]]] = []
        for group_legs in assembled:
            for leg in group_legs:
                self.by_call_id[leg.invite.call_id] = DialogRef(entry, Side.CALLEE, leg.leg)
                if leg.user is not None:
                    entry.leg_users[leg.leg] = leg.user
            steps.append([(leg.invite, leg.dest) for leg in group_legs])
        call_watch.call_started(self.watch, entry)  # issue 17: the caller's own dialog
        if len(steps) == 1:
            for invite, dest in steps[0]:
                self.perform(entry, call.add_leg(invite, dest))
        elif steps:
            step = hunt_step_for(decision, self.timers.hunt_step)
            if personal is not None and personal.hunt_step is not None:
                step = personal.hunt_step  # issue 15: the user's sequential ring
            self.perform(entry, call.start_hunt(steps, step, self.now()))
        return entry

    # -- effects --

    def perform(self, entry: CallEntry, effects: list[Effect]) -> None:
        rt = self.runtime
        for eff in effects:
            try:
                if isinstance(eff, SendRequest):
                    leg = eff.leg
                    if leg is not None:
                        rt.send_request(eff.request, eff.dest,
                                        functools.partial(self._on_leg_response, entry, leg))
                    else:
                        rt.send_request(eff.request, eff.dest)
                elif isinstance(eff, SendStateless):
                    rt.send_raw(eff.data, eff.dest)
                elif isinstance(eff, RespondCaller):
                    if eff.response.status >= 200:
                        rt.cancel_listeners.pop(entry.invite_key, None)
                    if eff.response.status == 200 and eff.response.body:
                        entry.a_sdp = eff.response.body
                    rt.respond(entry.invite_key, eff.response)
                elif isinstance(eff, Answered):
                    entry.record = dataclasses.replace(entry.record, answer=self.clock())
                    # written at answer, as accounting does at the 200: a crash mid-call
                    # keeps the answer time (issue 20.7)
                    self.records.answered(entry.record)
                    if entry.on_answered is not None:
                        rt.loop.call_soon(entry.on_answered)
                elif isinstance(eff, Ended):
                    self._ended(entry, eff)
                elif isinstance(eff, CalleeMedia):
                    if entry.anchor is not None:
                        callee = entry.call.leg(eff.leg)
                        entry.anchor.latch(eff.sdp, caller_host=entry.call.a_peer.host,
                                           callee_host=callee.dest.host if callee else None)
                elif isinstance(eff, Transferred):
                    self.transfers.transferred(entry, eff)
                elif isinstance(eff, StartApplication):
                    self._spawn(answer_with(self, entry, eff.application))
            except Exception:
                log.exception("call %s: effect %s failed", entry.call.a_invite.call_id,
                              type(eff).__name__)
        self._arm(entry)

    def _on_leg_response(self, entry: CallEntry, leg: LegId, resp: Response) -> None:
        now = self.now()
        if resp.status == 408 and not resp.headers.get("Call-ID"):
            effects = entry.call.on_leg_timeout(leg, now)  # Timer B: no answer at all
        else:
            effects = entry.call.on_response(leg, resp, now)
        call_watch.leg_response(self.watch, entry, leg, resp)  # issue 17: ringing/answered
        self.perform(entry, effects)

    def _arm(self, entry: CallEntry) -> None:
        deadline = entry.call.next_deadline()
        if entry.timer is not None:
            if deadline is not None and entry.timer_at <= deadline:
                # armed no later than needed (a 180 leaves the ring timeout where it was):
                # kept; if it fires early, nothing is due and it is armed again
                return
            entry.timer.cancel()
            entry.timer = None
        if deadline is not None:
            entry.timer = self.runtime.loop.call_at(deadline, self._fire, entry)
            entry.timer_at = deadline

    def _fire(self, entry: CallEntry) -> None:
        entry.timer = None
        self.perform(entry, entry.call.handle_timer(self.now()))

    def _open_record(self, req: Request, caller: User | None,
                     decision: RoutingDecision) -> CallRecord:
        if decision.trunk is not None:  # per-trunk attempts, for /metrics
            self.trunk_attempts[decision.trunk.id] += 1
        return new_call_record(req, caller, decision, self.clock())

    def _ended(self, entry: CallEntry, eff: Ended) -> None:
        call = entry.call
        entry.record = entry.record.closed(
            end=self.clock(), disposition=eff.disposition.value, status=eff.status,
            cause=eff.cause, side=eff.side.value)
        if entry.anchor is not None:
            loss, jitter = entry.anchor.quality()
            entry.record = dataclasses.replace(entry.record, codec=entry.anchor.codec,
                                               rtcp_loss=loss, rtcp_jitter_ms=jitter)
        log_call_end(entry.record)
        answered = entry.leg_users.get(call.answered_leg) if call.answered_leg is not None else None
        if answered is not None:
            self.resolver.call_ended(answered)
        call_watch.call_ended(self.watch, entry)  # issue 17: every watched leg ends
        if entry.on_end is not None:  # an originated call's owner (switch/originate.py)
            entry.on_end(entry)  # may still note its outcome in the record
        self.records.close(entry.record)
        self.admission.release(call.a_invite.call_id)
        if entry.on_ended is not None:
            self.runtime.loop.call_soon(entry.on_ended)
        if entry.divert is not None:  # the caller left while the application's target rang
            entry.divert.cancel()
        for hook in self.ended_hooks:  # callback on busy learns the busy calls here
            try:
                hook(entry.record)
            except Exception:
                log.exception("call %s: ended hook failed", call.a_invite.call_id)
        for media in (entry.app, entry.anchor):  # a diverted call may have both
            if media is not None:
                self._spawn(close_media(media))
        self.lingering.add(entry)

    def bind_dialog(self, call_id: str, entry: CallEntry, side: Side,
                    leg: LegId | None = None) -> None:
        """Requests of dialog `call_id` reach `entry` as `side`'s (a leg joined later)."""
        self.by_call_id[call_id] = DialogRef(entry, side, leg)
        if call_id != entry.call.a_invite.call_id and call_id not in entry.extra_call_ids:
            entry.extra_call_ids.append(call_id)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def dialog_ref(self, req: Request) -> DialogRef | None:
        """Which call (and side) an in-dialog request belongs to. A dialog the switch has
        with itself (`switch.internal_calls`) has both halves here under one Call-ID; a
        dialog is the Call-ID *and* the tags (RFC 3261 12.2.2: the To tag is the
        recipient's local tag), so a request whose To tag is not the inviting half's
        own From tag is for the answering half."""
        loop = self.by_call_id.get(self.internal.key(req.call_id))
        if loop is not None and loop.entry.call.a_invite.call_id == req.call_id and (
                req.to.tag != loop.entry.call.a_invite.from_.tag):
            return loop
        return self.by_call_id.get(req.call_id)

    def application_of(self, call_id: str) -> ApplicationRunner | None:
        """The application running on the call whose caller's Call-ID is `call_id`."""
        ref = self.by_call_id.get(self.internal.key(call_id)) or self.by_call_id.get(call_id)
        return ref.entry.app if ref is not None else None

    def _forget(self, entry: CallEntry) -> None:
        call_ids = [self.internal.key(entry.call.a_invite.call_id),
                    *(lg.invite.call_id for lg in entry.call.legs), *entry.extra_call_ids]
        for cid in call_ids:
            ref = self.by_call_id.get(cid)
            if ref is not None and ref.entry is entry:
                del self.by_call_id[cid]
        a_id = entry.call.a_invite.call_id
        if self.internal.key(a_id) not in self.by_call_id:
            self.internal.forget(a_id)

    def __len__(self) -> int:
        """Calls in progress (ended ones linger a while to absorb retransmissions)."""
        return sum(1 for ref in self.by_call_id.values()
                   if ref.side is Side.CALLER and ref.entry.call.state is not CallState.ENDED)


__all__ = ["CallEntry", "CallService", "DialogRef", "MediaAnchoring"]
