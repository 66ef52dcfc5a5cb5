"""Who a call rings: the legs for a routing decision, grouped for hunting.

Users are found in the location service (every binding rings: forking); hunt groups order
their members by strategy; external and emergency numbers go to the decision's trunk with the
number the carrier expects in the Request-URI (E.164, or the short emergency number).
"""

from __future__ import annotations

from collections.abc import Callable

from devices.location import Binding, LocationService
from dialplan import DecisionKind, HuntGroup, HuntStrategy, RoutingDecision, User
from switch.b2bua.assembly import LegTarget
from switch.callerid import OutboundIdentity, outbound_identity
from switch.sip import NameAddr, Request, SipUri
from switch.transaction import Peer

Target = LegTarget
_CACHE_MAX = 16384


def leg_target(ruri: str, dest: Peer, to: NameAddr, identity: OutboundIdentity,
               user: User | None, path: tuple[str, ...] = ()) -> LegTarget:
    """A leg to `ruri`. A binding registered through an edge proxy that added Path is
    reached through it: the INVITE carries Route headers built from the Path values, in
    order (RFC 3327 section 5.3), and goes to the edge (`dest`, the REGISTER's source)."""
    route = tuple(("Route", p) for p in path)
    return LegTarget(ruri, dest, to, identity.from_, (*route, *identity.headers),
                     identity.number, user.full_number if user is not None else None)


def ring_timeout_for(decision: RoutingDecision, default: float) -> float:
    """How long a call rings before 480 (no answer): the called user's or hunt group's
    `ring_timeout`, else its site's, else the switch's `calls.ring_timeout` (`default`)."""
    target = decision.target
    if decision.kind in (DecisionKind.USER, DecisionKind.HUNT_GROUP) and isinstance(
            target, User | HuntGroup):
        site = getattr(target, "site", None)  # set when the plan is indexed
        own = target.ring_timeout
        return own or (site.ring_timeout if site is not None else None) or default
    return default


def hunt_step_for(decision: RoutingDecision, default: float) -> float:
    """How long each member of a hunt group rings: the group's `step`, else the switch's
    `calls.hunt_step` (`default`)."""
    if decision.kind is DecisionKind.HUNT_GROUP and isinstance(decision.target, HuntGroup):
        return decision.target.step or default
    return default


def aor_key(user: User) -> str:
    """The location-service key of a user's line: customer id and full internal number."""
    return f"{user.customer.id}:{user.full_number}"


class TargetResolver:
    def __init__(self, location: Callable[[], LocationService],
                 clock: Callable[[], float]) -> None:
        self.location = location
        self.clock = clock
        self._rotation: dict[str, int] = {}  # hunt group id -> next first member
        self._last_busy: dict[str, float] = {}  # user -> when its last call ended
        # what repeated calls to the same users and bindings share: the To of a user, the
        # Peer of a binding (both immutable), keyed by id with the object kept and compared
        # (an id reused by a later object never matches); emptied when full
        self._to: dict[int, tuple[User, NameAddr]] = {}
        self._peers: dict[int, tuple[Binding, Peer]] = {}

    def _to_of(self, user: User) -> NameAddr:
        kept = self._to.get(id(user))
        if kept is not None and kept[0] is user:
            return kept[1]
        to = NameAddr(SipUri("sip", user.customer.sip_domain, user.full_number), user.name)
        if len(self._to) >= _CACHE_MAX:
            self._to.clear()
        self._to[id(user)] = (user, to)
        return to

    def _peer_of(self, binding: Binding) -> Peer:
        kept = self._peers.get(id(binding))
        if kept is not None and kept[0] is binding:
            return kept[1]
        dest = Peer(*binding.destination())  # the Contact unless NAT is detected
        if len(self._peers) >= _CACHE_MAX:
            self._peers.clear()
        self._peers[id(binding)] = (binding, dest)
        return dest

    def call_ended(self, user: str) -> None:
        """A member's call ended: longest-idle hunting rings it last."""
        self._last_busy[user] = self.clock()

    def hunt_order(self, group: HuntGroup, caller: User | None) -> list[list[User]]:
        """Who rings, in which order (groups of users ringing together): the strategy of
        the hunt group. A member calling its own group is not rung."""
        members = [m for m in group.members if m is not caller]
        if group.strategy is HuntStrategy.SIMULTANEOUS:
            return [members]
        if group.strategy is HuntStrategy.ROUND_ROBIN and members:
            start = self._rotation.get(group.id, 0) % len(members)
            self._rotation[group.id] = start + 1
            members = members[start:] + members[:start]
        elif group.strategy is HuntStrategy.LONGEST_IDLE:
            members = sorted(members, key=lambda m: self._last_busy.get(m.full_number, 0.0))
        return [[m] for m in members]

    def targets(self, decision: RoutingDecision, caller: User | None,
                req: Request) -> list[list[Target]]:
        """Groups of legs, rung one group after the other (hunting); a group's legs ring
        at once (forking to every binding)."""
        now = self.clock()
        order: list[list[User]] = []
        if decision.kind is DecisionKind.USER and isinstance(decision.target, User):
            order = [[decision.target]]
        elif decision.kind is DecisionKind.HUNT_GROUP and isinstance(decision.target, HuntGroup):
            order = self.hunt_order(decision.target, caller)
        if order:
            identity = outbound_identity(req, caller, None, decision)
            groups: list[list[Target]] = []
            for users in order:
                group: list[Target] = []
                for user in users:
                    to = self._to_of(user)
                    for b in self.location().lookup(aor_key(user), now):
                        group.append(leg_target(b.contact, self._peer_of(b), to, identity,
                                                user, b.path))
                if group:
                    groups.append(group)
            return groups
        out: list[Target] = []
        if decision.kind in (DecisionKind.EXTERNAL, DecisionKind.EMERGENCY) and decision.trunk:
            trunk = decision.trunk
            number = decision.e164 if decision.kind is DecisionKind.EXTERNAL else (
                decision.number or decision.e164)
            if number is None:
                return []
            ruri = f"sip:{number}@{trunk.host}:{trunk.port};user=phone"
            dest = Peer(trunk.transport.value.upper(), trunk.host, trunk.port)
            to = NameAddr(SipUri("sip", trunk.host, number, params=(("user", "phone"),)))
            identity = outbound_identity(req, caller, trunk, decision)
            if caller is None and decision.kind is DecisionKind.EMERGENCY:
                identity = self.site_identity(decision)
            out.append(leg_target(ruri, dest, to, identity, None))
        return [out] if out else []

    @staticmethod
    def site_identity(decision: RoutingDecision) -> OutboundIdentity:
        """An unauthenticated emergency caller is presented with its site's main number."""
        site = decision.target
        number = getattr(site, "main_number", None) or "anonymous"
        domain = site.customer.sip_domain if site is not None else "anonymous.invalid"
        addr = NameAddr(SipUri("sip", domain, number, params=(("user", "phone"),)))
        return OutboundIdentity(addr, (("P-Asserted-Identity", str(addr)),), number, False)

