"""Session timers (RFC 4028): Session-Expires / Min-SE negotiation and the refresh clock.

Negotiation is a set of pure functions over messages; `SessionTimer` is the per-dialog
clock driven by `now` (seconds, a float the caller reads from its clock).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum

from switch.sip import Request, Response, SipError

log = logging.getLogger(__name__)

ABSOLUTE_MIN_SE = 90  # RFC 4028 section 4/5: Min-SE is never lower than 90 s
DEFAULT_SE = 1800  # RFC 4028 section 4: the recommended session interval


class Refresher(Enum):
    """Which side of the *refresh transaction* refreshes (RFC 4028 section 4)."""

    UAC = "uac"
    UAS = "uas"


@dataclass(frozen=True, slots=True)
class SessionExpires:
    """Session-Expires: delta-seconds [;refresher=uac|uas] (RFC 4028 section 4)."""

    interval: int
    refresher: Refresher | None = None

    def __str__(self) -> str:
        return f"{self.interval}" if self.refresher is None else f"{self.interval};refresher={self.refresher.value}"


@dataclass(frozen=True, slots=True)
class Negotiated:
    """The outcome of a negotiation: the interval and whether *we* refresh."""

    interval: int
    refresher: Refresher
    we_refresh: bool


def _delta(text: str, what: str) -> int:
    t = text.strip()
    if not t.isdigit() or len(t) > 10:
        raise SipError(400, f"Bad {what}: {t[:20]!r}")
    return int(t)


def parse_session_expires(text: str) -> SessionExpires:
    head, *params = text.split(";")
    interval = _delta(head, "Session-Expires")
    refresher: Refresher | None = None
    for p in params:
        name, _, value = p.partition("=")
        if name.strip().lower() == "refresher":
            v = value.strip().lower()
            if v not in ("uac", "uas"):
                raise SipError(400, "Bad Session-Expires refresher")
            refresher = Refresher(v)
    if interval < 1:
        raise SipError(400, "Bad Session-Expires: zero")
    return SessionExpires(interval, refresher)


def parse_min_se(text: str) -> int:
    return _delta(text.split(";", 1)[0], "Min-SE")


def _options(msg: Request | Response, name: str) -> set[str]:
    return {v.strip().lower() for v in msg.headers.get_all(name)}


def supports_timer(msg: Request | Response) -> bool:
    return "timer" in _options(msg, "Supported") or "timer" in _options(msg, "Require")


def session_expires_of(msg: Request | Response) -> SessionExpires | None:
    v = msg.headers.get("Session-Expires")
    return None if v is None else parse_session_expires(v)


def min_se_of(msg: Request | Response) -> int | None:
    v = msg.headers.get("Min-SE")
    return None if v is None else parse_min_se(v)


# -- UAC side (RFC 4028 section 7) ----------------------------------------------------------


def uac_request_headers(interval: int = DEFAULT_SE, min_se: int = ABSOLUTE_MIN_SE,
                        refresher: Refresher | None = None) -> tuple[tuple[str, str], ...]:
    """Headers for a session refresh request we send (section 7.1, 7.4)."""
    min_se = max(min_se, ABSOLUTE_MIN_SE)
    if interval < min_se:
        raise ValueError(f"Session-Expires {interval} below Min-SE {min_se}")
    return (("Supported", "timer"), ("Session-Expires", str(SessionExpires(interval, refresher))),
            ("Min-SE", str(min_se)))


def uac_retry_after_422(response: Response, interval: int, min_se: int = ABSOLUTE_MIN_SE) -> tuple[int, int]:
    """Section 7.3: the (Session-Expires, Min-SE) to retry with after a 422."""
    theirs = min_se_of(response)
    if response.status != 422 or theirs is None:
        raise SipError(500, "not a 422 with Min-SE")
    new_min = max(min_se, theirs, ABSOLUTE_MIN_SE)
    return max(interval, new_min), new_min


def uac_negotiate(response: Response) -> Negotiated | None:
    """Section 7.2: read the 2xx to our refresh request. No Session-Expires, no timer."""
    se = session_expires_of(response)
    if se is None:
        return None
    refresher = se.refresher or Refresher.UAC  # a UAS must set it; we take the safe side
    return Negotiated(se.interval, refresher, refresher is Refresher.UAC)


# -- UAS side (RFC 4028 section 9) ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UasDecision:
    negotiated: Negotiated | None
    headers: tuple[tuple[str, str], ...]  # to add to our 2xx


def uas_negotiate(request: Request, *, min_se: int = ABSOLUTE_MIN_SE, preferred: int | None = DEFAULT_SE,
                  prefer_refresher: Refresher = Refresher.UAC) -> UasDecision:
    """Decide the session timer for a session refresh request we are about to accept.

    Raises SipError 422 with our Min-SE when the requested interval is below our minimum
    and the UAC supports the extension (section 9). We may lower the interval, never
    below the request's Min-SE, and never raise it. Without Session-Expires in the request
    we start a timer only when `preferred` is set (the UAS refreshes if the UAC cannot).
    """
    min_se = max(min_se, ABSOLUTE_MIN_SE)
    uac_ok = supports_timer(request)
    se = session_expires_of(request)
    floor = max(min_se_of(request) or ABSOLUTE_MIN_SE, ABSOLUTE_MIN_SE)
    if se is None:
        if preferred is None:
            return UasDecision(None, ())
        interval = max(preferred, min_se, floor)
        refresher = prefer_refresher if uac_ok else Refresher.UAS
    else:
        if se.interval < min_se and uac_ok:
            raise SipError(422, "Session Interval Too Small", headers=(("Min-SE", str(min_se)),))
        interval = se.interval
        if preferred is not None and preferred < interval:
            interval = max(preferred, floor, min_se)
        if se.refresher is not None:
            refresher = se.refresher  # section 9: copied from the request
        else:
            refresher = prefer_refresher if uac_ok else Refresher.UAS
    headers: list[tuple[str, str]] = [("Session-Expires", f"{interval};refresher={refresher.value}")]
    if uac_ok:
        headers.append(("Require", "timer"))
    return UasDecision(Negotiated(interval, refresher, refresher is Refresher.UAS), tuple(headers))


# -- the clock -------------------------------------------------------------------------------


class TimerState(Enum):
    INACTIVE = "inactive"
    REFRESHING = "refreshing"  # we refresh: waiting for half the interval
    REFRESH_SENT = "refresh-sent"  # we asked for a refresh, waiting for its 2xx
    WATCHING = "watching"  # the peer refreshes: waiting for its request
    EXPIRED = "expired"


class TimerEvent(Enum):
    START_REFRESHER = "start-refresher"
    START_WATCHING = "start-watching"
    REFRESH_DUE = "refresh-due"
    EXPIRE = "expire"
    STOP = "stop"


class SessionTimerError(SipError):
    """A missing transition of the session timer (our bug: status 500)."""


_S, _E = TimerState, TimerEvent
TRANSITIONS: dict[tuple[TimerState, TimerEvent], TimerState] = {}
for _s in (_S.INACTIVE, _S.REFRESHING, _S.REFRESH_SENT, _S.WATCHING):
    TRANSITIONS[(_s, _E.START_REFRESHER)] = _S.REFRESHING
    TRANSITIONS[(_s, _E.START_WATCHING)] = _S.WATCHING
    TRANSITIONS[(_s, _E.STOP)] = _S.INACTIVE
TRANSITIONS[(_S.REFRESHING, _E.REFRESH_DUE)] = _S.REFRESH_SENT
TRANSITIONS[(_S.REFRESH_SENT, _E.EXPIRE)] = _S.EXPIRED
TRANSITIONS[(_S.WATCHING, _E.EXPIRE)] = _S.EXPIRED
TRANSITIONS[(_S.EXPIRED, _E.STOP)] = _S.INACTIVE
del _S, _E, _s


@dataclass(frozen=True, slots=True)
class SendRefresh:
    """Time to send a session refresh (re-INVITE or UPDATE) with `interval`."""

    interval: int


@dataclass(frozen=True, slots=True)
class SessionExpired:
    """No refresh in time: send BYE (RFC 4028 section 10)."""

    interval: int


def bye_margin(interval: float) -> float:
    """Section 10: BYE goes min(32 s, interval / 3) before the session expires."""
    return min(32.0, interval / 3)


class SessionTimer:
    """The refresh clock of one dialog. Call `start(negotiated, now)` after every
    successful refresh transaction (either direction); poll `get_timer()`; call
    `handle_timer(now)` when it is due."""

    def __init__(self, *, context: str = "") -> None:
        self.state = TimerState.INACTIVE
        self.interval = 0
        self.started_at = 0.0
        self._deadline: float | None = None
        self._context = context

    def _go(self, event: TimerEvent) -> None:
        new = TRANSITIONS.get((self.state, event))
        if new is None:
            raise SessionTimerError(500, f"session timer: no {event.value} in state {self.state.value}")
        log.debug("session timer %s: %s --%s--> %s", self._context, self.state.value, event.value, new.value)
        self.state = new

    @property
    def expires_at(self) -> float:
        return self.started_at + self.interval

    def start(self, negotiated: Negotiated, now: float) -> None:
        self.interval = negotiated.interval
        self.started_at = now
        if negotiated.we_refresh:
            self._go(TimerEvent.START_REFRESHER)
            self._deadline = now + negotiated.interval / 2  # section 10: half the interval
        else:
            self._go(TimerEvent.START_WATCHING)
            self._deadline = self.expires_at - bye_margin(negotiated.interval)

    def stop(self) -> None:
        if self.state is not TimerState.INACTIVE:
            self._go(TimerEvent.STOP)
        self._deadline = None

    def get_timer(self) -> float | None:
        return self._deadline

    def handle_timer(self, now: float) -> SendRefresh | SessionExpired | None:
        if self._deadline is None or now < self._deadline:
            return None
        if self.state is TimerState.REFRESHING:
            self._go(TimerEvent.REFRESH_DUE)
            # If the refresh never succeeds, we end the session like the watcher would.
            self._deadline = self.expires_at - bye_margin(self.interval)
            return SendRefresh(self.interval)
        self._go(TimerEvent.EXPIRE)
        self._deadline = None
        return SessionExpired(self.interval)
