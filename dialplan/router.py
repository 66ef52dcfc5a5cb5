"""route(plan, CallContext) -> RoutingDecision: a pure function of the plan, the caller,
the dialed string and the time. No I/O; every lookup is a dict built at load.

Order of the rules, and why:
1. Emergency numbers first, in every dialed form, and barring never applies to them
   (EU Electronic Communications Code, directive 2018/1972 art. 109; service description
   2.6.2.1). The decision carries the caller's site, whose civic address locates the call.
2. Feature access codes (`*`/`#`), gated by the caller's pack (annex 16.1).
3. Full internal numbers (prefix + site code + extension, 2.6.3), then the short extension
   of the caller's site when the site enables short dialing.
4. External numbers, normalised to E.164; the customer's own public numbers stay on-net;
   the barring profile decides, then the site's trunk carries the call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Union

from .dialed import Dialed, parse_dialed
from .model import (
    ENTITY_KIND,
    Customer,
    DecisionKind,
    Entity,
    Plan,
    Site,
    Target,
    Trunk,
    User,
)
from .numbers import (
    CallCategory,
    classify_external,
    country_code,
    french_national_e164,
    national_prefix,
)
from .packs import FEATURE_SPECS, FeatureName
from .schedule import NIGHT_SWITCH_DIGITS, NO_FORCED, ForcedModes, ScheduleMode, schedule_open

DecisionTarget = Union[Entity, Site, None]  # noqa: UP007 (runtime alias)
_MAX_HOPS = 8  # closed-hours routes may chain (group -> auto-attendant -> mailbox)
_INTERNAL = frozenset({CallCategory.INTERNAL})


@dataclass(frozen=True, slots=True)
class CallContext:
    caller: User | None  # None for a call that came in on a trunk
    caller_trunk: Trunk | None
    dialed: str  # a user part ("0612345678") or a whole URI ("sip:112@host;user=phone")
    at: datetime  # naive = local time of the site that owns the schedule
    # the night switch: (customer id, schedule id) -> forced mode; absent = AUTO
    forced: ForcedModes = field(default_factory=lambda: NO_FORCED)


@dataclass(frozen=True, slots=True)
class RoutingDecision:
    kind: DecisionKind
    target: DecisionTarget = None  # the entity; the caller's site for EMERGENCY
    e164: str | None = None  # the number in E.164 (external, or the target's public number)
    trunk: Trunk | None = None  # EXTERNAL and EMERGENCY
    status: int | None = None  # REJECT: the SIP status to answer with
    reason: str | None = None
    feature: str | None = None  # FEATURE: FeatureName value; VOICEMAIL: "retrieve"/"deposit"
    argument: str | None = None  # digits after a feature code (a forwarding destination);
    # for the night switch, the ScheduleMode value to set ("open", "closed", "auto")
    schedule: str | None = None  # the night switch: the schedule id it sets
    number: str | None = None  # what goes on the trunk without E.164 (112, 3639)
    categories: frozenset[CallCategory] = frozenset()
    trace: tuple[str, ...] = ()


def route(plan: Plan, ctx: CallContext) -> RoutingDecision:
    trace: list[str] = []
    dialed = parse_dialed(ctx.dialed)
    if ctx.caller is None:
        if ctx.caller_trunk is None:
            return _reject(trace, 403, "caller is neither a user nor a trusted trunk")
        return _from_trunk(plan, ctx, dialed, trace)
    return _from_user(plan, ctx.caller, ctx, dialed, trace)


# how many times a routing looked at a schedule (see RouteCache): a decision taken while
# this did not move depends on the plan, the caller, the trunk and the dialed string only
_schedule_reads = 0


class RouteCache:
    """`route` for repeated calls: the decisions of one plan version (the `Plan` object the
    holder swaps on reload; it is never changed in place), keyed by the caller, the trunk
    and the dialed string. A decision that read a schedule depends on the time and on the
    night switch: it is never kept. Bounded: emptied when full, and when the plan changes.
    """

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self._plan: Plan | None = None
        # (id(caller), id(trunk), dialed) -> (caller, trunk, decision): the objects are
        # kept and compared so that an id reused by a later object never matches
        self._decisions: dict[tuple[int, int, str], tuple[object, object, RoutingDecision]] = {}
        self.hits = 0

    def route(self, plan: Plan, caller: User | None, trunk: Trunk | None, dialed: str,
              at: Callable[[], datetime], forced: ForcedModes = NO_FORCED) -> RoutingDecision:
        """`route(plan, CallContext(caller, trunk, dialed, at(), forced))`, from the cache
        when an earlier call of this plan version took it without reading a schedule."""
        global _schedule_reads
        if plan is not self._plan:
            self._plan = plan
            self._decisions.clear()
        key = (id(caller), id(trunk), dialed)
        hit = self._decisions.get(key)
        if hit is not None and hit[0] is caller and hit[1] is trunk:
            self.hits += 1
            return hit[2]
        before = _schedule_reads
        decision = route(plan, CallContext(caller, trunk, dialed, at(), forced=forced))
        if _schedule_reads == before:
            if len(self._decisions) >= self.max_entries:
                self._decisions.clear()
            self._decisions[key] = (caller, trunk, decision)
        return decision


def _reject(trace: list[str], status: int, reason: str) -> RoutingDecision:
    trace.append(f"reject {status}: {reason}")
    return RoutingDecision(DecisionKind.REJECT, status=status, reason=reason, trace=tuple(trace))


def _from_trunk(plan: Plan, ctx: CallContext, d: Dialed, trace: list[str]) -> RoutingDecision:
    trunk = ctx.caller_trunk
    if trunk is None:
        return _reject(trace, 403, "no trunk")
    trace.append(f"inbound call from trunk {trunk.id}")
    if d.error is not None:
        # A carrier sends complete numbers: anything unusable is an unknown number here.
        return _reject(trace, 404, d.error[1])
    country = trunk.customer.country if trunk.customer is not None else "FR"
    e164 = _as_e164(d.digits, country, inbound=True)
    if e164 is None:
        return _reject(trace, 404, f"{d.digits or d.name!r} is not a public number")
    owner = plan.owner_of_number(e164)
    if owner is None:
        return _reject(trace, 404, f"{e164} is not assigned")
    trace.append(f"{e164} belongs to {owner[0].value} {owner[1].full_number}")
    return _to_entity(owner[1], ctx.at, trace, forced=ctx.forced)


def _from_user(
    plan: Plan, caller: User, ctx: CallContext, d: Dialed, trace: list[str]
) -> RoutingDecision:
    c, site = caller.customer, caller.site
    trace.append(
        f"caller {caller.full_number} ({caller.name}) site {site.code} pack {caller.pack.value} "
        f"barring {caller.barring.id}"
    )
    if d.sos is not None:
        trace.append(f"service URN for emergency: {d.sos}")
        return _emergency(site, d.sos, trace)
    if d.error is not None:
        return _reject(trace, *d.error)
    digits, outside = d.digits, c.outside_line_digit
    if digits in c.emergency_numbers:
        return _emergency(site, digits, trace)
    if outside and digits.startswith(outside) and digits[1:] in c.emergency_numbers:
        trace.append(f"outside-line digit {outside} before an emergency number")
        return _emergency(site, digits[1:], trace)
    if d.name is not None:
        user = c.users_by_username.get(d.name)
        if user is None or (d.host is not None and plan.customer_for_domain(d.host) is not c):
            return _reject(trace, 404, f"no user {d.name!r} here")
        trace.append(f"SIP username {d.name} is user {user.full_number}")
        return _internal(caller, user, ctx.at, trace, ctx.forced)
    if digits[0] in "*#":
        return _feature(c, caller, digits, trace)
    if len(digits) == c.full_number_length and digits.startswith(c.prefix) and digits.isdigit():
        entity = c.by_full_number.get(digits)
        if entity is None:
            return _reject(trace, 404, f"no internal number {digits}")
        trace.append(f"full internal number {digits} (prefix {c.prefix}, site {entity.site.code})")
        return _internal(caller, entity, ctx.at, trace, ctx.forced)
    if site.short_dialing and len(digits) == c.extension_length and digits.isdigit():
        entity = site.by_extension.get(digits)
        if entity is not None:
            trace.append(f"short extension {digits} of site {site.code} -> {entity.full_number}")
            return _internal(caller, entity, ctx.at, trace, ctx.forced)
        trace.append(f"{digits} is no extension of site {site.code}; trying the public network")
    return _external(plan, caller, ctx, digits, trace)


def _emergency(site: Site, number: str, trace: list[str]) -> RoutingDecision:
    trunk = site.trunk_for_emergency
    trace.append(
        f"emergency number {number}: barring does not apply; via trunk {trunk.id}; "
        f"location site {site.code}: {site.address}"
    )
    return RoutingDecision(
        DecisionKind.EMERGENCY, target=site, trunk=trunk, number=number, trace=tuple(trace)
    )


def _feature(c: Customer, caller: User, digits: str, trace: list[str]) -> RoutingDecision:
    for length in c.feature_code_lengths:
        feature = c.feature_codes.get(digits[:length])
        if feature is None:
            continue
        spec = FEATURE_SPECS[feature]
        argument = digits[length:]
        if argument and not spec.takes_argument:
            continue
        trace.append(f"feature code {digits[:length]} = {feature.value}")
        if feature is FeatureName.NIGHT_SWITCH:
            return _night_switch(c, caller, digits[:length], argument, trace)
        if spec.takes_argument and not argument and not spec.argument_optional:
            return _reject(trace, 484, f"{feature.value} needs a destination after {digits}")
        if spec.needs is not None and not caller.has(spec.needs):
            return _reject(
                trace, 403, f"{feature.value} is not in pack {caller.pack.value} (annex 16.1)"
            )
        if feature is FeatureName.VOICEMAIL:
            trace.append(f"mailbox of {caller.full_number}")
            return RoutingDecision(
                DecisionKind.VOICEMAIL, target=caller, feature="retrieve", trace=tuple(trace)
            )
        return RoutingDecision(
            DecisionKind.FEATURE, target=caller, feature=feature.value,
            argument=argument or None, trace=tuple(trace),
        )
    return _reject(trace, 404, f"no feature code {digits}")


def _night_switch(c: Customer, caller: User, code: str, argument: str,
                  trace: list[str]) -> RoutingDecision:
    """The night switch code: only the customer's admins may force a schedule; the digit
    after the code says how (1 open, 2 closed, 0 automatic)."""
    if not caller.admin:
        return _reject(trace, 403, f"the night switch is for admins of {c.id}; "
                       f"{caller.full_number} is not one")
    schedule = c.feature_schedules.get(code)
    if schedule is None:  # the loader refuses such a plan; a hand-built one may lack it
        return _reject(trace, 404, f"night switch code {code} names no schedule")
    if not argument:
        return _reject(trace, 484, f"night switch: dial {code} then 1 (open), 2 (closed) "
                       "or 0 (automatic)")
    mode = NIGHT_SWITCH_DIGITS.get(argument)
    if mode is None:
        return _reject(trace, 404, f"night switch: no mode {argument!r} (1 open, 2 closed, "
                       "0 automatic)")
    trace.append(f"night switch: schedule {schedule} set {mode.value} by {caller.full_number}")
    return RoutingDecision(
        DecisionKind.FEATURE, target=caller, feature=FeatureName.NIGHT_SWITCH.value,
        argument=mode.value, schedule=schedule, trace=tuple(trace),
    )


def _internal(caller: User, entity: Entity, at: datetime, trace: list[str],
              forced: ForcedModes = NO_FORCED) -> RoutingDecision:
    if caller.barring.refused(_INTERNAL):
        return _reject(trace, 403, f"internal calls barred by profile {caller.barring.id}")
    return _to_entity(entity, at, trace, forced=forced)


def _to_entity(entity: Entity, at: datetime, trace: list[str], hops: int = 0,
               forced: ForcedModes = NO_FORCED) -> RoutingDecision:
    if hops > _MAX_HOPS:
        return _reject(trace, 482, "closed-hours routes loop")
    if not isinstance(entity, User) and entity.schedule is not None:
        global _schedule_reads
        _schedule_reads += 1  # this decision depends on the time (RouteCache)
        mode = forced.get((entity.customer.id, entity.schedule.id), ScheduleMode.AUTO)
        is_open, why = schedule_open(entity.schedule, at, entity.site.timezone, mode)
        trace.append(why)
        if not is_open and entity.closed_target is not None:
            trace.append(f"{entity.id} closed: to {entity.closed_target}")
            return _to_target(entity.closed_target, at, trace, hops + 1, forced)
    kind = ENTITY_KIND[type(entity)]
    trace.append(f"to {kind.value} {entity.full_number} ({entity.name})")
    return RoutingDecision(kind, target=entity, e164=entity.public_number, trace=tuple(trace))


def _to_target(target: Target, at: datetime, trace: list[str], hops: int,
               forced: ForcedModes = NO_FORCED) -> RoutingDecision:
    if target.kind is DecisionKind.VOICEMAIL:
        trace.append(f"to the mailbox of {target.entity.full_number}")
        return RoutingDecision(
            DecisionKind.VOICEMAIL, target=target.entity, feature="deposit", trace=tuple(trace)
        )
    return _to_entity(target.entity, at, trace, hops, forced)


def _as_e164(digits: str, country: str, *, inbound: bool = False) -> str | None:
    """Cheap E.164 guess for a lookup among assigned numbers (no phonenumbers call):
    "+33..." as is, "0033..." and national "0..." rewritten with the country code."""
    if not digits or not digits.lstrip("+").isdigit():
        return None
    if digits[0] == "+":
        return digits
    if digits.startswith("00"):
        return "+" + digits[2:]
    np = national_prefix(country)
    if np and digits.startswith(np):
        # A DROM number dialed nationally (0262..., 0590...) has its own country code.
        drom = french_national_e164(digits, country)
        if drom is not None:
            return drom
        return f"+{country_code(country)}{digits[len(np):]}"
    if inbound and len(digits) > 8:
        return "+" + digits  # carriers that send E.164 without its '+'
    return None


def _external(
    plan: Plan, caller: User, ctx: CallContext, digits: str, trace: list[str]
) -> RoutingDecision:
    c, site = caller.customer, caller.site
    outside = c.outside_line_digit
    if outside and digits[0] != "+":
        if not digits.startswith(outside):
            return _reject(trace, 484, f"external numbers need the outside-line digit {outside}")
        digits = digits[len(outside) :]
        trace.append(f"outside-line digit {outside} taken off: {digits}")
        if not digits:
            return _reject(trace, 484, "nothing dialed after the outside-line digit")
    guess = _as_e164(digits, c.country)
    if guess is not None:
        onnet = _own_number(plan, c, guess, ctx, caller, trace)
        if onnet is not None:
            return onnet
    cls = classify_external(digits, c.country)
    if cls.error is not None:
        return _reject(trace, 484 if cls.incomplete else 404, f"{digits}: {cls.error}")
    np = national_prefix(c.country)
    if cls.e164 is not None and np and not digits.startswith(("+", np)):
        # libphonenumber accepts "612345678" as a French number; nobody dials that way, and
        # after an outside-line digit it means the caller forgot the trunk prefix.
        return _reject(trace, 484, f"{digits}: dial {np}... for national, {np}{np}... for international")
    if cls.e164 is not None and cls.e164 != guess:
        onnet = _own_number(plan, c, cls.e164, ctx, caller, trace)
        if onnet is not None:
            return onnet
    shown = cls.e164 or cls.digits
    cats = ", ".join(sorted(x.value for x in cls.categories))
    trace.append(f"external number {shown} ({cats})")
    refused = caller.barring.refused(cls.categories)
    if refused:
        barred = ", ".join(sorted(x.value for x in refused))
        return _reject(trace, 403, f"{barred} calls barred by profile {caller.barring.id}")
    trace.append(f"allowed by profile {caller.barring.id}; via trunk {site.trunk.id}")
    return RoutingDecision(
        DecisionKind.EXTERNAL, e164=cls.e164, trunk=site.trunk,
        number=None if cls.e164 else cls.digits, categories=cls.categories, trace=tuple(trace),
    )


def _own_number(
    plan: Plan, c: Customer, e164: str, ctx: CallContext, caller: User, trace: list[str]
) -> RoutingDecision | None:
    """The customer's own public numbers stay on the customer's network."""
    owner = plan.owner_of_number(e164)
    if owner is not None and owner[1].customer is c:
        trace.append(f"{e164} is the customer's own number ({owner[0].value} {owner[1].full_number}): kept on-net")
        return _internal(caller, owner[1], ctx.at, trace, ctx.forced)
    block = c.range_of(e164)
    if block is not None:
        return _reject(trace, 404, f"{e164} is in the customer's block {block} but not assigned")
    return None


def emergency_from_site(site: Site, dialed: str) -> RoutingDecision | None:
    """The emergency decision for a caller known only by its site (an unauthenticated
    handset on the site's declared network, issue 7), or None when `dialed` is no emergency
    number. Emergency calls may never fail for want of credentials (CPCE D.98-8)."""
    d = parse_dialed(dialed)
    trace = [f"unauthenticated caller on the network of site {site.code}"]
    if d.sos is not None:
        return _emergency(site, d.sos, trace)
    c = site.customer
    digits = d.digits
    if c.outside_line_digit and digits.startswith(c.outside_line_digit):
        stripped = digits[len(c.outside_line_digit):]
        if stripped in c.emergency_numbers:
            digits = stripped
    if digits in c.emergency_numbers:
        return _emergency(site, digits, trace)
    return None


def route_application_target(plan: Plan, site: Site, target: str, at: datetime, *,
                             forced: ForcedModes = NO_FORCED) -> RoutingDecision:
    """Where a call application (an auto-attendant's menu key, dial by extension, a queue's
    overflow) sends its caller. `target` is what `ivr.application.Transfer` carries: a
    full internal number or a short extension of `site`, `voicemail:<full number>`, or an
    external number, which the customer's default barring profile must allow (an
    application has no barring of its own; annex 16.1: the customer's rules apply)."""
    c = site.customer
    trace = [f"application of site {site.code} sends its caller to {target}"]
    if target.startswith("voicemail:"):
        owner = c.by_full_number.get(target.removeprefix("voicemail:"))
        if not isinstance(owner, User):
            return _reject(trace, 404, f"no mailbox {target}")
        return _to_target(Target(DecisionKind.VOICEMAIL, owner), at, trace, 0, forced)
    digits = target
    entity = c.by_full_number.get(digits) or (
        site.by_extension.get(digits) if len(digits) == c.extension_length else None)
    if entity is not None:
        return _to_entity(entity, at, trace, forced=forced)
    if not digits.lstrip("+").isdigit():
        return _reject(trace, 404, f"{target!r} is no number")
    if len(digits) <= c.full_number_length and digits.startswith(c.prefix):
        return _reject(trace, 404, f"no internal number {digits}")
    guess = _as_e164(digits, c.country)
    owner_of = plan.owner_of_number(guess) if guess is not None else None
    if owner_of is not None and owner_of[1].customer is c:
        return _to_entity(owner_of[1], at, trace, forced=forced)
    cls = classify_external(digits, c.country)
    if cls.error is not None:
        return _reject(trace, 484 if cls.incomplete else 404, f"{digits}: {cls.error}")
    refused = c.default_barring.refused(cls.categories)
    if refused:
        barred = ", ".join(sorted(x.value for x in refused))
        return _reject(trace, 403, f"{barred} calls barred by profile {c.default_barring.id}")
    trace.append(f"external number {cls.e164 or cls.digits} via trunk {site.trunk.id}")
    return RoutingDecision(
        DecisionKind.EXTERNAL, e164=cls.e164, trunk=site.trunk,
        number=None if cls.e164 else cls.digits, categories=cls.categories, trace=tuple(trace),
    )
