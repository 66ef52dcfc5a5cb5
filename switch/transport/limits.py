"""Connection limits for the stream transports (TCP, TLS, WS, WSS): caps and deadlines.

Without them, idle connections are a cheap way to take the switch down: each one holds a
file descriptor, and a few thousand that never send anything (or send a header one byte at a
time) leave none for the phones.  So, as SIP proxies and web servers do:

- at most ``max_per_source`` connections from one IP address and ``max_connections`` in all
  (inbound only; connections the switch opens itself are not capped); a connection over a cap
  is reset at once and counted;
- deadlines (RFC 3261 section 18.3 leaves them to the implementation): a TLS handshake must
  finish within ``handshake_timeout`` (a connection holds its slot under the caps from
  accept, during its handshake); the first complete SIP message must arrive within
  ``first_message_timeout`` of the connection being usable; a message begun must be complete
  within ``message_timeout`` (a "slowloris" that trickles a header byte by byte);
- idle connections: one on which the switch accepted a REGISTER (answered it 2xx) is the path
  to a registered phone behind NAT (RFC 5626) and is kept for ``idle_timeout`` (the
  registrar's needs; CRLF keep-alives count as activity); any other connection that carried
  SIP is closed after ``idle_unregistered`` without traffic.

The policy is pure (:func:`expiry`, :class:`Admission`); ``switch.transport.stream`` applies
it.  :func:`raise_nofile_limit` lifts the process's descriptor limit at start.
"""

from __future__ import annotations

import logging
import resource
from dataclasses import dataclass
from enum import Enum

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StreamLimits:
    max_per_source: int = 256
    max_connections: int = 20_000
    handshake_timeout: float = 10.0
    first_message_timeout: float = 10.0
    message_timeout: float = 10.0
    idle_unregistered: float = 300.0
    idle_timeout: float = 900.0

    def __post_init__(self) -> None:
        if self.max_per_source < 1 or self.max_connections < 1:
            raise ValueError("connection caps must be at least 1")
        for name in ("handshake_timeout", "first_message_timeout", "message_timeout",
                     "idle_unregistered", "idle_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")


class ConnPhase(Enum):
    SILENT = "silent"  # usable, no complete SIP message yet
    ACTIVE = "active"  # carried SIP
    REGISTERED = "registered"  # a REGISTER was accepted on it: a phone's path


# phase -> phases it may move to (a connection only ever gains trust)
TRANSITIONS: dict[ConnPhase, frozenset[ConnPhase]] = {
    ConnPhase.SILENT: frozenset({ConnPhase.ACTIVE, ConnPhase.REGISTERED}),
    ConnPhase.ACTIVE: frozenset({ConnPhase.REGISTERED}),
    ConnPhase.REGISTERED: frozenset(),
}


def expiry(limits: StreamLimits, phase: ConnPhase, since: float, last_activity: float,
           partial_since: float | None) -> tuple[float, str]:
    """When a connection must be closed if nothing changes, and why.

    ``since`` is when the phase began (accept, or the end of the TLS handshake);
    ``partial_since`` when the framer started holding an incomplete message (None: none).
    The TLS handshake itself is bounded by the loop (``ssl_handshake_timeout``).
    """
    if phase is ConnPhase.SILENT:
        return since + limits.first_message_timeout, "no complete SIP message"
    idle = limits.idle_timeout if phase is ConnPhase.REGISTERED else limits.idle_unregistered
    when, why = last_activity + idle, "idle"
    if partial_since is not None and partial_since + limits.message_timeout < when:
        when, why = partial_since + limits.message_timeout, "incomplete message"
    return when, why


class Admission:
    """Counts inbound connections per source IP and in all; refuses over the caps."""

    def __init__(self, limits: StreamLimits) -> None:
        self.limits = limits
        self.by_ip: dict[str, int] = {}
        self.total = 0
        self.refused_per_source = 0
        self.refused_overall = 0

    def admit(self, ip: str) -> str | None:
        """Take a slot for a connection from ``ip``; the reason when refused."""
        if self.total >= self.limits.max_connections:
            self.refused_overall += 1
            return f"{self.total} connections (cap {self.limits.max_connections})"
        n = self.by_ip.get(ip, 0)
        if n >= self.limits.max_per_source:
            self.refused_per_source += 1
            return f"{n} connections from {ip} (cap {self.limits.max_per_source})"
        self.by_ip[ip] = n + 1
        self.total += 1
        return None

    def release(self, ip: str) -> None:
        n = self.by_ip.get(ip, 0)
        if n <= 1:
            self.by_ip.pop(ip, None)
        else:
            self.by_ip[ip] = n - 1
        self.total = max(0, self.total - 1)


class Throttle:
    """At most one log line per ``period`` seconds for a repeated event (a flood of refusals
    must not become a flood of log lines); says how many were not logged."""

    def __init__(self, period: float = 10.0) -> None:
        self.period = period
        self._next = 0.0
        self.suppressed = 0

    def ready(self, now: float) -> int | None:
        """None: stay quiet; else log now, the number of events not logged since the last."""
        if now < self._next:
            self.suppressed += 1
            return None
        self._next = now + self.period
        n, self.suppressed = self.suppressed, 0
        return n


def raise_nofile_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit (each connection and RTP port is a file
    descriptor; the usual soft default of 1024 is a few hundred calls).  Returns (soft, hard)
    in force afterwards; logs what it did."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open file limit from %d to %d: %s", soft, target, exc)
            return soft, hard
        log.info("open file limit raised from %d to %d", soft, target)
        return target, hard
    log.info("open file limit %d (already the hard limit)", soft)
    return soft, hard
