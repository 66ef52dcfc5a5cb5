"""What the services depend on, as small Protocols, and the one service lifecycle.

Each Protocol is the part of a collaborator a consumer actually uses, so a unit test builds
the consumer with an in-memory fake and the composition root (`switch.app`) shows who
feeds whom. The concrete classes satisfy them structurally (no inheritance).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from devices.accounts import Account
from devices.digest import DigestAuthenticator
from devices.guard import AuthFailureGuard
from devices.location import LocationService
from dialplan import Plan, RoutingDecision, User
from dialplan.schedule import NO_FORCED, ForcedModes
from emergency.callback import EmergencyCall
from rating.cdr import CallRecord
from switch.b2bua.assembly import EmergencyParts
from switch.webrtc.credentials import EphemeralCredentials


@runtime_checkable
class Service(Protocol):
    """Something the switch starts before it listens and stops after its transports."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@runtime_checkable
class Reloadable(Protocol):
    """A service that re-reads its configuration on SIGHUP."""

    def reload(self) -> None: ...


@dataclass(frozen=True, slots=True)
class CallTimers:
    """The one timer configuration of calls: RFC 3261 T1/T2 (the 2xx retransmissions and
    the ACK wait of 13.3.1.4), the ring timeout and the hunt step."""

    t1: float = 0.5
    t2: float = 4.0
    ring_timeout: float = 30.0
    hunt_step: float = 15.0


class ScheduleOverrides(Protocol):
    """The night switch's forced schedule modes routing must honour (issue 12)."""

    @property
    def forced(self) -> ForcedModes: ...


class NoScheduleOverrides:
    """No night switch: every schedule follows its hours and holidays."""

    @property
    def forced(self) -> ForcedModes:
        return NO_FORCED


class PlanSource(Protocol):
    """The running dialplan (swapped on reload)."""

    @property
    def plan(self) -> Plan: ...


class Accounts(Protocol):
    """The SIP accounts: digest lookups and who an address-of-record is."""

    def find(self, username: str, realm: str) -> Account | None: ...

    def user_for_aor(self, aor: str) -> User | None: ...

    def realm_for_host(self, host: str) -> str: ...


class CallerAuthority(Protocol):
    """Digest verification and the brute-force guard, shared with REGISTER (set once the
    registration service has started)."""

    @property
    def digest(self) -> DigestAuthenticator | None: ...

    @property
    def guard(self) -> AuthFailureGuard | None: ...

    @property
    def ephemeral(self) -> EphemeralCredentials | None:
        """Issue 23: browsers' short-lived passwords (WS/WSS only), or None."""


class Locations(Protocol):
    """Where the registered devices are (the location service of the registrar)."""

    @property
    def location(self) -> LocationService: ...


class CallRecords(Protocol):
    """Where call records go (written in order, off the signalling path)."""

    def open(self, record: CallRecord) -> None: ...

    def answered(self, record: CallRecord) -> None: ...

    def close(self, record: CallRecord) -> None: ...


class CallbackLookup(Protocol):
    def caller_for(self, customer: str, site: str, now: float) -> EmergencyCall | None: ...


class EmergencyHooks(Protocol):
    """What the call service asks of the emergency adapter (issue 7)."""

    @property
    def callbacks(self) -> CallbackLookup: ...

    def is_nomadic(self, caller: User | None, source: str) -> bool: ...

    def leg(self, decision: RoutingDecision, caller: User | None, number: str | None,
            sdp: bytes, nomadic: bool = False) -> EmergencyParts: ...

    def started(self, decision: RoutingDecision, caller: User | None, number: str | None,
                authenticated: bool, nomadic: bool = False) -> None: ...



class CallStateObserver(Protocol):
    """Told by the call service when a user's call rings, is answered and ends (issue 17:
    the `dialog` and `presence` event packages). `user` is the user's key, `aor_key(user)`
    ("customer:full number"): full numbers are unique inside a customer only. `call_id`
    names the dialog of that user (the callee leg's own Call-ID, or the caller's).
    `direction` is "initiator" (the user placed the call) or "recipient"; `remote_uri` and
    `remote_display` are the other party as that user's phone sees it. Called on the
    signalling path: must be cheap and must not raise."""

    def leg_ringing(self, user: str, call_id: str, direction: str, remote_uri: str,
                    remote_display: str | None) -> None: ...

    def leg_answered(self, user: str, call_id: str) -> None: ...

    def leg_ended(self, user: str, call_id: str) -> None: ...


class NoCallObserver:
    """The default `CallStateObserver`: nobody watches."""

    def leg_ringing(self, user: str, call_id: str, direction: str, remote_uri: str,
                    remote_display: str | None) -> None:
        return None

    def leg_answered(self, user: str, call_id: str) -> None:
        return None

    def leg_ended(self, user: str, call_id: str) -> None:
        return None


class MailboxCounts(Protocol):
    """Voice messages waiting for a user (RFC 3842): `(new, old)`; provided by voicemail.
    `user` is `aor_key(user)` ("customer:full number")."""

    def counts(self, user: str) -> tuple[int, int]: ...


class NoMailboxes:
    """The default `MailboxCounts` until voicemail provides one: no messages."""

    def counts(self, user: str) -> tuple[int, int]:
        return (0, 0)
