"""Cross-entity validation of a customer's numbering plan (service description 2.6.3).

2.6.3.1 states the goals this module enforces: no extension overlap within a site, none
between sites, and a prefix "qui n'est pas utilisé dans le plan de numérotation pour joindre
les correspondants externes" (nor emergency or short service numbers, 2.6.3.2).
"""

from __future__ import annotations

from itertools import pairwise

from .fields import Reader
from .loader_sites import CustomerCtx
from .model import Customer, Entity, Plan, User
from .numbers import collides_with_service, leading_digits_in_use
from .yamlsource import PathKey


def _describe(e: Entity) -> str:
    kind = type(e).__name__
    label = e.name if isinstance(e, User) else e.id
    return f"{kind} {label!r}"


def _ext_path(ctx: CustomerCtx, e: Entity) -> PathKey:
    base = ctx.paths[id(e)]
    return (*base, "extension") if (*base, "extension") in ctx.r.src.lines else (*base, "number")


def check_customer(ctx: CustomerCtx, customer: Customer, emergency: tuple[str, ...]) -> None:
    r = ctx.r
    _check_prefix(ctx, customer, emergency)
    outside = customer.outside_line_digit
    full_seen: dict[str, Entity] = {}
    usernames: dict[str, User] = {}
    short_sites: list[tuple[str, dict[str, Entity]]] = []
    for site in customer.sites:
        ext_seen: dict[str, Entity] = {}
        for e in site.entities():
            epath = ctx.paths[id(e)]
            line_of = r.src.line_of
            if e.extension in ext_seen:
                first = ext_seen[e.extension]
                r.err(_ext_path(ctx, e), f"extension {e.extension} of site {site.code} already "
                      f"used by {_describe(first)} at line {line_of(ctx.paths[id(first)])}")
            else:
                ext_seen[e.extension] = e
                if e.full_number in full_seen:
                    first = full_seen[e.full_number]
                    r.err(_ext_path(ctx, e), f"full number {e.full_number} already used by "
                          f"{_describe(first)} at line {line_of(ctx.paths[id(first)])}")
                full_seen.setdefault(e.full_number, e)
            if e.public_number is not None:
                prev = ctx.public_numbers.get(e.public_number)
                if prev is not None and prev[0] is not e:
                    r.err((*epath, "number"), f"public number {e.public_number} already assigned "
                          f"to {_describe(prev[0])} at line {line_of(prev[1])}")
                else:
                    ctx.public_numbers[e.public_number] = (e, epath)
            if isinstance(e, User) and ext_seen.get(e.extension) is e:
                other = usernames.get(e.sip.username)
                if other is not None:
                    r.err((*epath, "sip"), f"SIP username {e.sip.username!r} already used by "
                          f"user {other.name!r} at line {line_of(ctx.paths[id(other)])}")
                usernames.setdefault(e.sip.username, e)
        if site.short_dialing:
            short_sites.append((site.code, ext_seen))
    for code, ext_seen in short_sites:
        for ext, e in ext_seen.items():
            why = _short_collision(ext, customer, emergency, outside, full_seen)
            if why:
                r.err(_ext_path(ctx, e), f"short extension {ext} of site {code} {why}")


def _short_collision(
    ext: str, customer: Customer, emergency: tuple[str, ...], outside: str | None,
    full_numbers: dict[str, Entity],
) -> str:
    """Why dialing `ext` alone would be ambiguous, or "" when it is not."""
    if ext in emergency:
        return f"collides with emergency number {ext} (service description 2.6.2.1)"
    if ext in customer.feature_codes:
        return f"collides with feature code {ext}"
    if ext in full_numbers:
        return f"collides with the full internal number of {_describe(full_numbers[ext])}"
    if outside is not None and ext.startswith(outside):
        return f"starts with the outside-line digit {outside}"
    if collides_with_service(ext, customer.country):
        return f"collides with short service number {ext}"
    return ""


def _check_prefix(ctx: CustomerCtx, customer: Customer, emergency: tuple[str, ...]) -> None:
    r, path = ctx.r, ctx.path
    ppath = (*path, "prefix")
    prefix = customer.prefix
    if len(prefix) != 1 or not prefix.isdigit():
        r.err(ppath, f"prefix {prefix!r} must be one digit (service description 2.6.3.1)")
        return
    used = leading_digits_in_use(customer.country, emergency)
    if prefix in used:
        r.err(ppath, f"prefix {prefix} collides with {used[prefix]}; the prefix must not start "
              "any external, emergency or service number (service description 2.6.3.1)")
    outside = customer.outside_line_digit
    if outside is not None:
        opath = (*path, "outside_line_digit")
        if len(outside) != 1 or not outside.isdigit():
            r.err(opath, f"outside_line_digit {outside!r} must be one digit")
        elif outside == prefix:
            r.err(opath, f"outside_line_digit {outside} equals the internal prefix")
        elif any(e.startswith(outside) for e in emergency):
            r.err(opath, f"outside_line_digit {outside} starts an emergency number: "
                  f"{outside} followed by an emergency number would read as another number")


def check_plan(r: Reader, plan: Plan, paths: dict[int, PathKey]) -> None:
    """Checks across customers: host names and public number blocks are shared namespaces."""
    domains: dict[str, PathKey] = {}
    for c in plan.customers:
        cpath = paths[id(c)]
        for i, d in enumerate((c.sip_domain, *c.domains)):
            p = (*cpath, "sip_domain") if i == 0 else (*cpath, "domains", i - 1)
            if d in domains:
                r.err(p, f"domain {d} already belongs to the customer at line {r.src.line_of(domains[d])}")
            domains.setdefault(d, p)
    blocks = sorted(
        ((rg.first, rg.last, s, i) for c in plan.customers for s in c.sites
         for i, rg in enumerate(s.numbers)),
        key=lambda b: (len(b[0]), b[0]),
    )
    for (f1, l1, s1, _i1), (f2, _l2, s2, i2) in pairwise(blocks):
        if len(f1) == len(f2) and f2 <= l1:
            r.err((*paths[id(s2)], "numbers", i2), f"numbers {f2}... overlap the block {f1}-{l1} "
                  f"of site {s1.code} (line {r.src.line_of((*paths[id(s1)], 'numbers'))})")
