"""Calls the switch places to itself on a user's behalf (issue 16).

A blind transfer (REFER, RFC 3515) whose target is a feature code answered by a call
application (`*68`, park) has no phone to ring: the transfer's INVITE goes to the switch's
own SIP address instead, and the switch answers it with the application like any call of
the transferor. That INVITE carries a one-time token (`X-Wte-Internal`) that stands for
the transferor's authentication: the token is random (128 bits), used once, expires with
the transaction, and is only accepted from the switch's own address, so nobody outside
can present it.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from dialplan import User
from switch.b2bua.assembly import LegTarget
from switch.b2bua.decisions import RunApplication
from switch.b2bua.legs import LocalAddress
from switch.sip import NameAddr, Request, parse_uri
from switch.transaction import Peer

HEADER = "X-Wte-Internal"
LOOP = ";internal"  # the answering half's key in the call service's Call-ID table
TOKEN_SECONDS = 32.0  # the INVITE transaction's lifetime (64*T1)


@dataclass(frozen=True, slots=True)
class Claimed:
    user: User
    handling: RunApplication | None = None


class InternalInvites:
    def __init__(self, local: LocalAddress, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.local = local
        self.clock = clock
        self._pending: dict[str, tuple[User, float, RunApplication | None]] = {}
        # Call-IDs of the INVITEs the switch answered from itself: both halves of such a
        # dialog live in one call service, the answering half under `call_id + LOOP`
        self.answered: set[str] = set()

    def target(self, user: User, dialed: str, from_: NameAddr, *,
               handling: RunApplication | None = None) -> LegTarget:
        """A leg to the switch itself that the switch will take as a call from `user` to
        `dialed` (a feature code), answered by `handling` when given (pickup's bridge)
        instead of what `dialed` routes to."""
        now = self.clock()
        for token, (_, at, _h) in list(self._pending.items()):
            if now - at > TOKEN_SECONDS:
                del self._pending[token]
        token = secrets.token_urlsafe(16)
        self._pending[token] = (user, now, handling)
        ruri = f"sip:{dialed}@{self.local.host}:{self.local.port}"
        return LegTarget(ruri, Peer("UDP", self.local.host, self.local.port),
                         NameAddr(parse_uri(ruri)), from_, ((HEADER, token),),
                         user=user.full_number)

    def claim(self, req: Request, peer: Peer) -> Claimed | None:
        """The user an INVITE from the switch itself stands for (and the application that
        answers it, when forced), once; None otherwise."""
        token = req.headers.get(HEADER)
        if token is None or (peer.host, peer.port) != (self.local.host, self.local.port):
            return None
        found = self._pending.pop(token, None)
        if found is None or self.clock() - found[1] > TOKEN_SECONDS:
            return None
        self.answered.add(req.call_id)
        return Claimed(found[0], found[2])

    def key(self, call_id: str) -> str:
        """The call service's key of the call answered for INVITE `call_id`."""
        return call_id + LOOP if call_id in self.answered else call_id

    def forget(self, call_id: str) -> None:
        self.answered.discard(call_id)
