"""Personal call features on the call path (issue 15): the call service asks this adapter,
for each new call, what a user's own settings change.

- `route()` before the decision table: a feature code of issue 15 (stored, then confirmed
  by `ivr.feature_codes`), anonymous-call rejection (433, RFC 5079), do not disturb and
  call waiting off (busy treatment), forwarding always (followed from user to user, loops
  answered 482), per-call CLIR (`*31` + number).
- `targets()` on the legs the resolver found: the user's simultaneous-ring numbers join
  its phones; forwarded legs get Diversion/History-Info; a withheld identity is hidden;
  group calls skip members in DND; no device at all forwards on unreachable.
- `policy()`: the call's exhausted policy, wrapped by `forwarding_policy` (busy, no
  answer, unreachable) around the policy the call already had (voicemail's, or give up).
- `bill()`: a call forwarded to the outside is billed to the forwarding user.

Emergency calls and the PSAP call-back window are never touched.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from dialplan import CallContext, DecisionKind, FeatureName, HuntGroup, RoutingDecision, User, route
from dialplan.user_settings import (
    DESTINATION_FEATURES,
    SETTING_FEATURES,
    FeatureOutcome,
    UserSettings,
    apply_feature,
    destination_of,
    no_answer_seconds,
)
from ivr.application import CallApplication, CallInfo
from ivr.feature_codes import FeatureConfirmation
from rating.cdr import CallRecord
from switch.b2bua.assembly import assemble
from switch.b2bua.call import CallState
from switch.b2bua.decisions import (
    APPLICATIONS,
    AnswerWith,
    ApplicationFactory,
    DecisionPolicy,
    Exhausted,
    ExhaustedPolicy,
    GiveUp,
    Refuse,
    RingMore,
    RunApplication,
    give_up,
)
from switch.b2bua.effects import Side
from switch.b2bua.forwarding import (
    MAX_FORWARDS,
    Diversion,
    ForwardReason,
    forwarding_headers,
    forwarding_policy,
)
from switch.call_targets import Target
from switch.callerid import ANONYMOUS, wants_privacy
from switch.services.ports import PlanSource
from switch.services.user_settings import UserSettingsService
from switch.sip import Request

if TYPE_CHECKING:
    from switch.calls import CallEntry, CallService, DialogRef

log = logging.getLogger("switch.personal")

CALLBACK_WINDOW_TRACE = "emergency call-back window"  # switch.services.caller
FEATURE_APPLICATION = "feature_code"

# the legs of a decision, as the target resolver finds them
Resolve = Callable[[RoutingDecision, User | None, Request], list[list[Target]]]


@dataclass(slots=True)
class PersonalRouting:
    """What the called user's settings make of one call; `decision` is what to ring."""

    decision: RoutingDecision
    called: User | None = None  # the user the call rings (USER decisions)
    settings: UserSettings | None = None
    hops: tuple[Diversion, ...] = ()  # forwarding done before ringing
    visited: tuple[str, ...] = ()  # users passed through (loop detection)
    withhold: bool = False  # hide the caller's identity (CLIR)
    ring_timeout: float | None = None  # the called user's ring time before forwarding
    hunt_step: float | None = None  # sequential ring: how long each group rings
    billed: User | None = None  # the forwarding user, for a call forwarded outside
    refuse: Refuse | None = None
    feature: Awaitable[RunApplication] | None = None


def _aor(user: User) -> str:
    """The public identity of a forwarding user, as Diversion/History-Info name it."""
    domain = user.customer.sip_domain
    if user.public_number:
        return f"sip:{user.public_number}@{domain};user=phone"
    return f"sip:{user.full_number}@{domain}"


class BusyCallbackRequests(Protocol):
    def request(self, user: User) -> FeatureOutcome: ...


