"""Sites, users, hunt groups, queues and auto-attendants from YAML (one customer at a time).

Numbering follows service description 2.6.3: full internal number = prefix + site code +
extension, the extension being the last 3 or 4 digits of the public number unless the
customer sets it ("issus du numéro de téléphone ... ou définis par le client").
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .fields import Reader
from .loader_conferences import conference_pin
from .model import (
    BarringProfile,
    CivicAddress,
    DecisionKind,
    Entity,
    HuntGroup,
    HuntStrategy,
    IpNetwork,
    MediaMode,
    Queue,
    QueueStrategy,
    SipCredentials,
    Site,
    Target,
    Trunk,
    User,
)
from .numbers import NumberRange, parse_e164
from .packs import PACK_FEATURES, PACK_MAX_DEVICES, FeatureName, Pack, PackFeature
from .schedule import Schedule
from .yamlsource import PathKey

_HEX = re.compile(r"[0-9a-f]+")
# An address an SMTP server accepts (RFC 5321 4.1.2, simplified): local@domain.tld, no
# spaces, no display name, no angle brackets.
_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
_SITE_KEYS = frozenset(
    {"code", "name", "address", "timezone", "numbers", "main_number", "trunk", "emergency_trunk", "networks", "short_dialing", "media", "users", "hunt_groups", "queues", "auto_attendants", "ring_timeout"}
)
_USER_KEYS = frozenset(
    {"name", "number", "extension", "pack", "barring", "clir", "features", "devices", "voicemail", "sip", "ring_timeout", "admin", "email", "conference_pin",
     "pickup_group"}
)
_SIP_KEYS = frozenset({"username", "ha1_md5", "ha1_sha256"})
_ADDRESS_KEYS = frozenset({"street", "number", "postal_code", "city", "country", "extra"})
_GROUP_KEYS = frozenset(
    {"id", "name", "number", "extension", "strategy", "members", "schedule", "closed", "step", "ring_timeout"}
)
_QUEUE_KEYS = frozenset(
    {"id", "name", "number", "extension", "agents", "max_waiting", "overflow", "schedule", "closed",
     "strategy", "wrap_up", "max_wait", "announce_every", "callback_key", "skills"}
)


@dataclass
class CustomerCtx:
    """What the site and user parsers need from the customer, plus the shared registries."""

    r: Reader
    path: PathKey
    prefix: str
    site_code_length: int
    extension_length: int
    realm: str
    profiles: dict[str, BarringProfile]
    default_profile: BarringProfile
    trunks: dict[str, Trunk]
    schedules: dict[str, Schedule]
    feature_codes: dict[str, FeatureName]
    # e164 -> (entity, path) for the whole plan: a number is assigned once across customers.
    public_numbers: dict[str, tuple[Entity, PathKey]]
    paths: dict[int, PathKey] = field(default_factory=dict)  # id(entity) -> YAML path
    feature_schedules: dict[str, str] = field(default_factory=dict)  # night switch codes
    full_numbers: dict[str, Entity] = field(default_factory=dict)
    ids: dict[str, PathKey] = field(default_factory=dict)  # group/queue/AA ids
    pending_targets: list[tuple[Any, str, str, PathKey]] = field(default_factory=list)
    country: str = "FR"  # the customer's region: external numbers in menus are read from it
    # auto-attendant menus: (menu or attendant, key or attr, reference, path, site code)
    pending_menu: list[tuple[Any, str, str, PathKey, str]] = field(default_factory=list)


RING_SECONDS = (1, 600)  # bounds of every ring time setting, in seconds


def ring_seconds(r: Reader, m: dict[str, Any], path: PathKey, key: str) -> float | None:
    """A ring time in seconds (site, user, hunt group), or None when not set: the switch's
    `calls.ring_timeout` / `calls.hunt_step` then apply."""
    v = m.get(key)
    if v is None:
        return None
    lo, hi = RING_SECONDS
    if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= hi:
        r.err((*path, key), f"must be a number of seconds between {lo} and {hi}, not {v!r}")
        return None
    return float(v)


def hex_digest(r: Reader, m: dict[str, Any], path: PathKey, key: str, size: int) -> str | None:
    v = r.text(m, path, key)
    if v is None:
        return None
    v = v.lower()
    if len(v) != size or not _HEX.fullmatch(v):
        r.err((*path, key), f"must be {size} hexadecimal digits (an HA1 digest, RFC 7616)")
        return None
    return v


def parse_range(r: Reader, text: str, path: PathKey) -> NumberRange | None:
    first_s, sep, last_s = text.partition("-+")
    last_s = "+" + last_s if sep else first_s
    first, last = parse_e164(first_s.strip()), parse_e164(last_s.strip())
    if first is None or last is None:
        r.err(path, f"{text!r} is not an E.164 number or range like +33562070400-+33562070499")
        return None
    if len(first) != len(last) or first > last:
        r.err(path, f"range {text!r} must go up and both ends must have the same length")
        return None
    return NumberRange(first, last)


def parse_site(ctx: CustomerCtx, raw: Any, path: PathKey, codes: dict[str, PathKey]) -> Site | None:
    r = ctx.r
    m = r.mapping(raw, path, _SITE_KEYS)
    if not m:
        r.err(path, "a site must be a mapping with at least code, trunk and address")
        return None
    code = r.text(m, path, "code", required=True)
    if code is not None:
        if not code.isdigit() or len(code) != ctx.site_code_length:
            r.err((*path, "code"), f"site code {code!r} must be {ctx.site_code_length} digits "
                  "(site_code_length, service description 2.6.3.1)")
            code = None
        elif code in codes:
            r.err((*path, "code"), f"site code {code} already used at line {r.src.line_of(codes[code])}")
            code = None
        else:
            codes[code] = (*path, "code")
    address = _address(r, m.get("address"), (*path, "address"))
    tz_name = r.text(m, path, "timezone", default="Europe/Paris") or "Europe/Paris"
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        r.err((*path, "timezone"), f"unknown time zone {tz_name!r}")
        tz = ZoneInfo("Europe/Paris")
    ranges = [
        rg for text, p in r.text_list(m, path, "numbers") if (rg := parse_range(r, text, p)) is not None
    ]
    main = r.text(m, path, "main_number")
    if main is not None:
        if parse_e164(main) is None:
            r.err((*path, "main_number"), f"{main!r} is not a valid E.164 number")
            main = None
        elif not any(main in rg for rg in ranges):
            r.err((*path, "main_number"), f"{main} is not in the site's numbers")
    trunk = _trunk_ref(ctx, m, path, "trunk", required=True)
    emergency_trunk = _trunk_ref(ctx, m, path, "emergency_trunk", required=False)
    networks: list[IpNetwork] = []
    for text, p in r.text_list(m, path, "networks"):
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            r.err(p, f"{text!r} is not an IP network (CIDR)")
    media = r.choice(m, path, "media", MediaMode, MediaMode.ANCHOR) or MediaMode.ANCHOR
    if code is None or trunk is None or address is None:
        return None
    site = Site(
        code=code, name=r.text(m, path, "name", default=code) or code, address=address,
        timezone=tz, numbers=tuple(ranges), main_number=main, trunk=trunk,
        emergency_trunk=emergency_trunk, networks=tuple(networks),
        short_dialing=r.boolean(m, path, "short_dialing", False), media=media,
        ring_timeout=ring_seconds(r, m, path, "ring_timeout"),
    )
    ctx.paths[id(site)] = path
    return site


def _address(r: Reader, raw: Any, path: PathKey) -> CivicAddress | None:
    if raw is None:
        r.err(path, "missing required field 'address' (civic address for emergency calls, "
              "service description 2.6.2.1)")
        return None
    m = r.mapping(raw, path, _ADDRESS_KEYS)
    vals = {k: r.text(m, path, k, required=True) for k in ("street", "number", "postal_code", "city")}
    country = r.text(m, path, "country", default="FR") or "FR"
    if any(v is None for v in vals.values()):
        return None
    return CivicAddress(
        street=vals["street"] or "", number=vals["number"] or "",
        postal_code=vals["postal_code"] or "", city=vals["city"] or "", country=country,
        extra=r.text(m, path, "extra", default="") or "",
    )


def _trunk_ref(ctx: CustomerCtx, m: dict[str, Any], path: PathKey, key: str, *, required: bool) -> Trunk | None:
    tid = ctx.r.text(m, path, key, required=required)
    if tid is None:
        return None
    trunk = ctx.trunks.get(tid)
    if trunk is None:
        ctx.r.err((*path, key), f"no trunk with id {tid!r}")
    return trunk


def _number_and_extension(
    ctx: CustomerCtx, site: Site, m: dict[str, Any], path: PathKey, *, what: str
) -> tuple[str | None, str | None]:
    r = ctx.r
    number = r.text(m, path, "number")
    if number is not None:
        if number[1:].isdigit() and any(number in rg for rg in site.numbers):
            # Inside a declared block whose two ends phonenumbers validated (same length,
            # same leading digits): valid too. Skipping the ~15 us parse per user is what
            # lets a 100k-user plan load in a few seconds.
            pass
        elif parse_e164(number) is None:
            r.err((*path, "number"), f"{number!r} is not a valid E.164 number (e.g. +33562070410)")
            number = None
        elif not any(number in rg for rg in site.numbers):
            r.err((*path, "number"), f"{number} is not in the numbers of site {site.code}")
    ext = r.text(m, path, "extension")
    if ext is not None:
        if not ext.isdigit() or len(ext) != ctx.extension_length:
            r.err((*path, "extension"), f"extension {ext!r} must be {ctx.extension_length} digits "
                  "(extension_length, service description 2.6.3.1)")
            ext = None
    elif number is not None:
        ext = number[-ctx.extension_length:]  # 2.6.3.2: "Extension issue du numéro de téléphone"
    elif "number" not in m:
        r.err(path, f"a {what} needs an extension or a public number to derive it from")
    return number, ext


def parse_user(ctx: CustomerCtx, site: Site, raw: Any, path: PathKey) -> User | None:
    r = ctx.r
    m = r.mapping(raw, path, _USER_KEYS)
    name = r.text(m, path, "name", required=True)
    number, ext = _number_and_extension(ctx, site, m, path, what="user")
    pack = r.choice(m, path, "pack", Pack, None, required=True)
    pid = r.text(m, path, "barring")
    profile = ctx.default_profile
    if pid is not None:
        if pid in ctx.profiles:
            profile = ctx.profiles[pid]
        else:
            r.err((*path, "barring"), f"no barring profile {pid!r} (have: {', '.join(ctx.profiles)})")
    features, devices = _pack_features(ctx, m, path, pack)
    ring = ring_seconds(r, m, path, "ring_timeout")
    admin = r.boolean(m, path, "admin", False)  # a customer admin (the night switch code)
    email = r.text(m, path, "email")
    if email is not None and (len(email) > 254 or not _EMAIL.fullmatch(email)):
        r.err((*path, "email"), f"{email!r} is not an e-mail address (name@domain.tld)")
        email = None
    if name is None or ext is None or pack is None:
        return None
    full = ctx.prefix + site.code + ext
    sip_m = r.mapping(m.get("sip"), (*path, "sip"))
    if "password" in sip_m or "secret" in sip_m:
        key = "password" if "password" in sip_m else "secret"
        r.err((*path, "sip", key), "plaintext passwords are refused: give ha1_md5/ha1_sha256")
        sip_m = {k: v for k, v in sip_m.items() if k not in ("password", "secret")}
    r.mapping(sip_m, (*path, "sip"), _SIP_KEYS)
    sp = (*path, "sip")
    sip = SipCredentials(
        username=r.text(sip_m, sp, "username", default=full) or full, realm=ctx.realm,
        ha1_md5=hex_digest(r, sip_m, sp, "ha1_md5", 32),
        ha1_sha256=hex_digest(r, sip_m, sp, "ha1_sha256", 64),
    )
    user = User(
        name=name, public_number=number, extension=ext, full_number=full, pack=pack,
        barring=profile, clir=r.boolean(m, path, "clir", False), features=features,
        devices=devices, sip=sip, ring_timeout=ring, admin=admin, email=email,
        conference_pin=conference_pin(r, m, path, pack),
        pickup_group=r.text(m, path, "pickup_group"),
    )
    ctx.paths[id(user)] = path
    return user


def _pack_features(
    ctx: CustomerCtx, m: dict[str, Any], path: PathKey, pack: Pack | None
) -> tuple[frozenset[PackFeature], int | None]:
    """Features the user gets: the pack's (annex 16.1) unless narrowed by `features:`; a
    feature the pack lacks is an error, not silently dropped."""
    r = ctx.r
    allowed = PACK_FEATURES[pack] if pack is not None else frozenset(PackFeature)
    chosen: set[PackFeature] = set(allowed)
    if "features" in m:
        chosen = set()
        for text, p in r.text_list(m, path, "features"):
            try:
                f = PackFeature(text.lower())
            except ValueError:
                r.err(p, f"unknown feature {text!r}")
                continue
            if f not in allowed and pack is not None:
                r.err(p, f"pack {pack.value} does not include {f.value} (annex 16.1)")
            chosen.add(f)
    vm = m.get("voicemail")
    if vm is not None:
        if not isinstance(vm, bool):
            r.err((*path, "voicemail"), "must be true or false")
        elif vm and PackFeature.VOICEMAIL not in allowed and pack is not None:
            r.err((*path, "voicemail"), f"pack {pack.value} has no voicemail (annex 16.1, section 2.3)")
        elif vm:
            chosen.add(PackFeature.VOICEMAIL)
        else:
            chosen.discard(PackFeature.VOICEMAIL)
    limit = PACK_MAX_DEVICES[pack] if pack is not None else None
    devices: int | None = None
    if "devices" in m:
        devices = r.integer(m, path, "devices", 1, 1, 100)
        if limit is not None and devices > limit and pack is not None:
            r.err((*path, "devices"), f"pack {pack.value} allows {limit} device(s) (section 2.3)")
    return frozenset(chosen & allowed), devices if devices is not None else limit


def _group_common(ctx: CustomerCtx, site: Site, m: dict[str, Any], path: PathKey, what: str) -> tuple[str, str, str | None, str, str] | None:
    r = ctx.r
    gid = r.text(m, path, "id", required=True)
    if gid is not None:
        if gid in ctx.ids:
            r.err((*path, "id"), f"id {gid!r} already used at line {r.src.line_of(ctx.ids[gid])}")
        ctx.ids[gid] = (*path, "id")
    number, ext = _number_and_extension(ctx, site, m, path, what=what)
    if gid is None or ext is None:
        return None
    return gid, r.text(m, path, "name", default=gid) or gid, number, ext, ctx.prefix + site.code + ext


def _schedule_ref(ctx: CustomerCtx, m: dict[str, Any], path: PathKey) -> Schedule | None:
    sid = ctx.r.text(m, path, "schedule")
    if sid is None:
        return None
    if sid not in ctx.schedules:
        ctx.r.err((*path, "schedule"), f"no schedule {sid!r}")
    return ctx.schedules.get(sid)


def _members(ctx: CustomerCtx, m: dict[str, Any], path: PathKey, key: str) -> tuple[User, ...]:
    out: list[User] = []
    for ref, p in ctx.r.text_list(m, path, key):
        e = ctx.full_numbers.get(ref)
        if isinstance(e, User):
            out.append(e)
        else:
            ctx.r.err(p, f"no user with internal number {ref!r}")
    return tuple(out)


def _defer_target(ctx: CustomerCtx, obj: Any, attr: str, m: dict[str, Any], path: PathKey, key: str) -> None:
    ref = ctx.r.text(m, path, key)
    if ref is not None:
        ctx.pending_targets.append((obj, attr, ref, (*path, key)))


def parse_hunt_group(ctx: CustomerCtx, site: Site, raw: Any, path: PathKey) -> HuntGroup | None:
    r = ctx.r
    m = r.mapping(raw, path, _GROUP_KEYS)
    common = _group_common(ctx, site, m, path, "hunt group")
    strategy = r.choice(m, path, "strategy", HuntStrategy, HuntStrategy.SIMULTANEOUS)
    members = _members(ctx, m, path, "members")
    schedule = _schedule_ref(ctx, m, path)
    step = ring_seconds(r, m, path, "step")
    ring = ring_seconds(r, m, path, "ring_timeout")
    if common is None or strategy is None:
        return None
    gid, name, number, ext, full = common
    g = HuntGroup(gid, name, number, ext, full, strategy, members, schedule, step=step,
                  ring_timeout=ring)
    ctx.paths[id(g)] = path
    _defer_target(ctx, g, "closed_target", m, path, "closed")
    return g


def _skills(ctx: CustomerCtx, m: dict[str, Any], path: PathKey) -> tuple[tuple[str, int], ...]:
    """``skills: {"501410": 5}``: an agent's weight (0-100), higher offered first."""
    raw = m.get("skills")
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        ctx.r.err((*path, "skills"), "expected a mapping of agent number to skill weight")
        return ()
    out: list[tuple[str, int]] = []
    for ref, weight in raw.items():
        p = (*path, "skills", str(ref))
        if not isinstance(ctx.full_numbers.get(str(ref)), User):
            ctx.r.err(p, f"no user with internal number {ref!r}")
        elif isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
            ctx.r.err(p, f"skill weight {weight!r} is not an integer 0-100")
        else:
            out.append((str(ref), weight))
    return tuple(out)


