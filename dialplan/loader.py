"""Load and validate a dialplan YAML file into a `Plan`.

Every error is collected (file, line, field) and raised together as one ConfigError, so an
operator fixes a file in one pass. The top-level `switch:` key belongs to the switch settings
and is ignored here.
"""

from __future__ import annotations

import gc
import ipaddress
from datetime import date
from pathlib import Path
from typing import Any

import holidays as _h
import phonenumbers

from .checks import check_customer, check_plan
from .fields import Reader
from .indexes import index_customer, index_plan
from .loader_attendants import apply_menu_targets, parse_auto_attendant
from .loader_conferences import parse_conference_rooms
from .loader_sites import (
    CustomerCtx,
    apply_targets,
    hex_digest,
    parse_hunt_group,
    parse_queue,
    parse_site,
    parse_user,
)
from .model import BarringProfile, Customer, Entity, Plan, Site, Transport, Trunk, TrunkRegistration
from .numbers import DEFAULT_EMERGENCY_NUMBERS, CallCategory
from .packs import DEFAULT_FEATURE_CODES, FEATURE_SPECS, FeatureName
from .schedule import WEEKDAYS, Interval, Schedule, parse_interval
from .yamlsource import ConfigError, ConfigIssue, PathKey, YamlSource, load_yaml_file

_TOP_KEYS = frozenset({"switch", "customers"})
_CUSTOMER_KEYS = frozenset(
    {"id", "name", "sip_domain", "realm", "domains", "prefix", "site_code_length", "extension_length", "outside_line_digit", "country", "emergency_numbers", "barring_profiles", "default_barring", "feature_codes", "trunks", "schedules", "sites", "emergency_webhook", "conference_rooms"}
)
_TRUNK_KEYS = frozenset({"id", "host", "port", "transport", "trusted", "register"})
_REGISTER_KEYS = frozenset({"username", "realm", "ha1_md5", "ha1_sha256", "secret_ref"})
_PROFILE_KEYS = frozenset({"id", "allow", "description"})
_SCHEDULE_KEYS = frozenset({"id", "hours", "holidays", "closed_dates"})
_CODE_KEYS = frozenset({"feature", "schedule"})

_ALL_OUT = frozenset(CallCategory)
# Used when a customer declares no `barring_profiles:`; the profile names of the issue.
BUILTIN_PROFILES: tuple[BarringProfile, ...] = (
    BarringProfile("internal_only", frozenset({CallCategory.INTERNAL}), "internal calls only"),
    BarringProfile(
        "national",
        frozenset({CallCategory.INTERNAL, CallCategory.NATIONAL, CallCategory.MOBILE,
                   CallCategory.TOLL_FREE, CallCategory.SERVICE}),
        "national calls",
    ),
    BarringProfile("national_international", _ALL_OUT - {CallCategory.PREMIUM, CallCategory.SHARED_COST},
                   "national and international calls"),
    BarringProfile("no_premium", _ALL_OUT - {CallCategory.PREMIUM}, "all but premium-rate numbers"),
    BarringProfile("unrestricted", _ALL_OUT, "no barring"),
)


def load_plan(path: str | Path) -> Plan:
    """Load and validate a plan file; raises ConfigError listing every issue."""
    # The loader allocates millions of small objects and frees none: the cyclic collector
    # would rescan them again and again (a third of the load time of a 100k-user plan).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return load_plan_data(load_yaml_file(path))
    finally:
        if was_enabled:
            gc.enable()


