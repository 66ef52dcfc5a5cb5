"""The registrar: REGISTER processing per RFC 3261 section 10.3. Pure: time is passed in.

Decision on memory and persistence: `process` applies the accepted changes to the
`LocationService` at once, so that the next REGISTER (even one processed before the first
is committed) sees them; the caller then awaits `BindingRepository.apply(outcome.changes)`
BEFORE sending the 200 and, if that fails, calls `registrar.rollback(outcome)` and answers
500 (RFC 3261 10.3 step 7: updates are committed if and only if all succeed). A request
that is refused has no changes and leaves memory untouched.

Authentication (step 3) is done by the caller (`devices.digest`); `process` receives the
authenticated account. Step 4: the To user must be the account's user name (403 otherwise).

Device limits: an account whose pack limits its devices (`Account.max_contacts`, e.g. one
for a Workspace line) refuses a REGISTER that would bring in one device too many with 403
and a Warning that says why; no other device is replaced behind its back. Accounts without
a device limit keep at most `max_contacts` contacts, the least recently registered making
room (a memory bound, not a product rule).
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Sequence
from dataclasses import dataclass

from switch.sip import ContactStar, NameAddr, Request, SipUri, make_response, uri_user
from switch.sip.errors import SipParseError
from switch.sip.message import Response

from .accounts import Account
from .inventory import identify
from .location import Binding, BindingChange, ChangeKind, LocationService, binding_key

# Extensions a REGISTER may Require of us (RFC 3261 10.3 step 2, 8.2.2.3).
SUPPORTED_EXTENSIONS = frozenset({"path"})  # no GRUU issuing, no RFC 5626 flow keep-alive
MAX_EXPIRES_VALUE = 2**32 - 1
_QVALUE = re.compile(r"0(\.[0-9]{0,3})?|1(\.0{0,3})?")


@dataclass(frozen=True, slots=True)
class Source:
    """Where the REGISTER came from: requests to the phone go back there (RFC 3581)."""

    transport: str
    host: str
    port: int
    conn_id: int | None = None


@dataclass(frozen=True, slots=True)
class RegistrarOutcome:
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...] = ()
    changes: tuple[BindingChange, ...] = ()  # to persist before answering
    undo: tuple[BindingChange, ...] = ()  # restores memory if persisting fails

    def response(self, request: Request, to_tag: str | None = None) -> Response:
        return make_response(request, self.status, self.reason, to_tag=to_tag,
                             headers=self.headers)


class _Reject(Exception):
    def __init__(self, status: int, reason: str, headers: tuple[tuple[str, str], ...] = ()):
        super().__init__(reason)
        self.outcome = RegistrarOutcome(status, reason, headers)


_last_date: tuple[int, str] = (-1, "")


def http_date(now: float) -> str:
    """RFC 3261 20.17 Date (RFC 1123 form, always GMT)."""
    # The format has whole seconds (formatdate truncates like int() for our positive
    # timestamps), so a burst of 200 OKs in one second formats the date once.
    global _last_date
    second = int(now)
    if _last_date[0] != second:
        _last_date = (second, email.utils.formatdate(now, usegmt=True))
    return _last_date[1]


def _parse_q(text: str | None) -> float:
    """qvalue = ("0" ["." 0*3DIGIT]) / ("1" ["." 0*3("0")]) (RFC 3261 25.1); absent -> 1.0."""
    if text is None:
        return 1.0
    t = text.strip()
    if not _QVALUE.fullmatch(t):
        raise _Reject(400, "Bad q-value")
    return float(t)


def _parse_expires_param(text: str | None) -> int | None:
    if text is None:
        return None
    t = text.strip()
    if not t.isdigit() or not t.isascii() or len(t) > 10:
        raise _Reject(400, "Bad expires parameter")
    return min(int(t), MAX_EXPIRES_VALUE)


def _unquote(text: str) -> str:
    t = text.strip()
    return t[1:-1] if len(t) >= 2 and t[0] == '"' and t[-1] == '"' else t


class Registrar:
    def __init__(self, location: LocationService, *, min_expires: int = 60,
                 max_expires: int = 3600, default_expires: int = 3600,
                 max_contacts: int = 5) -> None:
        if not 0 < min_expires <= default_expires <= max_expires:
            raise ValueError("need 0 < min_expires <= default_expires <= max_expires")
        if max_contacts < 1:
            raise ValueError("max_contacts must be at least 1")
        self.location = location
        self.min_expires = min_expires
        self.max_expires = max_expires
        self.default_expires = default_expires
        self.max_contacts = max_contacts

    def process(self, request: Request, account: Account, source: Source,
                now: float) -> RegistrarOutcome:
        try:
            return self._process(request, account, source, now)
        except _Reject as r:
            return r.outcome
        except SipParseError as e:
            return RegistrarOutcome(e.status, e.reason)

    def rollback(self, outcome: RegistrarOutcome) -> None:
        """Undo in memory what `process` applied, after persisting it failed."""
        self.location.apply(outcome.undo)

    def listing(self, aor: str, now: float) -> tuple[tuple[str, str], ...]:
        """The Contact lines of a 200 OK: every current binding with its remaining expiry
        (RFC 3261 10.3 step 8), then Date."""
        lines: list[tuple[str, str]] = []
        for b in self.location.lookup(aor, now):
            parts = [f"<{b.contact}>;expires={b.remaining(now)}"]
            if b.q != 1.0:
                parts.append(f";q={b.q:.3f}".rstrip("0").rstrip("."))
            if b.instance_id is not None:
                parts.append(f';+sip.instance="{b.instance_id}"')
            if b.reg_id is not None:
                parts.append(f";reg-id={b.reg_id}")
            lines.append(("Contact", "".join(parts)))
        lines.append(("Date", http_date(now)))
        return tuple(lines)

    def _process(self, request: Request, account: Account, source: Source,
                 now: float) -> RegistrarOutcome:
        if request.method != "REGISTER":
            raise _Reject(405, "Method Not Allowed", (("Allow", "REGISTER"),))
        # step 2: extensions the client requires
        required = {t.strip().lower() for t in request.headers.get_all("Require")}
        unsupported = sorted(required - SUPPORTED_EXTENSIONS)
        if unsupported:
            raise _Reject(420, "Bad Extension", (("Unsupported", ", ".join(unsupported)),))
        # step 4: only the account's own address-of-record
        if uri_user(request.to.uri) != account.username:
            raise _Reject(403, "Forbidden")
        call_id = request.call_id
        cseq = request.cseq.seq
        header_expires = request.expires
        contacts = request.contacts
        aor = account.aor
        current = {b.key: b for b in self.location.current(aor, now)}
        if isinstance(contacts, ContactStar):
            # step 6: "*" only with Expires: 0, removes every binding of the AOR
            if header_expires != 0:
                raise _Reject(400, "Contact * requires Expires: 0")
            for b in current.values():
                self._check_order(b, call_id, cseq)
            changes = [BindingChange(ChangeKind.DELETE, b) for b in current.values()]
            return self._commit(aor, changes, current, now)
        if not contacts:
            return RegistrarOutcome(200, "OK", self.listing(aor, now))  # a query (10.2.3)
        default = self.default_expires if header_expires is None else header_expires
        wanted = self._wanted(contacts, default)
        too_brief = [e for _, e, _, _, _ in wanted if 0 < e < self.min_expires]
        if too_brief:
            # step 7 (the 423 rule of 10.3): never shorten, tell the minimum
            raise _Reject(423, "Interval Too Brief", (("Min-Expires", str(self.min_expires)),))
        user_agent = request.headers.get("User-Agent") or ""
        path = tuple(request.headers.get_all("Path"))
        changes = []
        state = dict(current)
        for uri, expires, q, instance, reg_id in wanted:
            key = binding_key(uri, instance, reg_id)
            old = current.get(key)
            if old is not None:
                self._check_order(old, call_id, cseq)
            if expires == 0:
                if key in state:
                    changes.append(BindingChange(ChangeKind.DELETE, state.pop(key)))
                continue
            b = Binding(aor, uri, now + min(expires, self.max_expires), q, call_id, cseq,
                        instance, reg_id, source.transport.lower(), source.host, source.port,
                        source.conn_id, user_agent, now, path)
            state.pop(key, None)  # re-insert: newest last
            state[key] = b
            changes.append(BindingChange(ChangeKind.UPSERT, b))
        if account.max_contacts is not None:
            # the pack's device limit: refuse, never replace another device
            self._check_device_limit(list(state.values()), set(current), account.max_contacts)
        elif len(state) > self.max_contacts:
            # no device limit in the pack: `max_contacts` only bounds memory per account,
            # and the least recently registered contacts (stale ones, e.g. of a softphone
            # restarted on a new port) make room, earlier in the request first
            order = sorted(enumerate(state.values()), key=lambda ib: (ib[1].registered_at, ib[0]))
            for _, b in order[: len(state) - self.max_contacts]:
                del state[b.key]
                changes.append(BindingChange(ChangeKind.DELETE, b))
        return self._commit(aor, changes, current, now)

    def _wanted(self, contacts: Sequence[NameAddr],
                default: int) -> list[tuple[str, int, float, str | None, int | None]]:
        out: dict[str, tuple[str, int, float, str | None, int | None]] = {}
        for c in contacts:
            if not isinstance(c.uri, SipUri):
                raise _Reject(400, "Contact must be a SIP or SIPS URI")
            uri = str(c.uri)
            p = _parse_expires_param(c.param("expires"))
            expires = default if p is None else p  # step 6: parameter wins over header
            q = _parse_q(c.param("q"))
            raw_instance = c.param("+sip.instance")
            instance = _unquote(raw_instance) if raw_instance else None
            raw_reg = c.param("reg-id")
            reg_id: int | None = None
            if raw_reg is not None and instance is not None:
                if not raw_reg.isdigit() or len(raw_reg) > 9:
                    raise _Reject(400, "Bad reg-id")
                reg_id = int(raw_reg)
            key = binding_key(uri, instance, reg_id)
            out.pop(key, None)  # a repeated contact: the last one counts
            out[key] = (uri, expires, q, instance, reg_id)
        return list(out.values())

    @staticmethod
    def _check_device_limit(bindings: list[Binding], before: set[str], limit: int) -> None:
        """Refuse a registration that would make the account serve more devices than its
        pack allows (section 2.3: a Workspace line is one device), with 403 and a Warning
        saying why (RFC 3261 section 21.4.4: understood but refused, do not repeat it; the
        Warning text of section 20.43). Another device is never silently replaced.

        Bindings belong to one device when they share a `+sip.instance` (RFC 5626 section
        4.1), a MAC learned from the User-Agent or the instance URN, or a Call-ID (RFC 3261
        section 10.2.4: a UA uses one Call-ID for all its registrations until it reboots).
        A re-registration of a device (same instance or same Contact URI) replaces its own
        binding before this count, so it is never "another device". Bindings per account
        are also capped at 4 per allowed device (one per transport a phone may register).
        """
        if len(bindings) <= limit:
            return  # the common case: no grouping needed
        if len(bindings) > 4 * limit:
            raise _Reject(403, "Forbidden", (("Warning", f'399 - "too many contacts: at most '
                                                         f'{4 * limit} for this account"'),))
        devices = device_groups(bindings)
        if len(devices) <= limit:
            return
        # Only a request that brings a device in is refused: one that only refreshes or
        # removes bindings of devices already counted is let through (the limit may have
        # been lowered by a configuration reload).
        if all(any(b.key in before for b in group) for group in devices):
            return
        raise _Reject(403, "Forbidden", (("Warning", f'399 - "device limit reached: this '
                                                     f'account allows {limit} device(s); '
                                                     'unregister another device first"'),))

    @staticmethod
    def _check_order(old: Binding, call_id: str, cseq: int) -> None:
        """Step 7: same Call-ID and a CSeq not higher than the stored one aborts the whole
        request (a delayed or replayed REGISTER must not undo a newer one)."""
        if old.call_id == call_id and cseq <= old.cseq:
            raise _Reject(500, "Server Internal Error",
                          (("Retry-After", "5"), ("Warning", '399 - "CSeq out of order"')))

    def _commit(self, aor: str, changes: list[BindingChange], before: dict[str, Binding],
                now: float) -> RegistrarOutcome:
        undo: list[BindingChange] = []
        for ch in reversed(changes):
            prev = before.get(ch.binding.key)
            undo.append(BindingChange(ChangeKind.UPSERT, prev) if prev is not None
                        else BindingChange(ChangeKind.DELETE, ch.binding))
        self.location.apply(changes)
        return RegistrarOutcome(200, "OK", self.listing(aor, now), tuple(changes), tuple(undo))


def device_groups(bindings: Sequence[Binding]) -> list[list[Binding]]:
    """Bindings grouped by the device they belong to (see `_check_device_limit`): union of
    the bindings that share an instance id, a MAC or a Call-ID."""
    parent = list(range(len(bindings)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    seen: dict[tuple[str, str], int] = {}
    for i, b in enumerate(bindings):
        mac = identify(b.user_agent, b.instance_id).mac
        marks = [("call-id", b.call_id)]
        if b.instance_id:
            marks.append(("instance", b.instance_id))
        if mac:
            marks.append(("mac", mac))
        for mark in marks:
            j = seen.setdefault(mark, i)
            parent[find(i)] = find(j)
    groups: dict[int, list[Binding]] = {}
    for i, b in enumerate(bindings):
        groups.setdefault(find(i), []).append(b)
    return list(groups.values())