def parse_queue(ctx: CustomerCtx, site: Site, raw: Any, path: PathKey) -> Queue | None:
    r = ctx.r
    m = r.mapping(raw, path, _QUEUE_KEYS)
    common = _group_common(ctx, site, m, path, "queue")
    agents = _members(ctx, m, path, "agents")
    max_waiting = r.integer(m, path, "max_waiting", 10, 1, 1000)
    schedule = _schedule_ref(ctx, m, path)
    strategy = r.choice(m, path, "strategy", QueueStrategy, QueueStrategy.LONGEST_IDLE)
    wrap_up = r.integer(m, path, "wrap_up", 10, 0, 600)
    max_wait = r.integer(m, path, "max_wait", 300, 1, 7200)
    announce_every = r.integer(m, path, "announce_every", 30, 5, 600)
    callback_key = r.text(m, path, "callback_key")
    if callback_key is not None and (len(callback_key) != 1
                                     or callback_key not in "0123456789*#"):
        r.err((*path, "callback_key"), f"{callback_key!r} is not one key (0-9, * or #)")
        callback_key = None
    skills = _skills(ctx, m, path)
    if common is None or strategy is None:
        return None
    gid, name, number, ext, full = common
    q = Queue(gid, name, number, ext, full, agents, max_waiting, None, schedule,
              strategy=strategy, wrap_up=wrap_up, max_wait=max_wait,
              announce_every=announce_every, callback_key=callback_key, skills=skills)
    ctx.paths[id(q)] = path
    _defer_target(ctx, q, "overflow_target", m, path, "overflow")
    _defer_target(ctx, q, "closed_target", m, path, "closed")
    return q