def load_plan_checked(path: str | Path) -> tuple[Plan, list[ConfigIssue]]:
    """Like `load_plan`, plus the warnings of `wte plan check`: things that load and route,
    but that an operator most likely did not mean (each with file, line and field)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        src = load_yaml_file(path)
        plan, paths = _load(src)
        return plan, plan_warnings(src, plan, paths)
    finally:
        if was_enabled:
            gc.enable()


def load_plan_data(src: YamlSource) -> Plan:
    return _load(src)[0]


def plan_warnings(src: YamlSource, plan: Plan, paths: dict[int, PathKey]) -> list[ConfigIssue]:
    """A short extension that starts with the prefix and code of a site of its customer (or
    that they start with): with short dialing on, `720` in a plan with prefix 7 and a site 20
    is both the short extension and the beginning of every full number of site 20, so a phone
    collecting digits (overlap dialing, digit maps) cannot tell when the number is complete
    (service description 2.6.3.1 wants internal numbers unambiguous)."""
    out: list[ConfigIssue] = []
    for c in plan.customers:
        heads = [(c.prefix + s.code, s) for s in c.sites]
        for site in c.sites:
            if not site.short_dialing:
                continue
            for e in site.entities():
                for head, other in heads:
                    if other is site:
                        continue  # the own site's full numbers: a separate, common layout
                    if e.extension.startswith(head) or head.startswith(e.extension):
                        base = paths.get(id(e))
                        if base is None:
                            continue
                        key = (*base, "extension")
                        field = key if key in src.lines else (*base, "number")
                        out.append(src.issue(field, (
                            f"short extension {e.extension} of site {site.code} overlaps the "
                            f"full numbers of site {other.code} ({head}...): dialing "
                            f"{e.extension} is ambiguous")))
    return sorted(out, key=lambda x: (x.file, x.line, x.field))


def _load(src: YamlSource) -> tuple[Plan, dict[int, PathKey]]:
    r = Reader(src)
    top = r.mapping(src.data, (), _TOP_KEYS)
    customers: list[Customer] = []
    public_numbers: dict[str, tuple[Entity, PathKey]] = {}
    paths: dict[int, PathKey] = {}
    raw_customers = r.seq(top, (), "customers")
    if not raw_customers:
        r.err(("customers",), "the plan has no customers")
    for i, raw in enumerate(raw_customers):
        c = _customer(r, raw, ("customers", i), public_numbers, paths)
        if c is not None:
            customers.append(c)
    plan = Plan(customers=tuple(customers), source=src.file)
    check_plan(r, plan, paths)
    if r.issues:
        raise ConfigError(sorted(set(r.issues), key=lambda x: (x.file, x.line, x.field)))
    index_plan(plan)
    return plan, paths


def _webhook(r: Reader, m: dict[str, Any], path: PathKey) -> str | None:
    """Where the customer's admins are alerted of each emergency call (issue 7)."""
    url = r.text(m, path, "emergency_webhook")
    if url is not None and not url.startswith(("https://", "http://")):
        r.err((*path, "emergency_webhook"), "must be an http(s) URL")
        return None
    return url


