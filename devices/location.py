"""The location service: bindings of an address-of-record to contacts (RFC 3261 section 10).

Kept in memory for routing; durable through a `BindingRepository` that `switch.storage`
implements. Bindings are immutable; their identity inside an AOR is `Binding.key`:

- the `+sip.instance` (and `reg-id`) when present, so that a device that moves to another
  contact URI (a DECT handset roaming between bases, a phone whose address changed)
  replaces its earlier binding (RFC 5626 section 6, RFC 5627 section 4.2);
- else the Contact URI as serialised after parsing (host lower-cased).

Where a request to a binding goes (`Binding.destination`, the rule of Kamailio's
nathelper): to the registered Contact unless NAT is detected, else back to the source of the
REGISTER (RFC 3581 symmetric response routing, RFC 5626 flows).

Memory: slotted frozen dataclasses, the repeated strings (AOR, transport, source host,
User-Agent) interned, q-values shared; an expiry heap makes `sweep` cost O(expired log n).
"""

from __future__ import annotations

import functools
import heapq
import ipaddress
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Protocol

from switch.sip import SipUri, parse_uri
from switch.sip.errors import SipParseError

_Q_CACHE: dict[float, float] = {}


def _intern_q(q: float) -> float:
    return _Q_CACHE.setdefault(q, q) if len(_Q_CACHE) < 1024 else q


@dataclass(frozen=True, slots=True)
class Binding:
    aor: str
    contact: str  # the Contact URI (no header parameters)
    expires_at: float  # epoch seconds
    q: float
    call_id: str
    cseq: int
    instance_id: str | None  # "<urn:uuid:...>" as sent in +sip.instance, unquoted
    reg_id: int | None
    transport: str  # "udp", "tcp", "tls", "ws", "wss" as received (RFC 3581: reply there)
    source_host: str
    source_port: int
    conn_id: int | None  # connection-oriented transports: the connection to reuse
    user_agent: str
    registered_at: float  # last time a REGISTER created or refreshed it
    path: tuple[str, ...] = field(default=())  # RFC 3327 Path, in order

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "aor", sys.intern(self.aor))
        set_(self, "transport", sys.intern(self.transport))
        set_(self, "source_host", sys.intern(self.source_host))
        set_(self, "user_agent", sys.intern(self.user_agent))
        set_(self, "q", _intern_q(self.q))

    @property
    def key(self) -> str:
        return binding_key(self.contact, self.instance_id, self.reg_id)

    def remaining(self, now: float) -> int:
        """Whole seconds left, as listed in `Contact: ...;expires=N` (RFC 3261 10.3 step 8)."""
        return max(0, round(self.expires_at - now))

    def without_connection(self) -> Binding:
        return self if self.conn_id is None else replace(self, conn_id=None)

    def destination(self) -> tuple[str, str, int, int | None]:
        """(TRANSPORT, host, port, connection id) a request to this binding is sent to;
        `Peer(*binding.destination())` in the caller. See `destination_for`."""
        return _destination(self.contact, self.transport, self.source_host,
                            self.source_port, self.conn_id, self.path)


CONNECTION_ORIENTED = frozenset({"tcp", "tls", "ws", "wss", "sctp"})
_DEFAULT_PORT = {"sip": 5060, "sips": 5061}


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def destination_for(contact: str, transport: str, source_host: str, source_port: int,
                    conn_id: int | None, path: Sequence[str] = ()) -> tuple[str, str, int, int | None]:
    """Where to send a request for a binding: its Contact, unless NAT is detected (the rule
    of Kamailio's nathelper `nat_uac_test`), in which case the source of the REGISTER.

    The source (and its connection) is used when:
      1. the flow is connection-oriented (TCP, TLS, WS): the phone is reachable only over
         the connection it opened (RFC 5626 section 5.3, RFC 7118 section 5), and a NAT
         keeps that connection's mapping alive;
      2. the REGISTER came through a proxy that added Path (RFC 3327 section 5.3): the
         request goes back through it;
      3. the Contact host is not an IP address (resolving it is not the registrar's job,
         and the source is where the phone demonstrably is);
      4. the Contact address differs from the source address: the Contact is a private
         address behind a NAT (nathelper test 1, RFC 1918/RFC 6598/ULA), or a public
         address the packets did not come from (test 32: double NAT, a stale STUN result);
      5. the Contact asks for another transport than the REGISTER came over.
    Otherwise (same address, UDP) the Contact is used, port included: a gateway or phone
    that sends from one port and listens on another (its Contact port) is reached where it
    listens. Known limit: a phone behind a NAT that rewrites ports and puts its public
    address (from STUN) with its private port in the Contact would need the Via sent-by
    port of the REGISTER (nathelper test 16), which the binding does not store.
    """
    t = transport.lower()
    source = (t.upper(), source_host, source_port, conn_id)
    if t in CONNECTION_ORIENTED or path:
        return source
    try:
        uri = parse_uri(contact)
    except SipParseError:
        return source
    if not isinstance(uri, SipUri):
        return source
    contact_ip, source_ip = _ip(uri.host), _ip(source_host)
    if contact_ip is None or source_ip is None or contact_ip != source_ip:
        return source
    if uri.transport is not None and uri.transport != t:
        return source
    port = uri.port if uri.port is not None else _DEFAULT_PORT.get(uri.scheme, 5060)
    return (t.upper(), source_host, port, None)


