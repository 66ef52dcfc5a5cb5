"""The pump of a `Call` whose caller is virtual: legs the switch rings for itself.

An application's `Transfer` (`switch.divert`) and a call the switch places
(`switch.originate`) both ring legs through an ordinary pure `Call` (forking, hunting,
ring timeouts, the "every leg failed" policy) whose caller is nobody: what the Call would
answer its caller is read here, never sent. `InnerCall` sends the legs' requests, feeds
their responses and the Call's timers back, and tells its owner the outcome:

- a 2xx the Call would send its caller: a leg answered (``on_answer``);
- a final failure, or the call ending while it rings: ``on_failure(status, reason)``;
- the failure policy chose an application (a mailbox): ``on_application(name)``.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable

from switch.b2bua.call import Call
from switch.b2bua.effects import (
    Effect,
    Ended,
    LegId,
    RespondCaller,
    SendRequest,
    SendStateless,
    StartApplication,
)
from switch.runtime import SipRuntime
from switch.sip import Request, Response
from switch.transaction import Peer

# The inner call's caller is virtual: what the inner call would send it goes nowhere.
NOWHERE = Peer("UDP", "0.0.0.0", 0)


class InnerCall:
    """Runs one inner `Call` for its owner while ``ringing()`` says it still rings."""

    def __init__(self, runtime: SipRuntime, call: Call, *, ringing: Callable[[], bool],
                 on_answer: Callable[[Response], None],
                 on_failure: Callable[[int, str], None],
                 on_application: Callable[[str], None] | None = None) -> None:
        self.runtime = runtime
        self.call = call
        self.ringing = ringing
        self.on_answer = on_answer
        self.on_failure = on_failure
        self.on_application = on_application
        self._timer: asyncio.TimerHandle | None = None

    def ring(self, steps: list[list[tuple[Request, Peer]]], hunt_step: float) -> None:
        """Ring one group of legs at once, or several one after the other (hunting)."""
        if len(steps) == 1:
            effects: list[Effect] = []
            for req, dest in steps[0]:
                effects.extend(self.call.add_leg(req, dest))
        else:
            effects = self.call.start_hunt(steps, hunt_step, self.runtime.now())
        self.perform(effects)

    def perform(self, effects: list[Effect]) -> None:
        rt = self.runtime
        for eff in effects:
            if isinstance(eff, SendRequest):
                if eff.leg is not None:
                    rt.send_request(eff.request, eff.dest,
                                    functools.partial(self.on_response, eff.leg))
                else:
                    rt.send_request(eff.request, eff.dest)
            elif isinstance(eff, SendStateless):
                if eff.dest is not NOWHERE:
                    rt.send_raw(eff.data, eff.dest)
            elif isinstance(eff, RespondCaller):  # what the virtual caller would be told
                status = eff.response.status
                if 200 <= status < 300:
                    self.on_answer(eff.response)
                elif status >= 300:
                    self.on_failure(status, eff.response.reason)
            elif isinstance(eff, StartApplication) and self.on_application is not None:
                self.on_application(eff.application)
            elif isinstance(eff, Ended) and self.ringing():
                self.on_failure(eff.status, eff.cause)
        self.arm()

    def on_response(self, leg: LegId, resp: Response) -> None:
        now = self.runtime.now()
        if resp.status == 408 and not resp.headers.get("Call-ID"):
            self.perform(self.call.on_leg_timeout(leg, now))  # Timer B: no answer at all
        else:
            self.perform(self.call.on_response(leg, resp, now))

    def arm(self) -> None:
        self.stop_timer()
        deadline = self.call.next_deadline() if self.ringing() else None
        if deadline is not None:
            self._timer = self.runtime.loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self.perform(self.call.handle_timer(self.runtime.now()))

    def stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


__all__ = ["NOWHERE", "InnerCall"]