def _customer(
    r: Reader, raw: Any, path: PathKey, public_numbers: dict[str, tuple[Entity, PathKey]],
    paths: dict[int, PathKey],
) -> Customer | None:
    m = r.mapping(raw, path, _CUSTOMER_KEYS)
    cid = r.text(m, path, "id", required=True)
    domain = r.text(m, path, "sip_domain", required=True)
    realm = r.text(m, path, "realm") or domain or ""
    country = (r.text(m, path, "country", default="FR") or "FR").upper()
    if country not in phonenumbers.SUPPORTED_REGIONS:
        r.err((*path, "country"), f"unknown country {country!r} (ISO 3166 alpha-2)")
        country = "FR"
    emergency = tuple(
        e for e, p in r.text_list(m, path, "emergency_numbers") if _digits(r, e, p, "emergency number")
    ) or DEFAULT_EMERGENCY_NUMBERS
    prefix = r.text(m, path, "prefix", default="5") or "5"
    outside = r.text(m, path, "outside_line_digit")
    profiles, default_profile = _profiles(r, m, path)
    schedules = _schedules(r, m, path, country)
    codes, code_schedules = _feature_codes(r, m, path, schedules)
    ctx = CustomerCtx(
        r=r, path=path, prefix=prefix,
        site_code_length=r.integer(m, path, "site_code_length", 2, 1, 4),
        extension_length=r.integer(m, path, "extension_length", 3, 3, 4),
        realm=realm, profiles=profiles, default_profile=default_profile,
        trunks=_trunks(r, m, path), schedules=schedules, feature_codes=codes,
        feature_schedules=code_schedules, public_numbers=public_numbers, paths=paths,
        country=country,
    )
    sites = _sites(ctx, m, path)
    apply_targets(ctx)
    apply_menu_targets(ctx)
    if cid is None or domain is None:
        return None
    customer = Customer(
        id=cid, name=r.text(m, path, "name", default=cid) or cid, sip_domain=domain.lower(),
        realm=realm, domains=tuple(d.lower() for d, _ in r.text_list(m, path, "domains")),
        prefix=prefix, site_code_length=ctx.site_code_length,
        extension_length=ctx.extension_length, outside_line_digit=outside, country=country,
        emergency_numbers=frozenset(emergency), barring_profiles=profiles,
        default_barring=default_profile, feature_codes=ctx.feature_codes, trunks=ctx.trunks,
        schedules=ctx.schedules, sites=tuple(sites),
        emergency_webhook=_webhook(r, m, path), feature_schedules=ctx.feature_schedules,
        conference_rooms=parse_conference_rooms(r, m, path, ctx.full_numbers),
    )
    paths[id(customer)] = path
    for obj in (*ctx.trunks.values(), *sites, *(e for s in sites for e in s.entities())):
        object.__setattr__(obj, "customer", customer)
    check_customer(ctx, customer, emergency)
    index_customer(customer)
    return customer


def _sites(ctx: CustomerCtx, m: dict[str, Any], path: PathKey) -> list[Site]:
    r = ctx.r
    raw_sites = r.seq(m, path, "sites")
    if not raw_sites:
        r.err((*path, "sites") if "sites" in m else path, "a customer needs at least one site")
    codes: dict[str, PathKey] = {}
    built: list[tuple[Site, Any, PathKey]] = []
    for i, raw in enumerate(raw_sites):
        p = (*path, "sites", i)
        site = parse_site(ctx, raw, p, codes)
        if site is not None:
            built.append((site, raw, p))
    # Users first, on every site: groups may list members of other sites.
    for site, raw, p in built:
        users = []
        for j, u in enumerate(r.seq(raw, p, "users")):
            user = parse_user(ctx, site, u, (*p, "users", j))
            if user is not None:
                object.__setattr__(user, "site", site)
                users.append(user)
                ctx.full_numbers.setdefault(user.full_number, user)
        object.__setattr__(site, "users", tuple(users))
    for site, raw, p in built:
        for key, parse in (
            ("hunt_groups", parse_hunt_group), ("queues", parse_queue),
            ("auto_attendants", parse_auto_attendant),
        ):
            items = []
            for j, g in enumerate(r.seq(raw, p, key)):
                obj = parse(ctx, site, g, (*p, key, j))
                if obj is not None:
                    object.__setattr__(obj, "site", site)
                    items.append(obj)
                    ctx.full_numbers.setdefault(obj.full_number, obj)
            object.__setattr__(site, key, tuple(items))
    return [s for s, _, _ in built]


def _digits(r: Reader, text: str, path: PathKey, what: str) -> bool:
    if not text.isdigit():
        r.err(path, f"{what} {text!r} must be digits")
        return False
    return True


