"""The call manager's decision table: what the switch does with each routing decision.

The dialplan says *where* a call goes (`dialplan.RoutingDecision`); this table says *how*
the switch handles it: ring legs (users, hunt groups, a trunk), assemble an emergency leg,
answer with a call application, or refuse with a status that says why. A new feature is a
new row here (and, for a media feature, a new application in `ivr/` or `voicemail/`),
never a branch in the call service or the application runner.

It also holds the seam for what happens when every leg failed or nobody answered
(`Exhausted`): the default gives up with the best final status; forwarding on busy/no
answer (`RingMore`) and voicemail (`AnswerWith`, `switch/b2bua/voicemail_policy.py`) plug in
as an `ExhaustedPolicy`, or as a `DecisionPolicy` that also sees where the call was routed.

Applications that need more than `CallInfo` (voicemail: the mailbox owner is the
decision's target, the caller's address counts wrong PINs) are `InContext` factories: the
call service gives them an `AppContext`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum

from dialplan import (
    AutoAttendant,
    DecisionKind,
    FeatureName,
    RoutingDecision,
    ScheduleMode,
    User,
)
from dialplan.model import Queue
from ivr.application import CallApplication, CallInfo
from ivr.auto_attendant import AutoAttendantApp
from ivr.diagnostics import EchoTest, RecordTest, ToneTest
from ivr.night_switch import NightSwitch, ScheduleControl
from switch.sip import Request
from switch.transaction import Peer


@dataclass(frozen=True, slots=True)
class AppContext:
    """What an application needs of its call beyond `CallInfo` (voicemail: whose mailbox,
    who calls, from which address for the failure guard)."""

    decision: RoutingDecision
    caller: User | None
    source: str  # the caller's address (host)


@dataclass(frozen=True, slots=True)
class InContext:
    """A factory for an application that needs its call's `AppContext` (the mailbox owner
    is the decision's target). The call service builds the context when it runs it."""

    make: Callable[[CallInfo, AppContext], CallApplication]


ApplicationFactory = Callable[[CallInfo], CallApplication] | InContext


class LegKind(Enum):
    """Who the legs of a ringing call go to (for the target resolver)."""

    DIRECTORY = "directory"  # users and hunt groups, found in the location service
    TRUNK = "trunk"  # the decision's trunk, with the number the carrier expects


@dataclass(frozen=True, slots=True)
class RingLegs:
    kind: LegKind
    emergency: bool = False  # assemble the emergency leg (PIDF-LO, Priority, alert)


@dataclass(frozen=True, slots=True)
class RunApplication:
    name: str
    factory: ApplicationFactory


@dataclass(frozen=True, slots=True)
class Refuse:
    """Answer the caller with `status` and leave a call record saying so. `warning` goes
    in a Warning header (RFC 3261 20.43) for a person reading a trace."""

    status: int
    reason: str
    warning: str | None = None
    headers: tuple[tuple[str, str], ...] = ()  # e.g. Retry-After with a 503


Handling = RingLegs | RunApplication | Refuse

# The applications the switch runs today, by the dialplan's feature name.
APPLICATIONS: Mapping[str, ApplicationFactory] = {
    "echo_test": EchoTest,
    "tone_test": ToneTest,
    "record_test": RecordTest,
}

# Decisions whose feature is not built yet: the caller hears why (501 and its reason
# phrase), not a silent 480, and the attempt is recorded.
NOT_BUILT: Mapping[DecisionKind, str] = {}

# The call queue's caller application (issue 14, `switch/services/queues.py` makes it): a
# switch without a queue service answers its queues 501.
QUEUE_CALLER = "queue"

# Voicemail's applications, by name: a deposit by its greeting (the exhausted policy picks
# busy or unavailable), and the mailbox menu (`*86`). A switch without a voicemail service
# has none of them: its VOICEMAIL decisions answer 501.
VOICEMAIL_DEPOSIT = "voicemail_deposit"  # `voicemail:<user>` targets: unavailable greeting
VOICEMAIL_BUSY = "voicemail_busy"
VOICEMAIL_UNAVAILABLE = "voicemail_unavailable"
VOICEMAIL_RETRIEVE = "voicemail_retrieve"


@dataclass(frozen=True, slots=True)
class FeatureServices:
    """Switch services a feature's application needs beyond its CallInfo (given to the
    call service; None: that feature answers 501)."""

    schedules: ScheduleControl | None = None  # the night switch stores its mode here


NO_SERVICES = FeatureServices()


def _night_switch(decision: RoutingDecision, services: FeatureServices) -> Handling:
    control, admin = services.schedules, decision.target
    if (control is None or not isinstance(admin, User) or decision.schedule is None
            or decision.argument is None):
        return Refuse(501, "Feature Not Available Yet",
                      '399 wte "the night switch is not available on this switch"')
    customer, schedule = admin.customer.id, decision.schedule
    mode, by = ScheduleMode(decision.argument), admin.full_number

    def factory(info: CallInfo) -> CallApplication:
        return NightSwitch(info, control, customer, schedule, mode, by)

    return RunApplication(FeatureName.NIGHT_SWITCH.value, factory)


# Features whose application needs its decision and a switch service, by feature name.
SERVICE_FEATURES: Mapping[str, Callable[[RoutingDecision, FeatureServices], Handling]] = {
    FeatureName.NIGHT_SWITCH.value: _night_switch,
}


