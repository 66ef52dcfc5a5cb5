"""`wte plan check FILE...` and `wte plan explain FILE --from X --dial Y [--at T]`.

The switch's argparse front end calls these; they write to the stream they are given and
return the exit status.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TextIO

from .loader import load_plan, load_plan_checked
from .model import DecisionKind, Plan, Site, Trunk, User
from .router import CallContext, RoutingDecision, route
from .yamlsource import ConfigError


def plan_check(files: list[str], out: TextIO) -> int:
    """One line per error (`file:line: field: message`) and status 1, or a summary and 0.
    Warnings (`file:line: field: warning: message`) do not change the status."""
    status = 0
    for file in files:
        try:
            plan, warnings = load_plan_checked(file)
        except ConfigError as exc:
            for issue in exc.issues:
                out.write(f"{issue}\n")
            out.write(f"{file}: {len(exc.issues)} error(s)\n")
            status = 1
            continue
        for w in warnings:
            out.write(f"{w.file}:{w.line}: {w.field}: warning: {w.message}\n")
        tail = f", {len(warnings)} warning(s)" if warnings else ""
        out.write(f"{file}: OK: {summary(plan)}{tail}\n")
    return status


def summary(plan: Plan) -> str:
    sites = [s for c in plan.customers for s in c.sites]
    users = sum(len(s.users) for s in sites)
    numbers = len(plan.by_public_number)
    block = sum(rg.size for s in sites for rg in s.numbers)
    groups = sum(len(s.hunt_groups) for s in sites)
    queues = sum(len(s.queues) for s in sites)
    aas = sum(len(s.auto_attendants) for s in sites)
    trunks = sum(len(c.trunks) for c in plan.customers)
    return (
        f"{len(plan.customers)} customer(s), {len(sites)} site(s), {users} user(s), "
        f"{numbers} public number(s) assigned of {block}, {groups} hunt group(s), "
        f"{queues} queue(s), {aas} auto-attendant(s), {trunks} trunk(s)"
    )


def _find_caller(plan: Plan, caller: str) -> User | Trunk | None:
    if caller.startswith("trunk:"):
        tid = caller[len("trunk:") :]
        for c in plan.customers:
            if tid in c.trunks:
                return c.trunks[tid]
        return None
    user = plan.user_by_full_number(caller) or plan.user_by_username(caller)
    if user is None and caller.startswith("+"):
        owner = plan.owner_of_number(caller)
        if owner is not None and isinstance(owner[1], User):
            user = owner[1]
    return user


def describe(decision: RoutingDecision) -> str:
    k = decision.kind
    if k is DecisionKind.REJECT:
        return f"REJECT {decision.status} {decision.reason}"
    if k is DecisionKind.EXTERNAL:
        via = decision.trunk.id if decision.trunk else "?"
        return f"EXTERNAL {decision.e164 or decision.number} via trunk {via}"
    if k is DecisionKind.EMERGENCY:
        via = decision.trunk.id if decision.trunk else "?"
        return f"EMERGENCY {decision.number} via trunk {via}"
    if k is DecisionKind.FEATURE:
        arg = f" {decision.argument}" if decision.argument else ""
        return f"FEATURE {decision.feature}{arg}"
    target = decision.target
    number = getattr(target, "full_number", "")
    name = getattr(target, "name", "")
    extra = f" ({decision.feature})" if decision.feature else ""
    return f"{k.name} {number} {name}{extra}".rstrip()


def _site_of(who: User | Trunk, decision: RoutingDecision) -> Site | None:
    """The site whose clock matters: the called entity's (its schedule decides), else the
    caller's; a trunk caller of a one-site customer has that site."""
    site = getattr(decision.target, "site", None)
    if isinstance(decision.target, Site):
        site = decision.target
    if isinstance(site, Site):
        return site
    if isinstance(who, User):
        return who.site
    sites = who.customer.sites
    return sites[0] if len(sites) == 1 else None


def _show_time(when: datetime, site: Site | None) -> str:
    if when.tzinfo is None:  # --at without a zone: each schedule reads it in its site's zone
        zone = f"{site.timezone.key} local time (site {site.code})" if site else "site local time"
        return f"{when.isoformat(timespec='minutes')} {zone}"
    if site is None:
        return f"{when.astimezone(UTC).isoformat(timespec='minutes')} UTC"
    local = when.astimezone(site.timezone)
    return f"{local.isoformat(timespec='minutes')} {site.timezone.key} (site {site.code})"


def plan_explain(
    file: str, caller: str, dialed: str, at: datetime | None, out: TextIO,
    now: datetime | None = None,
) -> int:
    """Print the decision for `caller` dialing `dialed`, and every rule that led to it.
    `caller` is an internal number, a SIP username, a public number, or `trunk:<id>`.

    `at` without a zone is the local time of the site whose schedule decides; with a zone it
    is an instant. Without `at` the instant is `now` (aware; default the system clock in UTC),
    never the host's wall-clock time read as the site's local time: a host in UTC or in
    Tokyo explains a Paris call the same way."""
    try:
        plan = load_plan(file)
    except ConfigError as exc:
        for issue in exc.issues:
            out.write(f"{issue}\n")
        return 1
    who = _find_caller(plan, caller)
    if who is None:
        out.write(f"no caller {caller!r} in {file} (an internal number, username, "
                  "public number or trunk:<id>)\n")
        return 2
    if at is not None:
        when = at
    else:  # the CLI is an edge: it may read the clock, as an instant (aware)
        when = now if now is not None else datetime.now(UTC)
        if when.tzinfo is None:
            raise ValueError("plan_explain: `now` must carry a time zone (an instant)")
    ctx = CallContext(
        caller=who if isinstance(who, User) else None,
        caller_trunk=who if isinstance(who, Trunk) else None,
        dialed=dialed, at=when,
    )
    decision = route(plan, ctx)
    out.write(f"decision: {describe(decision)}\n")
    out.write(f"at: {_show_time(when, _site_of(who, decision))}\n")
    out.write("rules:\n")
    for i, rule in enumerate(decision.trace, 1):
        out.write(f"  {i}. {rule}\n")
    return 0