class PersonalCalls:
    def __init__(self, settings: UserSettingsService, plan: PlanSource, *,
                 busy_policy: ExhaustedPolicy = give_up,
                 decision_policy: DecisionPolicy | None = None,
                 applications: Mapping[str, ApplicationFactory] = APPLICATIONS,
                 wall_clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
                 ) -> None:
        self.settings = settings
        self.plan = plan
        self.busy_policy = busy_policy  # DND and call waiting off: busy treatment
        # ...or, when given, the policy that knows whose call it is (the user's mailbox)
        self.decision_policy = decision_policy
        self.applications = applications
        self.now = wall_clock
        # callback on busy (*37): given by the switch when it can place calls
        self.busy_callbacks: BusyCallbackRequests | None = None

    # -- before the decision table --

    def route(self, decision: RoutingDecision, caller: User | None, req: Request,
              users_in_calls: Callable[[], set[str]]) -> PersonalRouting | None:
        """None: nothing personal applies (the call goes on as decided)."""
        if decision.kind is DecisionKind.EMERGENCY or CALLBACK_WINDOW_TRACE in decision.trace:
            return None  # emergency calls and PSAP call-backs ignore DND and forwarding
        withhold = caller is not None and self.settings.settings_for(caller).clir
        if decision.kind is DecisionKind.FEATURE and caller is not None:
            feature = _feature_name(decision.feature)
            if feature is FeatureName.CLIR_ONCE:
                decision = self._route_as(caller, decision.argument or "")
                withhold = True
                if decision.kind is DecisionKind.EMERGENCY:
                    return PersonalRouting(decision, withhold=False)
            elif feature is not None and (feature in SETTING_FEATURES
                                          or feature is FeatureName.CALLBACK_ON_BUSY):
                return PersonalRouting(decision, feature=self._feature(
                    caller, feature, decision.argument))
        if decision.kind is DecisionKind.HUNT_GROUP:
            return PersonalRouting(decision, withhold=withhold)  # members in DND skipped
        if decision.kind is not DecisionKind.USER or not isinstance(decision.target, User):
            return PersonalRouting(decision, withhold=withhold) if withhold else None
        called = decision.target
        settings = self.settings.settings_for(called)
        routing = PersonalRouting(decision, called, settings, withhold=withhold,
                                  visited=(called.full_number,))
        if settings.reject_anonymous and self._anonymous(req, caller, withhold):
            # RFC 5079 section 3: 433 Anonymity Disallowed
            routing.refuse = Refuse(433, "Anonymity Disallowed",
                                    f'399 wte "{called.full_number} rejects anonymous calls"')
            return routing
        return self._at_user(routing, caller, users_in_calls)

    def _at_user(self, routing: PersonalRouting, caller: User | None,
                 users_in_calls: Callable[[], set[str]]) -> PersonalRouting:
        """DND, call waiting and forwarding always of `routing.called`, followed from user
        to user."""
        while True:
            called, settings = routing.called, routing.settings
            assert called is not None and settings is not None
            if settings.dnd:
                log.info("call to %s: do not disturb", called.full_number)
                return self._busy(routing, "do not disturb")
            if settings.forward_always:
                nxt = self._forward(routing, called, settings.forward_always,
                                    ForwardReason.ALWAYS)
                if nxt is None:  # barred or unroutable now: the user's phones ring
                    break
                routing = nxt
                if routing.refuse is not None or routing.called is None:
                    return routing
                continue
            if not settings.call_waiting and called.full_number in users_in_calls():
                log.info("call to %s: in a call, call waiting off", called.full_number)
                if settings.forward_busy:
                    nxt = self._forward(routing, called, settings.forward_busy,
                                        ForwardReason.BUSY)
                    if nxt is not None:
                        routing = nxt
                        if routing.refuse is not None or routing.called is None:
                            return routing
                        continue
                return self._busy(routing, "call waiting off")
            break
        routing.ring_timeout = no_answer_seconds(settings)
        return routing

    def _forward(self, routing: PersonalRouting, by: User, number: str,
                 reason: ForwardReason) -> PersonalRouting | None:
        """The routing after `by` forwards to `number`; None when the forwarding cannot
        apply (the destination is barred for `by` or unknown now)."""
        decision = self._route_as(by, number)
        if decision.kind not in (DecisionKind.USER, DecisionKind.EXTERNAL,
                                 DecisionKind.HUNT_GROUP):
            log.warning("forwarding of %s to %s not applied: %s", by.full_number, number,
                        decision.reason or decision.kind.value)
            return None
        hops = (*routing.hops, Diversion(_aor(by), reason))
        nxt = dataclasses.replace(routing, decision=decision, hops=hops, called=None,
                                  settings=None)
        if len(hops) > MAX_FORWARDS:
            nxt.refuse = Refuse(483, "Too Many Hops", '399 wte "forwarding chain too long"')
            return nxt
        if decision.kind is DecisionKind.EXTERNAL:
            nxt.billed = by  # the forwarding user pays the outside leg (section 4.2)
            return nxt
        if isinstance(decision.target, User):
            target = decision.target
            if target.full_number in routing.visited:
                log.warning("forwarding loop %s -> %s", " -> ".join(routing.visited),
                            target.full_number)
                # RFC 3261 21.4.20: the request came back to where it was
                nxt.refuse = Refuse(482, "Loop Detected", '399 wte "forwarding loop"')
                return nxt
            nxt.called = target
            nxt.settings = self.settings.settings_for(target)
            nxt.visited = (*routing.visited, target.full_number)
        return nxt

    def _busy(self, routing: PersonalRouting, why: str) -> PersonalRouting:
        """Busy treatment: the busy policy (voicemail when it plugs in), else 486."""
        busy = Exhausted(486, no_answer=False)
        step = (self.decision_policy(routing.decision, busy) if self.decision_policy is not None
                else self.busy_policy(busy))
        if isinstance(step, AnswerWith) and step.application in self.applications:
            routing.feature = _ready(RunApplication(step.application,
                                                    self.applications[step.application]))
            return routing
        status = step.status if isinstance(step, GiveUp) else 486
        routing.refuse = Refuse(status, "Busy Here" if status == 486 else
                                (step.reason if isinstance(step, GiveUp) and step.reason
                                 else "Busy Here"), f'399 wte "{why}"')
        return routing

    @staticmethod
    def _anonymous(req: Request, caller: User | None, withhold: bool) -> bool:
        """A caller withholding its identity (RFC 3323 Privacy, anonymous From, CLIR)."""
        return withhold or wants_privacy(req, caller)

    def _route_as(self, user: User, number: str) -> RoutingDecision:
        """Route `number` as if `user` dialed it: its barring profile applies."""
        return route(self.plan.plan, CallContext(user, None, number, self.now()))

    # -- feature codes --

    async def _feature(self, user: User, feature: FeatureName,
                       argument: str | None) -> RunApplication:
        outcome = await self.change(user, feature, argument)
        name = feature.value

        def factory(info: CallInfo) -> CallApplication:
            return FeatureConfirmation(info, outcome, name)

        return RunApplication(FEATURE_APPLICATION, factory)

    async def change(self, user: User, feature: FeatureName,
                     argument: str | None) -> FeatureOutcome:
        """Apply a feature code for `user`: the destination checked against its barring
        profile, the new settings durable before the outcome is told."""
        if feature is FeatureName.CALLBACK_ON_BUSY:  # *37 (switch/services/busy_callback.py)
            busy = self.busy_callbacks
            return busy.request(user) if busy is not None else FeatureOutcome.NOT_AVAILABLE
        if feature in DESTINATION_FEATURES:
            number = destination_of(feature, argument)
            if number is None:
                return FeatureOutcome.REFUSED
            decision = self._route_as(user, number)
            if decision.kind not in (DecisionKind.USER, DecisionKind.EXTERNAL,
                                     DecisionKind.HUNT_GROUP):
                log.info("feature %s of %s refused: %s -> %s", feature.value, user.full_number,
                         number, decision.reason or decision.kind.value)
                return FeatureOutcome.REFUSED
            if isinstance(decision.target, User) and decision.target is user:
                return FeatureOutcome.REFUSED  # forwarding to oneself
        current = self.settings.settings_for(user)
        new, outcome = apply_feature(current, feature, argument)
        if outcome is FeatureOutcome.REFUSED:
            return outcome
        try:
            await self.settings.update(user, new)
        except Exception:
            log.exception("feature %s of %s: storing failed", feature.value, user.full_number)
            return FeatureOutcome.REFUSED
        return outcome

    # -- the legs --

    def targets(self, routing: PersonalRouting, caller: User | None, req: Request,
                targets: list[list[Target]], resolve: Resolve) -> list[list[Target]]:
        decision = routing.decision
        if decision.kind is DecisionKind.HUNT_GROUP and isinstance(decision.target, HuntGroup):
            # a member in DND is unavailable to its groups; groups ignore forwarding
            customer = decision.target.customer.id
            targets = [[t for t in g if t.user is None
                        or not self.settings.settings_by_key(customer, t.user).dnd]
                       for g in targets]
            targets = [g for g in targets if g]
        called, settings = routing.called, routing.settings
        if called is not None and settings is not None and settings.simultaneous and targets:
            extra: list[Target] = []
            for number in settings.simultaneous:
                d = self._route_as(called, number)
                if d.kind is DecisionKind.EXTERNAL:
                    hop = (*routing.hops, Diversion(_aor(called), ForwardReason.SIMULTANEOUS))
                    extra.extend(_with_hops(t, hop) for g in resolve(d, caller, req) for t in g)
            targets = [[*targets[0], *extra], *targets[1:]]
        if called is not None and settings is not None and settings.sequential and targets:
            # sequential ring: each number after the phones, one after the other
            for step in settings.sequential:
                d = self._route_as(called, step.number)
                if d.kind not in (DecisionKind.EXTERNAL, DecisionKind.USER):
                    continue
                hop = (*routing.hops, Diversion(_aor(called), ForwardReason.SIMULTANEOUS))
                group = [_with_hops(t, hop) for g in resolve(d, caller, req) for t in g]
                if group:
                    targets.append(group)
            if len(targets) > 1:
                # the Call hunts with one step length: the first number's ring time
                routing.hunt_step = settings.sequential[0].seconds
        if not targets and called is not None and settings is not None \
                and settings.forward_unreachable:
            nxt = self._forward(routing, called, settings.forward_unreachable,
                                ForwardReason.UNREACHABLE)
            if nxt is not None and nxt.refuse is None:
                routing.billed = nxt.billed
                routing.hops = nxt.hops
                return self._legs_of(nxt, caller, req, resolve)
        if routing.hops:
            targets = [[_with_hops(t, routing.hops) for t in g] for g in targets]
        if routing.withhold:
            targets = [[_withheld(t) for t in g] for g in targets]
        return targets

    def _legs_of(self, routing: PersonalRouting, caller: User | None, req: Request,
                 resolve: Resolve) -> list[list[Target]]:
        """The legs toward a forwarding destination (a user in DND rings nothing)."""
        if routing.settings is not None and routing.settings.dnd:
            return []
        groups = [[_with_hops(t, routing.hops) for t in g]
                  for g in resolve(routing.decision, caller, req)]
        if routing.withhold:
            groups = [[_withheld(t) for t in g] for g in groups]
        return groups

    # -- when the user's legs are exhausted --

    def policy(self, routing: PersonalRouting, caller: User | None, req: Request,
               resolve: Resolve, ring_more: Callable[[list[list[Target]], User | None],
                                                     RingMore | None],
               next_policy: ExhaustedPolicy) -> ExhaustedPolicy:
        """The call's exhausted policy: conditional forwarding of the called user, then
        `next_policy`. `ring_more(groups, billed)` turns legs into a `RingMore` (the call
        service assembles and registers them)."""
        called, settings = routing.called, routing.settings
        if called is None or settings is None:
            return next_policy

        def ring(reason: ForwardReason, number: str) -> RingMore | None:
            nxt = self._forward(routing, called, number, reason)
            if nxt is None or nxt.refuse is not None:
                return None
            if nxt.called is not None and nxt.settings is not None and \
                    nxt.settings.forward_always:
                nxt = self._at_user(nxt, caller, set)
                if nxt.refuse is not None:
                    return None
            legs = self._legs_of(nxt, caller, req, resolve)
            return ring_more(legs, nxt.billed) if legs else None

        return forwarding_policy(settings, ring, next_policy)

    # -- billing --

    @staticmethod
    def bill(record: CallRecord, billed: User | None) -> CallRecord:
        """A call forwarded to the outside counts toward the forwarding user's barring
        (checked when routing the destination as it) and its site's minute bundle: the
        record names it as the caller, its customer and site."""
        if billed is None:
            return record
        return dataclasses.replace(record, caller=billed.full_number,
                                   customer=billed.customer.id, site=billed.site.code)