def _feature(decision: RoutingDecision, applications: Mapping[str, ApplicationFactory],
             services: FeatureServices = NO_SERVICES) -> Handling:
    name = decision.feature or ""
    with_services = SERVICE_FEATURES.get(name)
    if with_services is not None:
        return with_services(decision, services)
    factory = applications.get(name)
    if factory is not None:
        return RunApplication(name, factory)
    return Refuse(501, "Feature Not Available Yet",
                  f'399 wte "feature {name or "?"} is not available yet"')


def _not_built(decision: RoutingDecision,
               applications: Mapping[str, ApplicationFactory]) -> Handling:
    reason = NOT_BUILT[decision.kind]
    return Refuse(501, reason, f'399 wte "{decision.kind.value} is not available yet"')


def _auto_attendant(decision: RoutingDecision,
                    applications: Mapping[str, ApplicationFactory]) -> Handling:
    """The plan's auto-attendant answers with its menus (`ivr.auto_attendant`)."""
    aa = decision.target
    if not isinstance(aa, AutoAttendant):  # the router always gives the entity
        return Refuse(500, "Server Internal Error", '399 wte "auto-attendant without its menu"')
    return RunApplication("auto_attendant", functools.partial(AutoAttendantApp.for_entity, aa))
def _queue(decision: RoutingDecision,
           applications: Mapping[str, ApplicationFactory]) -> Handling:
    """A caller waits in the queue for a free agent (`ivr.queue_caller`)."""
    factory = applications.get(QUEUE_CALLER)
    if factory is None or not isinstance(decision.target, Queue):
        return Refuse(501, "Queue Not Available Yet", '399 wte "queues are not available"')
    return RunApplication(QUEUE_CALLER, factory)


def _voicemail(decision: RoutingDecision,
               applications: Mapping[str, ApplicationFactory]) -> Handling:
    """`*86` ("retrieve") opens the caller's mailbox menu; a `voicemail:` target
    ("deposit") leaves a message in the target's mailbox."""
    name = VOICEMAIL_RETRIEVE if decision.feature == "retrieve" else VOICEMAIL_DEPOSIT
    factory = applications.get(name)
    if factory is None:
        return Refuse(501, "Voicemail Not Available Yet", '399 wte "voicemail is not available"')
    return RunApplication(name, factory)


def _reject(decision: RoutingDecision,
            applications: Mapping[str, ApplicationFactory]) -> Handling:
    return Refuse(decision.status or 403, decision.reason or "Forbidden")


TABLE: Mapping[DecisionKind,
               Callable[[RoutingDecision, Mapping[str, ApplicationFactory]], Handling]] = {
    DecisionKind.USER: lambda d, a: RingLegs(LegKind.DIRECTORY),
    DecisionKind.HUNT_GROUP: lambda d, a: RingLegs(LegKind.DIRECTORY),
    DecisionKind.EXTERNAL: lambda d, a: RingLegs(LegKind.TRUNK),
    DecisionKind.EMERGENCY: lambda d, a: RingLegs(LegKind.TRUNK, emergency=True),
    DecisionKind.FEATURE: _feature,
    DecisionKind.QUEUE: _queue,
    DecisionKind.AUTO_ATTENDANT: _auto_attendant,
    DecisionKind.VOICEMAIL: _voicemail,
    DecisionKind.REJECT: _reject,
}


def handling_for(decision: RoutingDecision,
                 applications: Mapping[str, ApplicationFactory] = APPLICATIONS,
                 services: FeatureServices = NO_SERVICES) -> Handling:
    """The row of the table for `decision` (every DecisionKind has one: a test checks);
    `services` reach the features that need more than their CallInfo."""
    if decision.kind is DecisionKind.FEATURE:
        return _feature(decision, applications, services)
    return TABLE[decision.kind](decision, applications)


# RFC 3261 21.4.18: nobody to ring (no registered device, no trunk) answers 480.
NO_TARGET = Refuse(480, "Temporarily Unavailable")


# -- when every leg failed --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Exhausted:
    """Every leg of the call failed, or nobody answered in time."""

    status: int  # the best final status of the legs (RFC 3261 16.7 step 6), or 480
    no_answer: bool  # the ring timeout ran out (forward-on-no-answer's trigger)


@dataclass(frozen=True, slots=True)
class RingMore:
    """Ring these groups next (hunting), each for the hunt step."""

    groups: tuple[tuple[tuple[Request, Peer], ...], ...]
    ring_seconds: float


@dataclass(frozen=True, slots=True)
class GiveUp:
    status: int
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class AnswerWith:
    """Answer the caller with an application instead (voicemail on busy or no answer)."""

    application: str


NextStep = RingMore | GiveUp | AnswerWith
ExhaustedPolicy = Callable[[Exhausted], NextStep]
# A policy that knows where the call was routed (voicemail diverts a user's calls, not a
# group's); the call service binds it to each call's decision.
DecisionPolicy = Callable[[RoutingDecision, Exhausted], NextStep]


def give_up(exhausted: Exhausted) -> NextStep:
    """Today's policy: the caller gets the best final status (480 "No Answer" on timeout)."""
    return GiveUp(exhausted.status, "No Answer" if exhausted.no_answer else None)
