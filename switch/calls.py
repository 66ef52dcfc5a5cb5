"""The call service: the asyncio adapter around the pure B2BUA Call.

For a new INVITE it identifies the caller (a trusted trunk by address, or a phone by digest
with a 407 challenge), asks the dialplan for a decision, finds the targets (the location
service for users, the trunk for external and emergency numbers), starts the Call and then
performs the Call's effects: client transactions, stateless sends, answers to the caller,
media bridging and call records.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import ipaddress
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from devices.digest import AuthOutcome
from dialplan import (
    CallContext,
    DecisionKind,
    MediaMode,
    RoutingDecision,
    User,
    route,
)
from dialplan.router import emergency_from_site
from rating.cdr import CallRecord
from switch.b2bua.call import LEG_CALLER, LEG_IGNORE, Call, CallState
from switch.b2bua.effects import (
    Answered,
    Effect,
    Ended,
    RespondCaller,
    SendRequest,
    SendStateless,
    Side,
)
from switch.b2bua.legs import LocalAddress, invite_for_callee
from switch.call_targets import Target, TargetResolver
from switch.cdr_writer import CdrWriter
from switch.dialog.session_timer import uas_negotiate
from switch.emergency_service import EmergencyService
from switch.media_service import Anchor, MediaService, close_media
from switch.runtime import ServerRequest, SipRuntime
from switch.sip import (
    Request,
    Response,
    SipError,
    SipUri,
    make_response,
    new_call_id,
    new_tag,
    uri_user,
)
from switch.transaction import Peer
from switch.transfer import TransferHandler

if TYPE_CHECKING:
    from switch.app import Switch

log = logging.getLogger("switch.calls")

LINGER_SECONDS = 32.0
MIN_SE = 90  # RFC 4028 section 5: our Min-SE
TEST_SERVICES = ("echo_test", "tone_test", "record_test")
def _same_body(leg: int, body: bytes) -> bytes:
    return body  # keep an ended call around to absorb retransmissions (64*T1)


@dataclass
class CallEntry:
    call: Call
    invite_key: Any
    caller: User | None
    decision: RoutingDecision
    record: CallRecord
    leg_users: dict[int, str] = field(default_factory=dict)  # leg index -> user rung
    extra_call_ids: list[str] = field(default_factory=list)  # dialogs joined by transfer
    a_sdp: bytes = b""  # the SDP the caller has from us
    b_sdp: bytes = b""  # the SDP the answering callee has from us
    timer: asyncio.TimerHandle | None = None
    media: Any = None


class CallService:
    def __init__(self, *, ring_timeout: float = 30.0, hunt_step: float = 15.0,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.ring_timeout = ring_timeout
        self.clock = wall_clock
        self.by_call_id: dict[str, tuple[CallEntry, int]] = {}  # Call-ID -> (entry, leg or -1)
        self.switch: Switch | None = None
        self.local: LocalAddress | None = None
        self.media_hooks: Any = None  # set by the media service when media anchoring is on
        self.records: CdrWriter | None = None
        self.media: MediaService | None = None
        self.hunt_step = hunt_step
        self.transfers = TransferHandler(self)
        self.resolver = TargetResolver(lambda: self._registration().location, self.clock)
        self.emergency: EmergencyService | None = None
        self._tasks: set[asyncio.Future[None]] = set()

    # -- lifecycle --

    async def start(self, switch: Switch) -> None:
        self.switch = switch
        self.local = LocalAddress(*switch.sip_address)
        rt = switch.runtime
        rt.register_handler("INVITE", self.on_invite)
        rt.register_handler("ACK", self.on_ack)
        rt.register_handler("BYE", self.on_bye)
        rt.register_handler("UPDATE", self.on_update)
        rt.register_handler("REFER", self.transfers.on_refer)

    def before_transports_close(self, switch: Switch) -> None:
        """A stopping switch hangs its calls up (BYE both sides, records closed) while it
        can still reach the phones."""
        now = self._now()
        for entry, leg in list(self.by_call_id.values()):
            if leg == -1 and entry.call.state is not CallState.ENDED:
                self._perform(entry, entry.call.hang_up(now, "switch shutting down"))

    async def stop(self, switch: Switch) -> None:
        self.before_transports_close(switch)

    # -- helpers --

    def _registration(self) -> Any:
        assert self.switch is not None
        return self.switch.registration

    @property
    def runtime(self) -> SipRuntime:
        assert self.switch is not None
        return self.switch.runtime

    def _now(self) -> float:
        return self.runtime.now()

    # -- INVITE --

    def on_invite(self, runtime: SipRuntime, sreq: ServerRequest) -> Any:
        req = sreq.request
        if req.to.tag is not None:
            return self._on_reinvite(sreq)
        contacts = req.contacts
        if not isinstance(contacts, list) or len(contacts) != 1:
            # RFC 3261 8.1.1.8: an INVITE carries exactly one Contact (the dialog's target)
            runtime.respond(sreq.key, make_response(req, 400, "Bad Contact", to_tag=new_tag()))
            return None
        if req.max_forwards == 0:
            # RFC 3261 16.3 step 2: a request that has run out of hops is looping
            runtime.respond(sreq.key, make_response(req, 483, to_tag=new_tag()))
            return None
        switch = self.switch
        assert switch is not None
        # RFC 4028: a Session-Expires below our Min-SE answers 422 before anything else
        uas_negotiate(req, min_se=MIN_SE, preferred=None)
        plan = switch.plan_holder.plan
        trunk = plan.trunk_for_address(sreq.peer.host, sreq.peer.port)
        caller: User | None = None
        decision: RoutingDecision | None = None
        if trunk is None:
            who = self._authenticate(sreq)
            if who is None:
                return None
            if isinstance(who, RoutingDecision):
                decision = who  # an unauthenticated emergency call, located by its network
            else:
                caller = who
        if decision is None:
            # an aware time: each schedule reads it in its own site's time zone
            now_utc = dt.datetime.now(dt.UTC)
            decision = route(plan, CallContext(caller, trunk, str(req.uri), now_utc))
        if trunk is not None:
            decision = self._callback_override(decision, req)
        log.info("call %s from=%s dialed=%s decision=%s", req.call_id,
                 caller.full_number if caller else f"trunk:{trunk.id if trunk else '?'}",
                 req.uri, decision.kind.value)
        if decision.kind is DecisionKind.REJECT:
            status = decision.status or 403
            runtime.respond(sreq.key, make_response(req, status, decision.reason,
                                                    to_tag=new_tag()))
            return None
        if decision.kind is DecisionKind.FEATURE and decision.feature in TEST_SERVICES:
            return self._start_test_service(sreq, caller, decision)
        if decision.kind is DecisionKind.FEATURE:
            runtime.respond(sreq.key, make_response(req, 501, "Feature Not Available Yet",
                                                    to_tag=new_tag()))
            return None
        targets = self.resolver.targets(decision, caller, req)
        if not targets:
            runtime.respond(sreq.key, make_response(req, 480, "Temporarily Unavailable",
                                                    to_tag=new_tag()))
            return None
        if self.media is not None and req.body and self._anchored(caller, decision):
            return self._start_anchored(sreq, caller, decision, targets)
        self._start_call(sreq, caller, decision, targets)
        return None

    def _callback_override(self, decision: RoutingDecision, req: Request) -> RoutingDecision:
        """A call from the emergency service to a site that just called it rings the caller
        directly, ignoring DND, forwarding and hunt rules (issue 7)."""
        if self.emergency is None or decision.target is None:
            return decision
        site = getattr(decision.target, "site", None)
        calling = uri_user(req.from_.uri) or ""
        if site is None or calling.lstrip("+") not in site.customer.emergency_numbers:
            return decision
        recent = self.emergency.callbacks.caller_for(site.customer.id, site.code, self.clock())
        if recent is None:
            return decision
        user = site.customer.by_full_number.get(recent.caller)
        if not isinstance(user, User):
            return decision
        log.warning("emergency call-back from %s rings %s directly", calling, user.full_number)
        return dataclasses.replace(decision, kind=DecisionKind.USER, target=user,
                                   trace=(*decision.trace, "emergency call-back window"))

    @staticmethod
    def _anchored(caller: User | None, decision: RoutingDecision) -> bool:
        """Media anchoring follows the site's setting: the caller's, or the callee's site
        for calls from the public network."""
        site = caller.site if caller is not None else getattr(decision.target, "site", None)
        return site is None or site.media is MediaMode.ANCHOR

    async def _start_anchored(self, sreq: ServerRequest, caller: User | None,
                              decision: RoutingDecision,
                              targets: list[list[Target]]) -> None:
        assert self.media is not None
        anchor = await self.media.anchor(sreq.request.body)
        entry = self._start_call(sreq, caller, decision, targets, anchor)
        if entry is None and anchor is not None:
            await anchor.close()

    async def _start_test_service(self, sreq: ServerRequest, caller: User | None,
                                  decision: RoutingDecision) -> None:
        if self.media is None:
            raise SipError(503, "Media Unavailable")
        endpoint, answer = await self.media.test_service(decision.feature or "", sreq.request.body,
                                                         sreq.request.call_id)
        entry = self._start_call(sreq, caller, decision, [], endpoint)
        if entry is None:
            await endpoint.close()
            return
        self._perform(entry, entry.call.answer_locally(answer, self._now()))

    def _unauthenticated_emergency(self, sreq: ServerRequest) -> RoutingDecision | None:
        """Issue 7: an emergency INVITE whose credentials fail still goes out when it comes
        from a site's declared networks, located at that site and flagged unauthenticated."""
        switch = self.switch
        assert switch is not None
        try:
            source = ipaddress.ip_address(sreq.peer.host)
        except ValueError:
            return None
        for customer in switch.plan_holder.plan.customers:
            for site in customer.sites:
                if any(source in net for net in site.networks):
                    decision = emergency_from_site(site, str(sreq.request.uri))
                    if decision is not None:
                        log.warning("unauthenticated emergency call from %s on site %s",
                                    sreq.peer.host, site.code)
                        return decision
        return None

    def _authenticate(self, sreq: ServerRequest) -> User | RoutingDecision | None:
        """Digest for INVITE (RFC 3261 22.3, 407); the same rules and guard as REGISTER."""
        switch = self.switch
        assert switch is not None
        reg = switch.registration
        req = sreq.request
        now = self.clock()
        host = req.from_.uri.host if isinstance(req.from_.uri, SipUri) else ""
        realm = switch.accounts.realm_for_host(host)
        verdict = reg.guard.check(sreq.peer.host, now)
        if verdict.blocked:
            emergency = self._unauthenticated_emergency(sreq)
            if emergency is not None:
                return emergency
            self.runtime.respond(sreq.key, make_response(req, 403, to_tag=new_tag()))
            return None
        result = reg.digest.verify(req, realm, switch.accounts, now, proxy=True)
        if result.outcome in (AuthOutcome.NO_CREDENTIALS, AuthOutcome.STALE):
            headers = reg.digest.challenge_headers(realm, now, proxy=True,
                                                   stale=result.outcome is AuthOutcome.STALE)
            self.runtime.respond(sreq.key, make_response(req, 407, to_tag=new_tag(),
                                                         headers=headers))
            return None
        if result.outcome is not AuthOutcome.OK or result.account is None:
            reg.guard.record_failure(sreq.peer.host, now)
            emergency = self._unauthenticated_emergency(sreq)
            if emergency is not None:
                return emergency
            self.runtime.respond(sreq.key, make_response(req, 403, to_tag=new_tag()))
            return None
        reg.guard.record_success(sreq.peer.host, now)
        user: User | None = switch.accounts.user_for_aor(result.account.aor)
        if user is None:
            self.runtime.respond(sreq.key, make_response(req, 403, to_tag=new_tag()))
        return user

    def _start_call(self, sreq: ServerRequest, caller: User | None, decision: RoutingDecision,
                    targets: list[list[Target]], media: Any = None) -> CallEntry | None:
        assert self.local is not None
        req = sreq.request
        if self.runtime.txn.server_request(sreq.key) is None:
            return None  # cancelled or answered while media was being set up
        now = self._now()
        answer_sdp = media.answer_for_caller if isinstance(media, Anchor) else _same_body
        call = Call(req, sreq.peer, self.local, now, self.ring_timeout, answer_sdp=answer_sdp)
        session = uas_negotiate(req, min_se=MIN_SE, preferred=None)
        if session.negotiated is not None and not session.negotiated.we_refresh:
            # the caller refreshes and we watch; we do not refresh toward phones ourselves
            call.session_interval = session.negotiated.interval
            call.session_headers = session.headers
        entry = CallEntry(call, sreq.key, caller, decision,
                          self._open_record(req, caller, decision), media=media)
        self.by_call_id[req.call_id] = (entry, -1)
        self.runtime.cancel_listeners[sreq.key] = lambda: self._perform(
            entry, entry.call.on_cancel(self._now()))
        max_forwards = max(0, (req.max_forwards or 70) - 1)
        body = media.offer_for_callee() if isinstance(media, Anchor) else req.body
        entry.b_sdp = body
        emergency = decision.kind is DecisionKind.EMERGENCY and self.emergency is not None
        steps: list[list[tuple[Request, Peer]]] = []
        for group in targets:
            step: list[tuple[Request, Peer]] = []
            for ruri, dest, to, identity, user in group:
                b_call_id = new_call_id()
                content_type, leg_body, headers = "application/sdp", body, identity.headers
                if emergency:
                    assert self.emergency is not None
                    nomadic = self.emergency.is_nomadic(caller, sreq.peer.host)
                    leg = self.emergency.leg(decision, caller, identity.number, body, nomadic)
                    content_type, leg_body = leg.content_type, leg.body
                    headers = (*headers, *leg.headers)
                    self.emergency.started(decision, caller, identity.number,
                                           authenticated=caller is not None, nomadic=nomadic)
                invite = invite_for_callee(
                    request_uri=ruri, to=to, caller=identity.from_.with_tag(new_tag()),
                    call_id=b_call_id, local=self.local, dest=dest, body=leg_body,
                    max_forwards=max_forwards, identity_headers=headers,
                    content_type=content_type,
                )
                # legs are numbered in the order they will be added to the call
                index = sum(len(st) for st in steps) + len(step)
                self.by_call_id[b_call_id] = (entry, index)
                if user is not None:
                    entry.leg_users[index] = user.full_number
                step.append((invite, dest))
            steps.append(step)
        if len(steps) == 1:
            for invite, dest in steps[0]:
                self._perform(entry, call.add_leg(invite, dest))
        elif steps:
            self._perform(entry, call.start_hunt(steps, self.hunt_step, now))
        return entry

    def _on_reinvite(self, sreq: ServerRequest) -> None:
        """A re-INVITE or UPDATE in an answered call (RFC 3261 14.2, RFC 3311).

        With anchored media the switch answers the offer itself on the relay leg facing the
        sender (hold gives recvonly, a new address re-latches the relay); session refreshes
        without a body get the SDP that side already has. Without anchoring the previous
        SDP is repeated (the far phone keeps its own media)."""
        req = sreq.request
        found = self.by_call_id.get(req.call_id)
        if found is None or found[0].call.state is not CallState.ANSWERED:
            self.runtime.respond(sreq.key, make_response(req, 481, to_tag=new_tag()))
            return
        entry, leg = found
        side = "a" if leg == -1 else "b"
        body = entry.a_sdp if side == "a" else entry.b_sdp
        if req.body and isinstance(entry.media, Anchor):
            body = entry.media.answer_reoffer(side, req.body)
            if side == "a":
                entry.a_sdp = body
            else:
                entry.b_sdp = body
        headers = [("Contact", entry.call.local.contact(sreq.peer.transport))]
        if side == "a" and entry.call.session_interval is not None:
            session = uas_negotiate(req, min_se=MIN_SE, preferred=None)
            if session.negotiated is not None:
                headers.extend(session.headers)
                entry.call.refresh_session(self._now(), session.negotiated.interval)
                self._arm(entry)
        if body:
            headers.append(("Content-Type", "application/sdp"))
        self.runtime.respond(sreq.key, make_response(req, 200, headers=headers, body=body))

    def on_update(self, runtime: SipRuntime, sreq: ServerRequest) -> None:
        if sreq.request.to.tag is None:
            # RFC 3311 5.2: UPDATE is only meaningful inside a dialog
            runtime.respond(sreq.key, make_response(sreq.request, 481, to_tag=new_tag()))
            return
        self._on_reinvite(sreq)

    # -- in-dialog requests --

    def on_ack(self, runtime: SipRuntime, sreq: ServerRequest) -> None:
        found = self.by_call_id.get(sreq.request.call_id)
        if found is not None and found[1] == -1:
            entry = found[0]
            self._perform(entry, entry.call.on_ack(self._now()))

    def on_bye(self, runtime: SipRuntime, sreq: ServerRequest) -> None:
        found = self.by_call_id.get(sreq.request.call_id)
        if found is None:
            runtime.respond(sreq.key, make_response(sreq.request, 481, to_tag=new_tag()))
            return
        entry, leg = found
        runtime.respond(sreq.key, make_response(sreq.request, 200))
        if leg == -1:
            self._perform(entry, entry.call.on_bye(Side.CALLER, self._now()))
        elif entry.call.answered_leg == leg:
            self._perform(entry, entry.call.on_bye(Side.CALLEE, self._now()))

    # -- effects --

    def _perform(self, entry: CallEntry, effects: list[Effect]) -> None:
        rt = self.runtime
        for eff in effects:
            try:
                if isinstance(eff, SendRequest):
                    leg = eff.leg
                    if leg >= 0:
                        rt.send_request(eff.request, eff.dest,
                                        lambda resp, leg=leg: self._on_leg_response(entry, leg, resp))
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
                elif isinstance(eff, Ended):
                    self._ended(entry, eff)
            except Exception:
                log.exception("call %s: effect %s failed", entry.call.a_invite.call_id,
                              type(eff).__name__)
        self._arm(entry)

    def _on_leg_response(self, entry: CallEntry, leg: int, resp: Response) -> None:
        now = self._now()
        if resp.status == 408 and not resp.headers.get("Call-ID"):
            effects = entry.call.on_leg_timeout(leg, now)  # Timer B: no answer at all
        else:
            effects = entry.call.on_response(leg, resp, now)
        self._perform(entry, effects)

    def _arm(self, entry: CallEntry) -> None:
        if entry.timer is not None:
            entry.timer.cancel()
            entry.timer = None
        deadline = entry.call.next_deadline()
        if deadline is not None:
            entry.timer = self.runtime.loop.call_at(deadline, self._fire, entry)

    def _fire(self, entry: CallEntry) -> None:
        entry.timer = None
        self._perform(entry, entry.call.handle_timer(self._now()))

    def _open_record(self, req: Request, caller: User | None,
                     decision: RoutingDecision) -> CallRecord:
        target = decision.target
        if decision.kind in (DecisionKind.EXTERNAL, DecisionKind.EMERGENCY):
            callee = decision.number or decision.e164
        else:
            callee = getattr(target, "full_number", None) or decision.e164
        site = caller.site if caller else getattr(target, "site", None)
        record = CallRecord(
            id=uuid.uuid4().hex, call_id=req.call_id,
            caller=caller.full_number if caller else (uri_user(req.from_.uri) or "anonymous"),
            callee=callee, dialed=str(req.uri), decision=decision.kind.value,
            site=getattr(site, "code", None),
            customer=caller.customer.id if caller else None,
            start=self.clock(), emergency=decision.kind is DecisionKind.EMERGENCY,
            billable=decision.kind is not DecisionKind.EMERGENCY,
        )
        if self.records is not None:
            self.records.open(record)
        return record

    def _ended(self, entry: CallEntry, eff: Ended) -> None:
        call = entry.call
        entry.record = entry.record.closed(
            end=self.clock(), disposition=eff.disposition.value, status=eff.status,
            cause=eff.cause, side=eff.side.value)
        log.info("call %s ended disposition=%s status=%d cause=%s", call.a_invite.call_id,
                 eff.disposition.value, eff.status, eff.cause)
        if isinstance(entry.media, Anchor):
            loss, jitter = entry.media.quality()
            entry.record = dataclasses.replace(entry.record, codec=entry.media.codec,
                                               rtcp_loss=loss, rtcp_jitter_ms=jitter)
        answered = entry.leg_users.get(call.answered_leg) if call.answered_leg is not None else None
        if answered is not None:
            self.resolver.call_ended(answered)
        if self.records is not None:
            self.records.close(entry.record)
        if entry.media is not None:
            task = asyncio.ensure_future(close_media(entry.media))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self.runtime.loop.call_later(LINGER_SECONDS, self._forget, entry)

    def _forget(self, entry: CallEntry) -> None:
        call_ids = [entry.call.a_invite.call_id, *(lg.invite.call_id for lg in entry.call.legs),
                    *entry.extra_call_ids]
        for cid in call_ids:
            found = self.by_call_id.get(cid)
            if found is not None and found[0] is entry:
                del self.by_call_id[cid]

    def __len__(self) -> int:
        """Calls in progress (ended ones linger a while to absorb retransmissions)."""
        return sum(1 for entry, leg in self.by_call_id.values()
                   if leg == -1 and entry.call.state is not CallState.ENDED)


__all__ = ["LEG_CALLER", "LEG_IGNORE", "CallService"]
