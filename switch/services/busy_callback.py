"""Callback on busy (`*37`): the asyncio side of `ivr.busy_callback`.

`BusyCallbacks` learns three things and acts on them:

- which user called which user and found it busy: the call service tells it each call
  record it closes (`CallService.ended_hooks`);
- which users are in a call: it is one of the call service's `CallStateObserver`s
  (a user's call rings, is answered, ends);
- `*37`: the personal-features service asks `request(user)` (feature-on when a busy call
  of the last `REQUEST_WINDOW` seconds is remembered, feature-refused otherwise).

When a user's last call ends (or any call record closes: the `*37` call itself is an
application call the observer does not see) it looks for requests whose two parties are
now free and
has the switch call the caller (`switch.originate`), presenting the user it wanted; when
the caller answers it hears `busy-callback-free` and that user rings presenting the
caller (`ivr.queue_callback.CallbackConnect` with the callback-on-busy prompts).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from dialplan import User
from dialplan.user_settings import FeatureOutcome
from ivr.busy_callback import BusyCallbackBook, Callback
from ivr.queue_callback import BUSY_FAILED, BUSY_FREE, CallbackConnect
from rating.cdr import CallRecord
from switch.b2bua.originate import Presented
from switch.services.ports import PlanSource
from switch.sip import NameAddr, SipUri

if TYPE_CHECKING:
    from switch.originate import Originator

log = logging.getLogger("switch.busy_callback")


# The caller asked to be called back and may have stepped away from the desk: its phone
# rings this long, whatever shorter ring time before forwarding the site sets.
CALLBACK_RING_SECONDS = 30.0
# the *37 call confirms and hangs up within seconds; a record that never closes (a lost
# write) must not hold the callback for ever
DIALING_LIMIT_SECONDS = 120.0
# once the *37 call ended, the phone gets this long to settle before the call back rings it:
# an INVITE right behind the BYE reached a phone still tearing the confirmation call down
# (seen as a flaky scenario: the softphone took the new call for the old one)
RECALL_GRACE_SECONDS = 2.0


class BusyCallbacks:
    """`*37` requests, the users' calls, and the calls placed to serve them."""

    def __init__(self, plan: PlanSource, *, clock: Callable[[], float] | None = None) -> None:
        self.plan = plan
        self.book = BusyCallbackBook()
        self.originator: Originator | None = None
        self._clock = clock
        self.in_calls: dict[str, set[str]] = {}  # "customer:number" -> its calls' Call-IDs
        # "customer:number" -> when: users whose *37 call is still up (an application call
        # the call observer does not see); served only once its record closed
        self._dialing: dict[str, float] = {}
        # "customer:number" -> until when: a *37 call just ended (RECALL_GRACE_SECONDS)
        self._settling: dict[str, float] = {}
        self._wake: asyncio.TimerHandle | None = None
        self._scheduled = False

    def now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    # -- what the call records say --

    def record_closed(self, record: CallRecord) -> None:
        if record.decision == "feature" and record.customer and record.caller:
            key = f"{record.customer}:{record.caller}"
            if self._dialing.pop(key, None) is not None:
                with contextlib.suppress(RuntimeError):  # no loop: a record closed at shutdown
                    self._settling[key] = self.now() + RECALL_GRACE_SECONDS
        if self.book.pending():
            # a call ended (the *37 code's own call among them: an application call the
            # call observer does not see): the parties may both be free now
            self._schedule()
        if (record.disposition == "busy" and record.decision == "user"
                and record.customer and record.caller and record.callee
                and record.caller != record.callee):
            try:
                now = self.now()
            except RuntimeError:  # no loop: a record closed at shutdown
                return
            self.book.busy(record.customer, record.caller, record.callee, now)

    # -- *37 --

    def request(self, user: User) -> FeatureOutcome:
        if self.originator is None:
            return FeatureOutcome.NOT_AVAILABLE
        callee = self.book.request(user.customer.id, user.full_number, self.now())
        if callee is None:
            log.info("busy callback of %s refused: no busy call to call back",
                     user.full_number)
            return FeatureOutcome.REFUSED
        # served once the code's own call ended (its record closes) and both are free
        self._dialing[f"{user.customer.id}:{user.full_number}"] = self.now()
        return FeatureOutcome.ON

    # -- CallStateObserver --

    def leg_ringing(self, user: str, call_id: str, direction: str, remote_uri: str,
                    remote_display: str | None) -> None:
        self.in_calls.setdefault(user, set()).add(call_id)

    def leg_answered(self, user: str, call_id: str) -> None:
        self.in_calls.setdefault(user, set()).add(call_id)

    def leg_ended(self, user: str, call_id: str) -> None:
        calls = self.in_calls.get(user)
        if calls is None:
            return
        calls.discard(call_id)
        if not calls:
            del self.in_calls[user]
            if self.book.pending():
                self._schedule()

    # -- serving --

    def _schedule(self) -> None:
        if self._scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._scheduled = True
        loop.call_soon(self._serve)

    def _serve(self) -> None:
        self._scheduled = False
        now = self.now()
        for key, since in list(self._dialing.items()):
            if now - since > DIALING_LIMIT_SECONDS:  # its record never closed: not forever
                del self._dialing[key]
        for key, until in list(self._settling.items()):
            if until <= now:
                del self._settling[key]
        busy = set(self.in_calls) | set(self._dialing) | set(self._settling)
        for callback in self.book.due(busy, now):
            self._call(callback)
        if self._settling and self.book.pending():
            self._wake_after(min(self._settling.values()) - now)

    def _wake_after(self, delay: float) -> None:
        """Serve again once the first settling phone is ready."""
        if self._wake is not None:
            self._wake.cancel()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._wake = loop.call_later(max(0.0, delay), self._schedule)

    def _call(self, cb: Callback) -> None:
        from switch.originate import Origination

        found = self._users(cb)
        if found is None or self.originator is None:
            self.book.finished(cb)
            return
        caller, callee = found
        domain = caller.customer.sip_domain
        # the caller sees the user it wanted calling; that user then sees the caller
        wanted = Presented(NameAddr(SipUri("sip", domain, callee.full_number), callee.name),
                           number=callee.full_number)
        own = Presented(NameAddr(SipUri("sip", domain, caller.full_number), caller.name),
                        number=caller.full_number)
        customer = caller.customer.id
        log.info("busy callback customer=%s caller=%s callee=%s event=calling", customer,
                 cb.caller, cb.callee)
        self.originator.place(Origination(
            site=caller.site, target=caller.full_number, presented=wanted,
            application=lambda info: CallbackConnect(info, "busy-callback", callee.full_number,
                                                     customer, announce=BUSY_FREE,
                                                     failed=BUSY_FAILED),
            then_presented=own, label="busy callback", ring_timeout=CALLBACK_RING_SECONDS,
            on_answered=lambda entry: self.book.finished(cb),
            on_failed=lambda status, reason: self.book.finished(cb)))

    def _users(self, cb: Callback) -> tuple[User, User] | None:
        for c in self.plan.plan.customers:
            if c.id != cb.customer:
                continue
            caller, callee = c.by_full_number.get(cb.caller), c.by_full_number.get(cb.callee)
            if isinstance(caller, User) and isinstance(callee, User):
                return caller, callee
        return None


__all__ = ["BusyCallbacks"]
