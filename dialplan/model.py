"""The loaded dialplan: customers, sites, users, groups, trunks, and the indexes routing uses.

Everything is a frozen dataclass built once by `dialplan.loader`; entities compare by
identity (eq=False) because they point at each other (a user knows its site and customer).
Back references are filled by the loader right after construction and never change after.
Lookups the router needs are dicts precomputed at load time, so a decision never scans.
"""

from __future__ import annotations

import ipaddress
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Union
from zoneinfo import ZoneInfo

from .numbers import CallCategory, NumberRange
from .packs import FeatureName, Pack, PackFeature
from .schedule import Schedule

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class DecisionKind(Enum):
    USER = "user"
    HUNT_GROUP = "hunt_group"
    QUEUE = "queue"
    AUTO_ATTENDANT = "auto_attendant"
    VOICEMAIL = "voicemail"
    FEATURE = "feature"
    EXTERNAL = "external"
    EMERGENCY = "emergency"
    REJECT = "reject"


class Transport(Enum):
    UDP = "udp"
    TCP = "tcp"
    TLS = "tls"


class MediaMode(Enum):
    ANCHOR = "anchor"  # RTP flows through the switch (recording, transcoding, NAT)
    PASSTHROUGH = "passthrough"  # phones exchange RTP directly


class HuntStrategy(Enum):
    SIMULTANEOUS = "simultaneous"
    SEQUENTIAL = "sequential"
    ROUND_ROBIN = "round_robin"
    LONGEST_IDLE = "longest_idle"


class QueueStrategy(Enum):
    """Which free agent of a call queue is offered the oldest caller (issue 14)."""

    LONGEST_IDLE = "longest_idle"  # the agent free for the longest time
    ROUND_ROBIN = "round_robin"  # the agent after the last one offered, in plan order
    FEWEST_CALLS = "fewest_calls"  # the agent who answered the fewest queue calls
    RING_ALL = "ring_all"  # every free agent rings at once; the first to answer wins


@dataclass(frozen=True, slots=True)
class CivicAddress:
    """Caller location sent with emergency calls (section 2.6.2.1: the number is tied to the
    site's physical address)."""

    street: str
    number: str
    postal_code: str
    city: str
    country: str = "FR"
    extra: str = ""  # building, floor, room

    def __str__(self) -> str:
        extra = f", {self.extra}" if self.extra else ""
        return f"{self.number} {self.street}{extra}, {self.postal_code} {self.city}, {self.country}"


@dataclass(frozen=True, slots=True)
class SipCredentials:
    """Digest credentials: HA1 only, never a password (RFC 7616 section 3.4.2)."""

    username: str
    realm: str
    ha1_md5: str | None = None
    ha1_sha256: str | None = None


@dataclass(frozen=True, slots=True)
class BarringProfile:
    id: str
    allow: frozenset[CallCategory]
    description: str = ""

    def refused(self, categories: frozenset[CallCategory]) -> frozenset[CallCategory]:
        return categories - self.allow


@dataclass(frozen=True, slots=True)
class TrunkRegistration:
    username: str
    realm: str | None = None
    ha1_md5: str | None = None
    ha1_sha256: str | None = None
    secret_ref: str | None = None  # name of a secret held outside the YAML


@dataclass(frozen=True, eq=False)
class Trunk:
    id: str
    host: str
    port: int
    transport: Transport
    trusted: tuple[str, ...]
    register: TrunkRegistration | None = None
    customer: Customer = field(init=False, repr=False, compare=False)


@dataclass(frozen=True, eq=False)
class User:
    name: str
    public_number: str | None
    extension: str
    full_number: str
    pack: Pack
    barring: BarringProfile
    clir: bool
    features: frozenset[PackFeature]
    devices: int | None
    sip: SipCredentials
    # Seconds a call to this user rings before 480; None: the site's, else the switch's.
    ring_timeout: float | None = None
    admin: bool = False  # a customer admin: may use the night switch code
    # Where voicemail e-mails the user's new messages (issue 13); None: no e-mail.
    email: str | None = None
    # issue 16: the PIN of the user's personal conference number (Suite pack), None: none;
    # the pickup group whose ringing calls `*8` answers (None: the user's site)
    conference_pin: str | None = None
    pickup_group: str | None = None
    site: Site = field(init=False, repr=False, compare=False)
    customer: Customer = field(init=False, repr=False, compare=False)

    @property
    def number(self) -> str | None:
        return self.public_number

    def has(self, feature: PackFeature) -> bool:
        return feature in self.features

    def __repr__(self) -> str:
        return f"User({self.full_number} {self.name!r})"


@dataclass(frozen=True, slots=True)
class Target:
    """A resolved reference in the plan: an entity, or a user's mailbox (kind VOICEMAIL)."""

    kind: DecisionKind
    entity: Entity

    def __str__(self) -> str:
        prefix = "voicemail:" if self.kind is DecisionKind.VOICEMAIL else ""
        return f"{prefix}{self.entity.full_number}"