def binding_key(contact: str, instance_id: str | None, reg_id: int | None) -> str:
    if instance_id is None:
        return contact
    return f"+sip.instance={instance_id}" if reg_id is None else f"+sip.instance={instance_id};reg-id={reg_id}"


class ChangeKind(Enum):
    UPSERT = "upsert"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class BindingChange:
    kind: ChangeKind
    binding: Binding  # DELETE: the binding being removed (its aor and key identify it)


class BindingRepository(Protocol):
    """Durable storage of bindings (implemented by switch.storage.bindings)."""

    async def apply(self, changes: Sequence[BindingChange]) -> None:
        """Persist `changes` in order; returns once they are committed."""
        ...

    async def load_unexpired(self, now: float) -> list[Binding]: ...

    async def delete_expired(self, now: float) -> int: ...


class LocationService:
    """In-memory bindings by AOR. Pure: every time is passed in."""

    __slots__ = ("_by_aor", "_count", "_heap", "observer")

    def __init__(self) -> None:
        self._by_aor: dict[str, dict[str, Binding]] = {}
        self._heap: list[tuple[float, str, str]] = []
        self._count = 0
        # Told `(aor, True)` when an AOR gets its first binding and `(aor, False)` when it
        # loses its last one (presence: open/closed). Called synchronously; must not raise.
        self.observer: Callable[[str, bool], None] | None = None

    def __len__(self) -> int:
        return self._count

    def _put(self, b: Binding) -> None:
        per = self._by_aor.get(b.aor)
        first = per is None
        if per is None:
            per = self._by_aor[b.aor] = {}
        key = b.key
        if key not in per:
            self._count += 1
        per[key] = b
        heapq.heappush(self._heap, (b.expires_at, b.aor, key))
        if first and self.observer is not None:
            self.observer(b.aor, True)

    def _drop(self, aor: str, key: str) -> Binding | None:
        per = self._by_aor.get(aor)
        if per is None:
            return None
        old = per.pop(key, None)
        if old is not None:
            self._count -= 1
            if not per:
                del self._by_aor[aor]
                if self.observer is not None:
                    self.observer(aor, False)
        return old

    def apply(self, changes: Iterable[BindingChange]) -> None:
        """Apply UPSERT/DELETE changes in order."""
        for ch in changes:
            if ch.kind is ChangeKind.UPSERT:
                self._put(ch.binding)
            else:
                self._drop(ch.binding.aor, ch.binding.key)

    def load(self, bindings: Iterable[Binding], *, drop_connections: bool = True) -> int:
        """Fill from storage at start. Connection ids belong to the process that accepted
        the connection, so they are dropped by default (the phone reconnects)."""
        n = 0
        for b in bindings:
            self._put(b.without_connection() if drop_connections else b)
            n += 1
        return n

    def get(self, aor: str, key: str) -> Binding | None:
        per = self._by_aor.get(aor)
        return None if per is None else per.get(key)

    def current(self, aor: str, now: float) -> list[Binding]:
        """Unexpired bindings of `aor`, in insertion order."""
        per = self._by_aor.get(aor)
        if not per:
            return []
        return [b for b in per.values() if b.expires_at > now]

    def lookup(self, aor: str, now: float) -> list[Binding]:
        """Targets for a request to `aor`: unexpired, highest q first, then most recent
        (RFC 3261 section 16.6 takes targets in q order)."""
        out = self.current(aor, now)
        out.sort(key=lambda b: (-b.q, -b.registered_at))
        return out

    def aors(self) -> Iterator[str]:
        return iter(list(self._by_aor))

    def all_bindings(self) -> Iterator[Binding]:
        for per in list(self._by_aor.values()):
            yield from list(per.values())

    def sweep(self, now: float) -> list[Binding]:
        """Remove and return the bindings expired at `now` (the caller also deletes them in
        storage with `BindingRepository.delete_expired`)."""
        removed: list[Binding] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            expires_at, aor, key = heapq.heappop(heap)
            b = self.get(aor, key)
            if b is not None and b.expires_at == expires_at:
                self._drop(aor, key)
                removed.append(b)
        if len(heap) > 4 * self._count + 1024:
            # refreshes leave stale heap entries behind; rebuild when they dominate
            self._heap = [(b.expires_at, b.aor, k) for per in self._by_aor.values()
                          for k, b in per.items()]
            heapq.heapify(self._heap)
        return removed

    def next_expiry(self) -> float | None:
        """When `sweep` next has something to do (for the driver's timer)."""
        return self._heap[0][0] if self._heap else None


# Every call looks its callee's bindings up: parsing the Contact and two IP addresses each
# time was the largest single cost of an anchored call in a py-spy sample (issue 21). The
# function is pure and its inputs are a binding's own fields, so its answers are cached.
_destination = functools.lru_cache(maxsize=16384)(destination_for)