def _profiles(r: Reader, m: dict[str, Any], path: PathKey) -> tuple[dict[str, BarringProfile], BarringProfile]:
    profiles: dict[str, BarringProfile] = {}
    if "barring_profiles" not in m:
        profiles = {p.id: p for p in BUILTIN_PROFILES}
    for i, raw in enumerate(r.seq(m, path, "barring_profiles")):
        p = (*path, "barring_profiles", i)
        pm = r.mapping(raw, p, _PROFILE_KEYS)
        pid = r.text(pm, p, "id", required=True)
        allow: set[CallCategory] = set()
        for text, ap in r.text_list(pm, p, "allow"):
            try:
                allow.add(CallCategory(text.lower()))
            except ValueError:
                r.err(ap, f"unknown call category {text!r} (expected one of: "
                      f"{', '.join(c.value for c in CallCategory)})")
        if pid is None:
            continue
        if pid in profiles:
            r.err((*p, "id"), f"barring profile {pid!r} defined twice")
        profiles[pid] = BarringProfile(pid, frozenset(allow), r.text(pm, p, "description", default="") or "")
    if not profiles:
        profiles = {p.id: p for p in BUILTIN_PROFILES}
    default_id = r.text(m, path, "default_barring")
    if default_id is not None and default_id not in profiles:
        r.err((*path, "default_barring"), f"no barring profile {default_id!r}")
        default_id = None
    default = profiles.get(default_id or "no_premium") or next(iter(profiles.values()))
    return profiles, default


def _feature_codes(r: Reader, m: dict[str, Any], path: PathKey, schedules: dict[str, Schedule]
                   ) -> tuple[dict[str, FeatureName], dict[str, str]]:
    """The customer's codes, and the schedule of each night switch code. A code is
    `"*43": echo_test`, or for the night switch `"*55": {feature: night_switch, schedule:
    office}` (the short `"*55": night_switch` when the customer has a single schedule)."""
    if "feature_codes" not in m:
        return dict(DEFAULT_FEATURE_CODES), {}
    out: dict[str, FeatureName] = {}
    night: dict[str, str] = {}
    fp = (*path, "feature_codes")
    for code, name in r.mapping(m.get("feature_codes"), fp).items():
        p = (*fp, code)
        body = code[1:].rstrip("#")
        if code[:1] not in ("*", "#") or not body.isdigit() or len(body) > 4:
            r.err(p, f"feature code {code!r} must be * or # then 1 to 4 digits (quote it in YAML)")
            continue
        sid: str | None = None
        if isinstance(name, dict):
            fm = r.mapping(name, p, _CODE_KEYS)
            name, sid = r.text(fm, p, "feature", required=True), r.text(fm, p, "schedule")
            if name is None:
                continue
        try:
            feature = FeatureName(str(name).lower())
        except ValueError:
            r.err(p, f"unknown feature {name!r} (expected one of: {', '.join(f.value for f in FeatureName)})")
            continue
        out[code] = feature
        if feature is not FeatureName.NIGHT_SWITCH:
            if sid is not None:
                r.err((*p, "schedule"), f"only night_switch takes a schedule, not {feature.value}")
            continue
        if sid is None and len(schedules) == 1:
            sid = next(iter(schedules))
        if sid is None:
            r.err(p, "night_switch needs the schedule it forces: write "
                  f"{{feature: night_switch, schedule: ID}} (schedules: {', '.join(schedules) or 'none'})")
        elif sid not in schedules:
            r.err((*p, "schedule"), f"no schedule {sid!r}")
        else:
            night[code] = sid
    # A code that takes digits after it must not be the start of another code.
    for code, feature in out.items():
        if FEATURE_SPECS[feature].takes_argument:
            for other in out:
                if other != code and other.startswith(code):
                    r.err((*fp, other), f"feature code {other} starts with {code} ({feature.value} "
                          "takes digits after its code)")
    return out, night