@dataclass(frozen=True, eq=False)
class HuntGroup:
    id: str
    name: str
    public_number: str | None
    extension: str
    full_number: str
    strategy: HuntStrategy
    members: tuple[User, ...]
    schedule: Schedule | None = None
    closed_target: Target | None = None
    # Seconds each member (or group of members) rings when hunting, and the whole group's
    # ring time; None: the switch's `calls.hunt_step` / the site's or switch's ring timeout.
    step: float | None = None
    ring_timeout: float | None = None
    site: Site = field(init=False, repr=False, compare=False)
    customer: Customer = field(init=False, repr=False, compare=False)


@dataclass(frozen=True, eq=False)
class Queue:
    id: str
    name: str
    public_number: str | None
    extension: str
    full_number: str
    agents: tuple[User, ...]
    max_waiting: int
    overflow_target: Target | None = None
    schedule: Schedule | None = None
    closed_target: Target | None = None
    strategy: QueueStrategy = QueueStrategy.LONGEST_IDLE
    wrap_up: int = 10  # seconds after a queue call before the agent is offered another
    max_wait: int = 300  # seconds a caller waits before the overflow target
    announce_every: int = 30  # seconds between position announcements
    # the key a waiting caller presses to hang up and be called back, keeping its place
    # in the line (None: no callback)
    callback_key: str | None = None
    # agent full number -> skill weight: among free agents the higher skill is offered
    # first, ties broken by the strategy (agents not listed weigh 0)
    skills: tuple[tuple[str, int], ...] = ()
    site: Site = field(init=False, repr=False, compare=False)
    customer: Customer = field(init=False, repr=False, compare=False)


class MenuCommand(Enum):
    """A menu key that moves within the auto-attendant instead of sending the caller on."""

    REPEAT = "repeat"  # play this menu again
    BACK = "back"  # the parent menu (submenus only)


@dataclass(frozen=True, slots=True)
class ExternalNumber:
    """An external number a menu sends its caller to, as written in the plan
    (``+33612345678`` or ``0612345678``); the customer's default barring allowed it at load."""

    number: str
    e164: str | None = None

    def __str__(self) -> str:
        return self.number


@dataclass(frozen=True, eq=False)
class AttendantMenu:
    """A submenu of an auto-attendant: its own greeting and prompt (customer announcement
    names; None: the shipped default) and keys."""

    greeting: str | None = None
    prompt: str | None = None
    menu: tuple[tuple[str, MenuChoice], ...] = ()  # DTMF key -> what it does


# What a menu key does: send the caller to a target (an entity, a mailbox, an external
# number), open a submenu, or repeat / go back.
MenuChoice = Union[Target, ExternalNumber, AttendantMenu, MenuCommand]  # noqa: UP007
TransferTarget = Union[Target, ExternalNumber]  # noqa: UP007


@dataclass(frozen=True, eq=False)
class AutoAttendant:
    id: str
    name: str
    public_number: str | None
    extension: str
    full_number: str
    menu: tuple[tuple[str, MenuChoice], ...]  # DTMF key -> what it does (top menu)
    timeout_target: TransferTarget | None = None  # after `retries` invalid or no entries
    schedule: Schedule | None = None
    closed_target: Target | None = None
    greeting: str | None = None  # announcement names; None: the shipped aa-welcome/aa-menu
    menu_prompt: str | None = None
    retries: int = 3  # attempts at the menu before the timeout target
    dial_by_extension: bool = True  # a digit that is no key starts an internal number
    digit_timeout: float = 5.0  # seconds: wait for the first digit, and between digits
    site: Site = field(init=False, repr=False, compare=False)
    customer: Customer = field(init=False, repr=False, compare=False)


Entity = Union[User, HuntGroup, Queue, AutoAttendant]  # noqa: UP007 (runtime alias)

ENTITY_KIND: dict[type, DecisionKind] = {
    User: DecisionKind.USER,
    HuntGroup: DecisionKind.HUNT_GROUP,
    Queue: DecisionKind.QUEUE,
    AutoAttendant: DecisionKind.AUTO_ATTENDANT,
}


@dataclass(frozen=True, eq=False)
class Site:
    code: str
    name: str
    address: CivicAddress
    timezone: ZoneInfo
    numbers: tuple[NumberRange, ...]
    main_number: str | None
    trunk: Trunk
    emergency_trunk: Trunk | None
    networks: tuple[IpNetwork, ...]
    short_dialing: bool
    media: MediaMode
    users: tuple[User, ...] = ()
    hunt_groups: tuple[HuntGroup, ...] = ()
    queues: tuple[Queue, ...] = ()
    auto_attendants: tuple[AutoAttendant, ...] = ()
    ring_timeout: float | None = None  # default for its users and groups; None: the switch's
    by_extension: Mapping[str, Entity] = field(default_factory=dict, repr=False)
    customer: Customer = field(init=False, repr=False, compare=False)

    def entities(self) -> tuple[Entity, ...]:
        return (*self.users, *self.hunt_groups, *self.queues, *self.auto_attendants)

    @property
    def trunk_for_emergency(self) -> Trunk:
        return self.emergency_trunk or self.trunk