def _feature_name(value: str | None) -> FeatureName | None:
    try:
        return FeatureName(value) if value else None
    except ValueError:
        return None


def _with_hops(target: Target, hops: tuple[Diversion, ...]) -> Target:
    headers = tuple(h for h in target.identity_headers
                    if h[0].lower() not in ("diversion", "history-info"))
    return dataclasses.replace(target, identity_headers=(
        *headers, *forwarding_headers(hops, target.request_uri)))


def _withheld(target: Target) -> Target:
    """CLIR: From anonymous and `Privacy: id` (RFC 3323); P-Asserted-Identity, when
    present, still carries the real number for the trusted network (RFC 3325)."""
    headers = [h for h in target.identity_headers if h[0].lower() != "privacy"]
    headers.append(("Privacy", "id"))
    return dataclasses.replace(target, from_=ANONYMOUS, identity_headers=tuple(headers))


# -- helpers of the call service (kept here so that switch/calls.py stays small) --------


def users_in_calls(refs: Iterable[DialogRef]) -> set[str]:
    """Call waiting off: the users calling, or answered, in a call now."""
    busy: set[str] = set()
    for ref in refs:
        entry = ref.entry
        if ref.side is not Side.CALLER or entry.call.state is CallState.ENDED:
            continue
        if entry.caller is not None:
            busy.add(entry.caller.full_number)
        answered = entry.call.answered_leg
        if answered is not None and answered in entry.leg_users:
            busy.add(entry.leg_users[answered])
    return busy


def ring_forwarded(service: CallService, entry: CallEntry, groups: list[list[Target]],
                   billed: User | None) -> RingMore | None:
    """The legs toward a forwarding destination as a `RingMore`: numbered after the
    call's own legs, reachable by their Call-IDs like any leg; the record names the
    forwarding user when it pays."""
    call = entry.call
    max_forwards = max(0, (call.a_invite.max_forwards or 70) - 1)
    assembled = assemble(groups, body=entry.b_sdp, local=service.local,
                         max_forwards=max_forwards, first_leg=len(call.legs))
    for group_legs in assembled:
        for leg in group_legs:
            service.bind_dialog(leg.invite.call_id, entry, Side.CALLEE, leg.leg)
            if leg.user is not None:
                entry.leg_users[leg.leg] = leg.user
    entry.record = PersonalCalls.bill(entry.record, billed)
    return RingMore(tuple(tuple((leg.invite, leg.dest) for leg in g) for g in assembled),
                    service.timers.ring_timeout)


async def _ready(value: RunApplication) -> RunApplication:
    return value


__all__ = ["FEATURE_APPLICATION", "PersonalCalls", "PersonalRouting"]