def resolve_target(ctx: CustomerCtx, ref: str, path: PathKey) -> Target | None:
    """"501410" -> that entity; "voicemail:501410" -> that user's mailbox."""
    kind_s, sep, number = ref.partition(":")
    if not sep:
        number, kind_s = ref, ""
    entity = ctx.full_numbers.get(number)
    if entity is None or kind_s not in ("", "voicemail"):
        ctx.r.err(path, f"no target {ref!r} (an internal number, or voicemail:<user number>)")
        return None
    if kind_s == "voicemail":
        if not isinstance(entity, User):
            ctx.r.err(path, f"{number} is not a user, it has no mailbox")
            return None
        if not entity.has(PackFeature.VOICEMAIL):
            ctx.r.err(path, f"user {number} has no voicemail (pack {entity.pack.value}, annex 16.1)")
            return None
        return Target(DecisionKind.VOICEMAIL, entity)
    from .model import ENTITY_KIND

    return Target(ENTITY_KIND[type(entity)], entity)


def apply_targets(ctx: CustomerCtx) -> None:
    menus: dict[int, list[tuple[str, Target]]] = {}
    for obj, attr, ref, path in ctx.pending_targets:
        target = resolve_target(ctx, ref, path)
        if target is None:
            continue
        if target.entity is obj and attr == "closed_target":
            ctx.r.err(path, "a closed-hours route cannot point at its own group")
            continue
        if attr.startswith("menu:"):
            menus.setdefault(id(obj), []).append((attr[5:], target))
            object.__setattr__(obj, "menu", tuple(menus[id(obj)]))
        else:
            object.__setattr__(obj, attr, target)