@dataclass(frozen=True, slots=True)
class ConferenceRoom:
    """A customer's meet-me room (issue 16), dialled `*71` + its number."""

    number: str  # 1-6 digits, unique in the customer
    name: str
    pin: str | None = None  # 4-8 digits; None: anyone of the customer may join
    owner: str | None = None  # a user's full number: joins without the PIN, owner's keys


@dataclass(frozen=True, eq=False)
class Customer:
    id: str
    name: str
    sip_domain: str
    realm: str
    domains: tuple[str, ...]
    prefix: str
    site_code_length: int
    extension_length: int
    outside_line_digit: str | None
    country: str
    emergency_numbers: frozenset[str]
    barring_profiles: Mapping[str, BarringProfile]
    default_barring: BarringProfile
    feature_codes: Mapping[str, FeatureName]
    trunks: Mapping[str, Trunk]
    schedules: Mapping[str, Schedule]
    sites: tuple[Site, ...]
    emergency_webhook: str | None = None  # POSTed a JSON alert for each emergency call
    # night switch code -> the schedule it forces (`"*55": {feature: night_switch, ...}`)
    feature_schedules: Mapping[str, str] = field(default_factory=dict)
    conference_rooms: Mapping[str, ConferenceRoom] = field(default_factory=dict)  # by number
    # Indexes, built at load.
    by_full_number: Mapping[str, Entity] = field(default_factory=dict, repr=False)
    users_by_username: Mapping[str, User] = field(default_factory=dict, repr=False)
    sites_by_code: Mapping[str, Site] = field(default_factory=dict, repr=False)
    feature_code_lengths: tuple[int, ...] = ()
    _range_starts: tuple[int, ...] = field(default=(), repr=False)
    _ranges: tuple[NumberRange, ...] = field(default=(), repr=False)

    @property
    def full_number_length(self) -> int:
        return len(self.prefix) + self.site_code_length + self.extension_length

    @property
    def users(self) -> tuple[User, ...]:
        return tuple(u for s in self.sites for u in s.users)

    def range_of(self, e164: str) -> NumberRange | None:
        """The DID block of this customer that holds `e164`, by bisection."""
        if not e164[1:].isdigit():
            return None
        i = bisect_right(self._range_starts, int(e164[1:])) - 1
        if i >= 0 and e164 in self._ranges[i]:
            return self._ranges[i]
        return None


@dataclass(frozen=True, eq=False)
class Plan:
    customers: tuple[Customer, ...]
    source: str = ""
    by_domain: Mapping[str, Customer] = field(default_factory=dict, repr=False)
    by_public_number: Mapping[str, tuple[DecisionKind, Entity]] = field(
        default_factory=dict, repr=False
    )
    users_by_username: Mapping[str, tuple[User, ...]] = field(default_factory=dict, repr=False)
    trunks_by_hostport: Mapping[tuple[str, int | None], Trunk] = field(
        default_factory=dict, repr=False
    )
    trusted_networks: tuple[tuple[IpNetwork, Trunk], ...] = field(default=(), repr=False)

    def customer_for_domain(self, host: str) -> Customer | None:
        return self.by_domain.get(host.lower())

    def user_by_username(self, username: str, domain: str | None = None) -> User | None:
        """The account `username` at request host `domain` (a customer's sip_domain or one of
        its `domains`); with no domain, the account if exactly one customer has it."""
        if domain is not None:
            customer = self.customer_for_domain(domain)
            return None if customer is None else customer.users_by_username.get(username)
        found = self.users_by_username.get(username, ())
        return found[0] if len(found) == 1 else None

    def owner_of_number(self, e164: str) -> tuple[DecisionKind, Entity] | None:
        return self.by_public_number.get(e164)

    def trunk_for_address(self, host: str, port: int | None = None) -> Trunk | None:
        """The trunk that trusts source `host`:`port` (an entry with a port must match it)."""
        host = host.lower()
        trunk = self.trunks_by_hostport.get((host, port)) or self.trunks_by_hostport.get(
            (host, None)
        )
        if trunk is not None or not self.trusted_networks:
            return trunk
        try:
            addr = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return None
        for net, t in self.trusted_networks:
            if addr in net:
                return t
        return None

    def user_by_full_number(self, number: str) -> User | None:
        for c in self.customers:
            e = c.by_full_number.get(number)
            if isinstance(e, User):
                return e
        return None

    @property
    def users(self) -> tuple[User, ...]:
        return tuple(u for c in self.customers for u in c.users)