def _trunks(r: Reader, m: dict[str, Any], path: PathKey) -> dict[str, Trunk]:
    trunks: dict[str, Trunk] = {}
    for i, raw in enumerate(r.seq(m, path, "trunks")):
        p = (*path, "trunks", i)
        tm = r.mapping(raw, p, _TRUNK_KEYS)
        tid = r.text(tm, p, "id", required=True)
        host = r.text(tm, p, "host", required=True)
        port = r.integer(tm, p, "port", 5060, 1, 65535)
        transport = r.choice(tm, p, "transport", Transport, Transport.UDP) or Transport.UDP
        trusted = []
        for text, tp in r.text_list(tm, p, "trusted"):
            if _trusted_ok(text):
                trusted.append(text.lower())
            else:
                r.err(tp, f"{text!r} is not an IP address, address:port or CIDR network")
        reg = None
        if tm.get("register") is not None:
            rp = (*p, "register")
            rm = r.mapping(tm["register"], rp, _REGISTER_KEYS)
            user = r.text(rm, rp, "username", required=True)
            reg = TrunkRegistration(
                username=user or "", realm=r.text(rm, rp, "realm"),
                ha1_md5=hex_digest(r, rm, rp, "ha1_md5", 32),
                ha1_sha256=hex_digest(r, rm, rp, "ha1_sha256", 64),
                secret_ref=r.text(rm, rp, "secret_ref"),
            )
            if reg.ha1_md5 is None and reg.ha1_sha256 is None and reg.secret_ref is None:
                r.err(rp, "registration needs ha1_md5, ha1_sha256 or secret_ref")
        if tid is None or host is None:
            continue
        if tid in trunks:
            r.err((*p, "id"), f"trunk {tid!r} defined twice")
        trunks[tid] = Trunk(tid, host.lower(), port, transport, tuple(trusted), reg)
    return trunks


def _trusted_ok(text: str) -> bool:
    try:
        if "/" in text:
            ipaddress.ip_network(text, strict=False)
        else:
            host, _, port = text.rpartition(":") if text.count(":") == 1 else (text, "", "")
            ipaddress.ip_address(host.strip("[]"))
            if port and not (port.isdigit() and 0 < int(port) < 65536):
                return False
    except ValueError:
        return False
    return True


def _schedules(r: Reader, m: dict[str, Any], path: PathKey, country: str) -> dict[str, Schedule]:
    out: dict[str, Schedule] = {}
    for i, raw in enumerate(r.seq(m, path, "schedules")):
        p = (*path, "schedules", i)
        sm = r.mapping(raw, p, _SCHEDULE_KEYS)
        sid = r.text(sm, p, "id", required=True)
        hours: dict[int, tuple[Interval, ...]] = {}
        hp = (*p, "hours")
        for day, spans in r.mapping(sm.get("hours"), hp).items():
            if day not in WEEKDAYS:
                r.err((*hp, day), f"unknown day {day!r} (expected {', '.join(WEEKDAYS)})")
                continue
            intervals = []
            for text in spans if isinstance(spans, list) else [spans]:
                iv = parse_interval(text) if isinstance(text, str) else None
                if iv is None:
                    r.err((*hp, day), f"bad time span {text!r} (expected like \"08:30-12:00\")")
                else:
                    intervals.append(iv)
            hours[WEEKDAYS.index(day)] = tuple(sorted(intervals))
        hol = sm.get("holidays", country)
        holiday_country: str | None = None
        if hol is not False and hol is not None:
            holiday_country = str(hol).upper()


            if holiday_country not in _h.list_supported_countries():
                r.err((*p, "holidays"), f"no public-holiday calendar for {hol!r}")
                holiday_country = None
        closed: set[date] = set()
        for j, d in enumerate(r.seq(sm, p, "closed_dates")):
            try:
                # YAML reads an unquoted 2026-08-15 as a date already.
                closed.add(d if isinstance(d, date) else date.fromisoformat(str(d)))
            except ValueError:
                r.err((*p, "closed_dates", j), f"{d!r} is not a date (YYYY-MM-DD)")
        if sid is None:
            continue
        if sid in out:
            r.err((*p, "id"), f"schedule {sid!r} defined twice")
        out[sid] = Schedule.build(sid, hours, holiday_country, frozenset(closed))
    return out
