"""Lookup tables built once at load, so that routing is dict lookups and never a scan."""

from __future__ import annotations

import ipaddress

from .model import ENTITY_KIND, Customer, DecisionKind, Entity, IpNetwork, Plan, Trunk, User


def index_customer(c: Customer) -> None:
    by_full: dict[str, Entity] = {}
    by_username: dict[str, User] = {}
    for site in c.sites:
        by_ext: dict[str, Entity] = {}
        for e in site.entities():
            by_ext.setdefault(e.extension, e)
            by_full.setdefault(e.full_number, e)
            if isinstance(e, User):
                by_username.setdefault(e.sip.username, e)
        object.__setattr__(site, "by_extension", by_ext)
    ranges = sorted((rg for s in c.sites for rg in s.numbers), key=lambda rg: int(rg.first[1:]))
    object.__setattr__(c, "by_full_number", by_full)
    object.__setattr__(c, "users_by_username", by_username)
    object.__setattr__(c, "sites_by_code", {s.code: s for s in c.sites})
    object.__setattr__(c, "feature_code_lengths", tuple(sorted({len(k) for k in c.feature_codes})))
    object.__setattr__(c, "_ranges", tuple(ranges))
    object.__setattr__(c, "_range_starts", tuple(int(rg.first[1:]) for rg in ranges))


def index_plan(plan: Plan) -> None:
    by_domain: dict[str, Customer] = {}
    by_number: dict[str, tuple[DecisionKind, Entity]] = {}
    by_username: dict[str, list[User]] = {}
    by_hostport: dict[tuple[str, int | None], Trunk] = {}
    networks: list[tuple[IpNetwork, Trunk]] = []
    for c in plan.customers:
        for d in (c.sip_domain, *c.domains):
            by_domain.setdefault(d, c)
        for e in c.by_full_number.values():
            if e.public_number is not None:
                by_number.setdefault(e.public_number, (ENTITY_KIND[type(e)], e))
        for name, u in c.users_by_username.items():
            by_username.setdefault(name, []).append(u)
        for t in c.trunks.values():
            for entry in t.trusted:
                if "/" in entry:
                    networks.append((ipaddress.ip_network(entry, strict=False), t))
                elif entry.count(":") == 1:
                    host, port = entry.split(":")
                    by_hostport.setdefault((host, int(port)), t)
                else:
                    by_hostport.setdefault((entry.strip("[]"), None), t)
    object.__setattr__(plan, "by_domain", by_domain)
    object.__setattr__(plan, "by_public_number", by_number)
    object.__setattr__(plan, "users_by_username", {k: tuple(v) for k, v in by_username.items()})
    object.__setattr__(plan, "trunks_by_hostport", by_hostport)
    object.__setattr__(plan, "trusted_networks", tuple(networks))
